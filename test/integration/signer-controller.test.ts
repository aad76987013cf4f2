import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import {
  buildTestCertificateRequest,
  caTrueExtension,
  makeTestCertificateAuthority,
  opensslText,
  opensslVerify,
  testKey,
  type TestCertificateAuthority,
} from "../support/pki.js";
import {
  asServiceAccount,
  allowToRequestCertificates,
  grantSignerVerbs,
  type Grant,
  type SignerVerb,
  serviceAccountSubject,
  uniqueName,
} from "../support/identities.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  csrEvents,
  waitForCsrEvent,
  deleteSigner,
  installSignerManifests,
  readCsr,
  readSigner,
  setApproval,
  startController,
  submitCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

describe("signer controller on a real API server", function () {
  this.timeout(60_000);
  const suffix = uniqueName("t").slice(2);
  const fooSigner = `flows.csr-signer.test/foo-${suffix}`;
  const barSigner = `flows.csr-signer.test/bar-${suffix}`;
  const foreignSigner = `flows.csr-signer.test/other-${suffix}`;
  let admin: KubeConfig;
  let fooCa: TestCertificateAuthority;
  let barCa: TestCertificateAuthority;
  let running: RunningController;
  let istiod: KubeConfig;
  const signerObjects: string[] = [];

  function signerSpec(signerName: string, secretName: string, tenant: string): Record<string, unknown> {
    return {
      signerName,
      certificateAuthority: { secretName },
      issuance: { maxDuration: "168h" },
      policy: {
        requesters: { registrationAuthorities: ["istio-system/istiod"], tenantServiceAccounts: true },
        tenants: { namespaces: [tenant, "istio-system"] },
        spiffe: { trustDomain: "cluster.local" },
        dnsNames: ["*.{namespace}.svc", "istiod.{namespace}.svc"],
      },
    };
  }

  before(async function () {
    this.timeout(120_000);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    [fooCa, barCa] = await Promise.all([
      makeTestCertificateAuthority({ name: `foo-${suffix}` }),
      makeTestCertificateAuthority({
        name: `bar-${suffix}`,
        rootKeyType: "rsa-2048",
        intermediateKeyType: "rsa-2048",
      }),
    ]);
    await createCaSecret(admin, `foo-cacerts-${suffix}`, fooCa.files);
    await createCaSecret(admin, `bar-cacerts-${suffix}`, barCa.files);
    await createSigner(admin, `foo-${suffix}`, signerSpec(fooSigner, `foo-cacerts-${suffix}`, "foo"));
    await createSigner(admin, `bar-${suffix}`, signerSpec(barSigner, `bar-cacerts-${suffix}`, "bar"));
    signerObjects.push(`foo-${suffix}`, `bar-${suffix}`);
    // istiod: creates CSRs and approves them for every signer of the domain, as in Istio's RBAC.
    await grantSignerVerbs(admin, {
      subject: serviceAccountSubject("istio-system", "istiod"),
      signerNames: ["flows.csr-signer.test/*"],
      verbs: ["approve"],
    });
    istiod = asServiceAccount(admin, "istio-system", "istiod");
    // A short WaitingApproval grace, so the test of an unapproved CSR does not wait the default 10 s.
    running = await startController(controlPlane(), [fooSigner, barSigner], { waitingApprovalGraceMs: 2000 });
    await waitForSignerCondition(admin, `foo-${suffix}`, "Ready", "True");
    await waitForSignerCondition(admin, `bar-${suffix}`, "Ready", "True");
  });

  afterEach(function () {
    // On failure, the controller's own account of what happened is the fastest diagnosis.
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-15).join(""));
  });

  after(async () => {
    await running?.stop();
    for (const name of signerObjects) await deleteSigner(admin, name);
  });

  async function istiodRequests(
    name: string,
    signerName: string,
    requestPem: string,
    options: { usages?: string[]; expirationSeconds?: number } = {},
  ): Promise<void> {
    await submitCsr(istiod, { name, signerName, requestPem, ...options });
    await setApproval(istiod, name, "Approved");
  }

  function spiffeRequest(namespace: string, serviceAccount: string, key = testKey("ecdsa-p256")): string {
    return buildTestCertificateRequest({
      key,
      subject: [{ type: "O", value: "" }],
      subjectAltNames: { uri: [`spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`] },
    });
  }

  describe("Istio registration authority (EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API)", () => {
    it('issues an ECDSA workload certificate with O="", a critical URI SAN, leaf + intermediate only, nothing around them', async () => {
      const name = uniqueName("csr-workload");
      await istiodRequests(name, fooSigner, spiffeRequest("foo", "web"), { expirationSeconds: 3600 });
      const outcome = await waitForOutcome(admin, name);
      expect(outcome.failed).to.equal(undefined);
      const chain = outcome.certificatePem!;
      expect(
        chain.match(/-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n/g)!.join(""),
      ).to.equal(chain);
      expect(chain.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
      expect(opensslVerify(chain, fooCa.files["root-cert.pem"]!, ["-purpose", "sslclient"])).to.match(/: OK/);
      const text = opensslText(chain);
      expect(text).to.match(
        /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster.local\/ns\/foo\/sa\/web/,
      );
      const leaf = new X509Certificate(chain);
      expect((leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / 1000).to.equal(3600 + 300);
      // Events are recorded after the write, asynchronously: wait for it.
      const issued = await waitForCsrEvent(admin, name, "Issued", "Normal");
      expect(issued.message).to.contain("spiffe://cluster.local/ns/foo/sa/web");
      // Approved at once, as istiod does: Issued is its only Event (WaitingApproval waits out a grace period).
      expect((await csrEvents(admin, name)).map((event) => event.reason)).to.deep.equal(["Issued"]);
    });

    it("issues an RSA workload certificate from the RSA CA of tenant bar", async () => {
      const name = uniqueName("csr-workload");
      await istiodRequests(name, barSigner, spiffeRequest("bar", "api", testKey("rsa-2048")));
      const outcome = await waitForOutcome(admin, name);
      expect(opensslVerify(outcome.certificatePem!, barCa.files["root-cert.pem"]!)).to.match(/: OK/);
      expect(() => opensslVerify(outcome.certificatePem!, fooCa.files["root-cert.pem"]!)).to.throw(
        /openssl verify failed/,
      );
    });

    it("clamps istiod's own 10-year serving-certificate request to the signer's maximum", async () => {
      const name = uniqueName("csr-istiod");
      const request = buildTestCertificateRequest({
        key: testKey("rsa-2048"),
        subjectAltNames: { dns: ["istiod.istio-system.svc"] },
      });
      await istiodRequests(name, fooSigner, request, {
        usages: ["digital signature", "key encipherment", "server auth"],
        expirationSeconds: 10 * 365 * 86400,
      });
      const outcome = await waitForOutcome(admin, name);
      const leaf = new X509Certificate(outcome.certificatePem!);
      expect((leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / 1000).to.equal(168 * 3600 + 300);
      expect(opensslText(outcome.certificatePem!)).not.to.contain("TLS Web Client Authentication");
    });

    it("refuses another tenant's identity: Failed NamespaceNotTenant naming the rule, plus a Warning Event", async () => {
      const name = uniqueName("csr-workload");
      await istiodRequests(name, fooSigner, spiffeRequest("bar", "web"));
      const outcome = await waitForOutcome(admin, name);
      expect(outcome.certificatePem).to.equal(undefined);
      expect(outcome.failed!.reason).to.equal("NamespaceNotTenant");
      expect(outcome.failed!.message).to.contain("rule spec.policy.tenants");
      const event = await waitForCsrEvent(admin, name, "NamespaceNotTenant", "Warning");
      expect(event.message).to.contain("namespace bar is not a tenant");
    });
  });

  describe("adversarial requests from the security checklist", () => {
    const cases: [string, () => string, string][] = [
      [
        "CA:TRUE requested",
        () =>
          buildTestCertificateRequest({
            key: testKey("ecdsa-p256"),
            subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
            extraExtensions: [caTrueExtension],
          }),
        "CertificateAuthorityRequested",
      ],
      [
        "O=system:masters",
        () =>
          buildTestCertificateRequest({
            key: testKey("ecdsa-p256"),
            subject: [{ type: "O", value: "system:masters" }],
            subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
          }),
        "ReservedSubject",
      ],
      [
        "a DNS SAN of another namespace (SAN spoofing)",
        () =>
          buildTestCertificateRequest({
            key: testKey("ecdsa-p256"),
            subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/web"], dns: ["api.bar.svc"] },
          }),
        "DnsNameNotAllowed",
      ],
      [
        "an RSA-1024 key",
        () =>
          buildTestCertificateRequest({
            key: testKey("rsa-1024"),
            subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
          }),
        "KeyNotAllowed",
      ],
    ];
    for (const [what, request, reason] of cases) {
      it(`${what}: Failed ${reason}, never signed`, async () => {
        const name = uniqueName("csr-adversarial");
        await istiodRequests(name, fooSigner, request());
        const outcome = await waitForOutcome(admin, name);
        expect(outcome.certificatePem).to.equal(undefined);
        expect(outcome.failed!.reason).to.equal(reason);
        expect(outcome.failed!.message).to.match(/\(rule spec\./);
      });
    }

    it("a workload may obtain only its own SPIFFE ID", async () => {
      const workload = asServiceAccount(admin, "foo", "web");
      await allowToRequestCertificates(admin, serviceAccountSubject("foo", "web"));
      const own = uniqueName("csr-self");
      const other = uniqueName("csr-self");
      await submitCsr(workload, {
        name: own,
        signerName: fooSigner,
        requestPem: spiffeRequest("foo", "web"),
      });
      await submitCsr(workload, {
        name: other,
        signerName: fooSigner,
        requestPem: spiffeRequest("foo", "admin"),
      });
      await setApproval(istiod, own, "Approved");
      await setApproval(istiod, other, "Approved");
      expect((await waitForOutcome(admin, own)).certificatePem).to.be.a("string");
      const refused = await waitForOutcome(admin, other);
      expect(refused.failed?.reason).to.equal("SpiffeIdentityMismatch");
      expect(refused.failed?.message).to.contain("may only obtain its own identity");
    });

    it("leaves foreign, Denied, Failed and unapproved CSRs untouched", async () => {
      const foreign = uniqueName("csr-foreign");
      const denied = uniqueName("csr-denied");
      const pending = uniqueName("csr-pending");
      await grantSignerVerbs(admin, {
        subject: serviceAccountSubject("istio-system", "istiod"),
        signerNames: [foreignSigner],
        verbs: ["approve"],
      });
      await istiodRequests(foreign, foreignSigner, spiffeRequest("foo", "web"));
      await submitCsr(istiod, {
        name: denied,
        signerName: fooSigner,
        requestPem: spiffeRequest("foo", "web"),
      });
      await setApproval(istiod, denied, "Denied");
      await submitCsr(istiod, {
        name: pending,
        signerName: fooSigner,
        requestPem: spiffeRequest("foo", "web"),
      });
      // Failed by another party (the admin holds every verb) before approval, then approved: never signed.
      const failedElsewhere = uniqueName("csr-failed");
      await submitCsr(istiod, {
        name: failedElsewhere,
        signerName: fooSigner,
        requestPem: spiffeRequest("foo", "web"),
      });
      const certificates = admin.makeApiClient(CertificatesV1Api);
      const toFail = await certificates.readCertificateSigningRequest({ name: failedElsewhere });
      toFail.status = {
        conditions: [
          {
            type: "Failed",
            status: "True",
            reason: "FailedElsewhere",
            message: "another party gave up",
            lastUpdateTime: new Date(),
          },
        ],
      };
      await certificates.replaceCertificateSigningRequestStatus({ name: failedElsewhere, body: toFail });
      await setApproval(istiod, failedElsewhere, "Approved");
      // A later CSR of ours being issued shows the controller has worked through everything before it.
      const marker = uniqueName("csr-marker");
      await istiodRequests(marker, fooSigner, spiffeRequest("foo", "web"));
      await waitForOutcome(admin, marker);
      await waitForCsrEvent(admin, pending, "WaitingApproval");
      for (const name of [foreign, denied, pending]) {
        const csr = await readCsr(admin, name);
        expect(csr?.status?.certificate, name).to.equal(undefined);
        expect(
          (csr?.status?.conditions ?? []).some((c) => c.type === "Failed"),
          name,
        ).to.equal(false);
      }
      const failed = await readCsr(admin, failedElsewhere);
      expect(failed?.status?.certificate).to.equal(undefined);
      expect(
        failed?.status?.conditions?.filter((c) => c.type === "Failed").map((c) => c.reason),
      ).to.deep.equal(["FailedElsewhere"]);
      expect((await csrEvents(admin, foreign)).length).to.equal(0);
      // Approval arrives later: the pending one is signed then.
      await setApproval(istiod, pending, "Approved");
      expect((await waitForOutcome(admin, pending)).certificatePem).to.be.a("string");
    });

    it("survives a CSR deleted right after approval (istiod deletes its CSRs) and keeps signing", async () => {
      const names = Array.from({ length: 5 }, () => uniqueName("csr-deleted"));
      const certificates = admin.makeApiClient(CertificatesV1Api);
      for (const name of names) {
        await istiodRequests(name, fooSigner, spiffeRequest("foo", "web"));
        await certificates.deleteCertificateSigningRequest({ name });
      }
      const after = uniqueName("csr-after-delete");
      await istiodRequests(after, fooSigner, spiffeRequest("foo", "web"));
      expect((await waitForOutcome(admin, after)).certificatePem).to.be.a("string");
      expect(running.logs.filter((line) => line.includes('"level":"error"'))).to.deep.equal([]);
    });
  });

  describe("transient trouble leaves CSRs pending, then they are signed", () => {
    it("a Signer whose CA Secret is missing is NotReady; its CSRs wait, and are issued once the Secret appears", async () => {
      const signerName = `flows.csr-signer.test/late-${suffix}`;
      const objectName = `late-${suffix}`;
      const secretName = `late-cacerts-${suffix}`;
      await grantSignerVerbs(admin, {
        subject: serviceAccountSubject("istio-system", "istiod"),
        signerNames: [signerName],
        verbs: ["approve"],
      });
      const late = await startController(controlPlane(), [signerName], {
        leaderElection: true,
        leaseName: `late-${suffix}`,
        identity: "late",
      });
      try {
        await createSigner(admin, objectName, signerSpec(signerName, secretName, "foo"));
        signerObjects.push(objectName);
        const signer = await waitForSignerCondition(
          admin,
          objectName,
          "Ready",
          "False",
          "CertificateAuthorityMissing",
        );
        expect(signer.status!.conditions!.find((c) => c.type === "Ready")!.message).to.contain(
          `Secret csr-signer/${secretName} not found`,
        );
        const name = uniqueName("csr-waiting");
        await istiodRequests(name, signerName, spiffeRequest("foo", "web"));
        await waitForCsrEvent(admin, name, "SignerNotReady");
        expect(
          ((await readCsr(admin, name))?.status?.conditions ?? []).some((c) => c.type === "Failed"),
        ).to.equal(false);
        await createCaSecret(admin, secretName, fooCa.files);
        expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
        await waitForSignerCondition(admin, objectName, "Ready", "True");
      } finally {
        await late.stop();
      }
    });

    /**
     * Runs `check` with a fresh Signer on which the controller's service account holds only
     * `controllerVerbs` (istiod may approve); `grant` adds a verb; every grant is revoked afterwards.
     */
    async function withControllerVerbs(
      label: string,
      controllerVerbs: SignerVerb[],
      check: (signer: {
        signerName: string;
        objectName: string;
        grant(verb: SignerVerb): Promise<void>;
      }) => Promise<void>,
    ): Promise<void> {
      const signerName = `flows.csr-signer.test/${label}-${suffix}`;
      const objectName = `${label}-${suffix}`;
      const controllerAccount = serviceAccountSubject(controllerNamespace, "csr-signer");
      const grantToController = (verbs: SignerVerb[]) =>
        grantSignerVerbs(admin, { subject: controllerAccount, signerNames: [signerName], verbs });
      const grants: Grant[] = [
        await grantSignerVerbs(admin, {
          subject: serviceAccountSubject("istio-system", "istiod"),
          signerNames: [signerName],
          verbs: ["approve"],
        }),
        await grantToController(controllerVerbs),
      ];
      try {
        await createSigner(admin, objectName, signerSpec(signerName, `foo-cacerts-${suffix}`, "foo"));
        signerObjects.push(objectName);
        await check({
          signerName,
          objectName,
          grant: async (verb) => void grants.push(await grantToController([verb])),
        });
      } finally {
        for (const grant of grants) await grant.revoke();
      }
    }

    it("the API server refusing the certificate write (no sign verb) leaves the CSR pending with an Event and the Signer NotReady, until RBAC is fixed", async () => {
      // attest: the trust bundle can be published, so the Signer is Ready; but no sign.
      await withControllerVerbs("unsigned", ["attest"], async ({ signerName, objectName, grant }) => {
        await waitForSignerCondition(admin, objectName, "Ready", "True");
        const name = uniqueName("csr-unsigned");
        await istiodRequests(name, signerName, spiffeRequest("foo", "web"));
        const event = await waitForCsrEvent(admin, name, "CertificateWriteFailed");
        expect(event.type).to.equal("Warning");
        expect(event.message)
          .to.contain("HTTP 403")
          .and.to.contain(`verb sign on certificates.k8s.io signers/${signerName}`)
          .and.to.contain(
            `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ["signers"], resourceNames: ["${signerName}"], verbs: ["sign"]}`,
          );
        const signer = await waitForSignerCondition(
          admin,
          objectName,
          "Ready",
          "False",
          "CertificateWriteFailed",
        );
        expect(signer.status!.conditions!.find((c) => c.type === "Ready")!.message).to.contain("HTTP 403");
        const pending = await readCsr(admin, name);
        expect(pending?.status?.certificate).to.equal(undefined);
        expect((pending?.status?.conditions ?? []).map((c) => c.type)).to.deep.equal(["Approved"]);

        await grant("sign");
        // Retried with backoff (the first retries come within a second or two of each other).
        expect((await waitForOutcome(admin, name, 45_000)).certificatePem).to.be.a("string");
        await waitForSignerCondition(admin, objectName, "Ready", "True");
      });
    });

    it("a trust bundle that cannot be published (no attest verb) keeps a new Signer from signing and says why; granted, it signs", async () => {
      await withControllerVerbs("unattested", ["sign"], async ({ signerName, objectName, grant }) => {
        const signer = await waitForSignerCondition(
          admin,
          objectName,
          "Degraded",
          "True",
          "TrustBundlePublicationFailed",
        );
        const conditions = signer.status!.conditions!;
        expect(conditions.find((c) => c.type === "Degraded")!.message).to.contain(
          `verb attest on certificates.k8s.io signers/${signerName}`,
        );
        // The headline names the cause (issue 15); the root waiting for it comes after.
        expect(conditions.find((c) => c.type === "Ready")).to.include({
          status: "False",
          reason: "TrustBundlePublicationFailed",
        });
        expect(conditions.find((c) => c.type === "Ready")!.message)
          .to.match(/^publishing the trust bundle fails/)
          .and.to.contain("RootNotYetPublished")
          .and.to.contain(
            `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ["signers"], resourceNames: ["${signerName}"], verbs: ["attest"]}`,
          );
        const name = uniqueName("csr-unattested");
        await istiodRequests(name, signerName, spiffeRequest("foo", "web"));

        await grant("attest");
        await waitForSignerCondition(admin, objectName, "Ready", "True", undefined, 45_000);
        await waitForSignerCondition(admin, objectName, "Degraded", "False");
        expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
      });
    });

    it("two Signers claiming one signerName: the older keeps it, the newer is NotReady DuplicateSignerName naming it", async () => {
      const a = `dup-a-${suffix}`;
      const b = `dup-b-${suffix}`;
      const signerName = `flows.csr-signer.test/dup-${suffix}`;
      await createSigner(admin, a, signerSpec(signerName, `foo-cacerts-${suffix}`, "foo"));
      signerObjects.push(a);
      // The controller may not attest for this name, so a is Ready=False for its trust bundle.
      const readyReason = async () =>
        (await readSigner(admin, a)).status?.conditions?.find((c) => c.type === "Ready")?.reason;
      await waitFor(`Signer ${a} has a Ready condition`, readyReason);
      await createSigner(admin, b, signerSpec(signerName, `foo-cacerts-${suffix}`, "foo"));
      signerObjects.push(b);
      const signerB = await waitForSignerCondition(admin, b, "Ready", "False", "DuplicateSignerName");
      expect(signerB.status!.conditions!.find((c) => c.type === "Ready")!.message).to.equal(
        `spec.signerName ${signerName} belongs to Signer ${a}, which claimed it first`,
      );
      expect(await readyReason()).to.not.equal("DuplicateSignerName");
    });
  });

  describe("status, metrics and logs", () => {
    it("reports Signer status: CA subject and expiry, counts, observedGeneration (kubectl get signers columns)", async () => {
      const issued = uniqueName("csr-counted");
      const refused = uniqueName("csr-counted");
      await istiodRequests(issued, fooSigner, spiffeRequest("foo", "web"));
      await istiodRequests(refused, fooSigner, spiffeRequest("bar", "web"));
      await waitForOutcome(admin, issued);
      await waitForOutcome(admin, refused);
      const signer = await waitFor("issued and failed counts on the Signer", async () => {
        const current = await readSigner(admin, `foo-${suffix}`);
        const counted = (current.status?.issuedCount as number | undefined) ?? 0;
        return counted > 0 && ((current.status?.failedCount as number | undefined) ?? 0) > 0
          ? current
          : undefined;
      });
      const status = signer.status as {
        certificateAuthority: { subject: string; notAfter: string; roots: unknown[] };
        failedCount: number;
        observedGeneration: number;
      };
      expect(status.certificateAuthority.subject).to.equal(
        `O=csr-signer tests, CN=foo-${suffix} intermediate`,
      );
      expect(Date.parse(status.certificateAuthority.notAfter)).to.equal(
        fooCa.intermediate.certificate.notAfter.getTime(),
      );
      expect(status.certificateAuthority.roots).to.have.length(1);
      expect(status.failedCount).to.be.greaterThan(0);
      expect(status.observedGeneration).to.equal(1);
    });

    it("serves controller-runtime metrics, and /readyz once caches are synced and watches live", async () => {
      const [metricsAddress, probeAddress] = running.controller.addresses();
      const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
      for (const name of [
        "controller_runtime_reconcile_total",
        "workqueue_depth",
        "workqueue_adds_total",
        "csr_signer_certificates_issued_total",
        "csr_signer_issuance_latency_seconds_bucket",
        "csr_signer_issuance_since_creation_seconds_bucket",
        "csr_signer_ca_certificate_expiry_timestamp_seconds",
      ]) {
        expect(metrics).to.contain(name);
      }
      // Every certificate issued was first seen by this controller: one latency sample each, in both series.
      const sample = (series: string) =>
        metrics
          .split("\n")
          .find((line) => line.startsWith(`${series}{signer="${fooSigner}"} `))
          ?.split(" ")[1];
      const issuedCount = sample("csr_signer_certificates_issued_total");
      expect(Number(issuedCount)).to.be.greaterThan(0);
      expect(sample("csr_signer_issuance_latency_seconds_count")).to.equal(issuedCount);
      expect(sample("csr_signer_issuance_since_creation_seconds_count")).to.equal(issuedCount);
      expect(metrics).to.match(
        new RegExp(
          `csr_signer_certificates_refused_total\\{signer="${fooSigner.replace(/\./g, "\\.")}",reason="NamespaceNotTenant"\\} [1-9]`,
        ),
      );
      // One series per CA certificate, with its NotAfter: foo's intermediate (signing) and root.
      const expirySeries = (role: string, certificate: { subject: string; fingerprintSha256: string }) =>
        `csr_signer_ca_certificate_expiry_timestamp_seconds{signer="${fooSigner}",role="${role}",` +
        `subject="${certificate.subject}",fingerprint="${certificate.fingerprintSha256}"}`;
      const value = (series: string) =>
        metrics
          .split("\n")
          .find((line) => line.startsWith(`${series} `))
          ?.slice(series.length + 1);
      const notAfter = (certificate: { notAfter: Date }) =>
        String(Math.floor(certificate.notAfter.getTime() / 1000));
      expect(value(expirySeries("signing", fooCa.intermediate.certificate))).to.equal(
        notAfter(fooCa.intermediate.certificate),
      );
      expect(value(expirySeries("root", fooCa.root.certificate))).to.equal(notAfter(fooCa.root.certificate));
      expect(metrics).not.to.contain("PRIVATE KEY");
      expect((await fetch(`http://${probeAddress}/readyz`)).status).to.equal(200);
      expect((await fetch(`http://${probeAddress}/healthz`)).status).to.equal(200);
    });

    it("an istiod CSR, approved at once, costs one reconcile: none for its creation, the echo of its certificate or the end of its grace period", async function () {
      this.timeout(30_000);
      const [metricsAddress] = running.controller.addresses();
      const reconciles = async (): Promise<number> =>
        (await (await fetch(`http://${metricsAddress}/metrics`)).text())
          .split("\n")
          .filter((line) =>
            line.startsWith('controller_runtime_reconcile_total{controller="certificatesigningrequest",'),
          )
          .reduce((sum, line) => sum + Number(line.split(" ")[1]), 0);
      const before = await reconciles();
      const names = Array.from({ length: 10 }, () => uniqueName("csr-one-reconcile"));
      for (const name of names) await istiodRequests(name, fooSigner, spiffeRequest("foo", "web"));
      for (const name of names)
        expect((await waitForOutcome(admin, name)).certificatePem).to.match(/BEGIN CERTIFICATE/);
      // Past the 2 s grace period, by which a CSR first reconciled while unapproved would be reconciled again.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // Each used to cost four (its creation, its approval, the echo of our write, the grace period's
      // end). The slack allows for a stray reconcile of an earlier test's CSR in this window.
      expect((await reconciles()) - before).to.be.within(names.length, names.length + 2);
    });

    it("never logs key material", () => {
      const all = running.logs.join("");
      expect(all).not.to.contain("PRIVATE KEY");
      expect(all).not.to.contain(fooCa.files["ca-key.pem"]!.split("\n")[1]!);
    });
  });
});

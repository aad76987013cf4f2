import { expect } from "chai";
import {
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type KubeConfig,
} from "@kubernetes/client-node";
import type { DistinguishedName } from "../../src/pki/names.js";
import type { SubjectAlternativeNames } from "../../src/pki/subject-alternative-names.js";
import { apiErrorCode } from "../../src/kube/client.js";
import { mergePatch } from "../support/kube-client.js";
import { signerApiGroup, signerApiVersion, signerPlural } from "../../src/api/signer.js";
import { compileKubeletServingSettings } from "../../src/policy/kubelet-serving-settings.js";
import {
  buildTestCertificateRequest,
  makeTestCertificateAuthority,
  opensslVerify,
  testKey,
} from "../support/pki.js";
import {
  allowToRequestCertificates,
  asNode,
  bindClusterRole,
  asServiceAccount,
  grantSignerVerbs,
  groupSubject,
  impersonatingKubeConfig,
  serviceAccountSubject,
  uniqueName,
  userSubject,
} from "../support/identities.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  waitForCsrEvent,
  deleteSigner,
  installSignerManifests,
  kubectl,
  readCsr,
  readSigner,
  setApproval,
  startController,
  submitCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
  waitForApprovalDecision,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

const kubeletServing = "kubernetes.io/kubelet-serving";
const kubeletClient = "kubernetes.io/kube-apiserver-client-kubelet";
const servingUsages = ["digital signature", "key encipherment", "server auth"];

describe("approval automation on a real API server", function () {
  this.timeout(60_000);
  const suffix = uniqueName("a").slice(2);
  const n1 = `node-a-${suffix}`;
  const n2 = `node-b-${suffix}`;
  let admin: KubeConfig;
  let running: RunningController;

  before(async function () {
    this.timeout(60_000);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    const core = admin.makeApiClient(CoreV1Api);
    for (const [name, ip] of [
      [n1, "10.1.0.11"],
      [n2, "10.1.0.12"],
    ] as const) {
      await core.createNode({ body: { metadata: { name } } });
      const node = await core.readNode({ name });
      node.status = {
        addresses: [
          { type: "Hostname", address: name },
          { type: "InternalIP", address: ip },
          { type: "InternalDNS", address: `${name}.cluster.internal` },
        ],
      };
      await core.replaceNodeStatus({ name, body: node });
    }
    // Kubelets may create and read CSRs (what the bootstrap policy's system:node role grants).
    await allowToRequestCertificates(admin, groupSubject("system:nodes"));
    // --approve-kubelet-client comes with its own approve grant (a kustomize component).
    kubectl(controlPlane(), [
      "apply",
      "--server-side",
      "-f",
      "manifests/components/kubelet-client-approval/rbac.yaml",
    ]);
    running = await startController(controlPlane(), [], {
      approval: {
        kubeletServing: {
          onRefusal: "Deny",
          ...compileKubeletServingSettings({
            ipRanges: ["10.1.0.0/16"],
            serviceClusterIpRanges: ["10.0.0.0/24"],
            dnsPatterns: ["node-[ab]-[0-9a-f]+(\\.cluster\\.internal)?"],
            extraDnsPatterns: ["{node}.nodes.example.test"],
            maximumExpirationSeconds: 30 * 86400,
          }),
        },
        kubeletClient: true,
      },
    });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-10).join(""));
  });

  after(async () => {
    await running?.stop();
  });

  function servingRequest(
    options: { cn?: string; o?: string; sans?: Partial<SubjectAlternativeNames> } = {},
  ): string {
    const subject: DistinguishedName = [
      { type: "O", value: options.o ?? "system:nodes" },
      { type: "CN", value: options.cn ?? `system:node:${n1}` },
    ];
    return buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subject,
      subjectAltNames: options.sans ?? { dns: [n1], ip: ["10.1.0.11"] },
    });
  }

  describe("kubelet serving certificates (kubernetes.io/kubelet-serving)", () => {
    it("approves the honest request: every SAN is an address of the requesting Node", async () => {
      const name = uniqueName("csr-serving");
      const started = Date.now();
      await submitCsr(asNode(admin, n1), {
        name,
        signerName: kubeletServing,
        requestPem: servingRequest({
          sans: { dns: [n1, `${n1}.cluster.internal`, `${n1}.nodes.example.test`], ip: ["10.1.0.11"] },
        }),
        usages: servingUsages,
      });
      const decision = await waitForApprovalDecision(admin, name);
      console.log(`      (approved ${Date.now() - started} ms after creation)`);
      expect(decision.type).to.equal("Approved");
      expect(decision.reason).to.equal("AutoApproved");
      expect(decision.message).to.contain(`Node ${n1}`);
      await waitForCsrEvent(admin, name, "AutoApproved", "Normal");
    });

    it("another node's name in the CN never reaches the approver: NodeRestriction refuses it at creation", async () => {
      // The approver denies it too (CommonNameMismatch, unit-tested) for clusters without NodeRestriction.
      try {
        await submitCsr(asNode(admin, n1), {
          name: uniqueName("csr-serving"),
          signerName: kubeletServing,
          requestPem: servingRequest({ cn: `system:node:${n2}` }),
          usages: servingUsages,
        });
        expect.fail("NodeRestriction let a node ask for another node's CN");
      } catch (error) {
        expect(apiErrorCode(error)).to.equal(403);
      }
    });

    const refusals: [
      string,
      () => { requester: string; request: string; usages?: string[]; expirationSeconds?: number },
      string,
      RegExp,
    ][] = [
      [
        "another node's address",
        () => ({ requester: n1, request: servingRequest({ sans: { dns: [n1], ip: ["10.1.0.12"] } }) }),
        "SanOfAnotherNode",
        new RegExp(`IP SAN 10\\.1\\.0\\.12 is a name or address of Node ${n2}`),
      ],
      [
        "another node's DNS name",
        () => ({ requester: n1, request: servingRequest({ sans: { dns: [n2] } }) }),
        "SanOfAnotherNode",
        new RegExp(`DNS SAN ${n2} is a name or address of Node ${n2}`),
      ],
      [
        "an address no Node has",
        () => ({ requester: n1, request: servingRequest({ sans: { dns: [n1], ip: ["10.1.0.99"] } }) }),
        "SanNotNodeAddress",
        /IP SAN 10\.1\.0\.99 is not an address/,
      ],
      [
        "a cluster service name",
        () => ({ requester: n1, request: servingRequest({ sans: { dns: [n1, "kubernetes.default.svc"] } }) }),
        "ClusterServiceName",
        /kubernetes\.default\.svc is a cluster service name/,
      ],
      [
        "a URI SAN",
        () => ({
          requester: n1,
          request: servingRequest({
            sans: { dns: [n1], uri: ["spiffe://cluster.local/ns/kube-system/sa/x"] },
          }),
        }),
        "UnexpectedSanType",
        /URI and email/,
      ],
      [
        "wrong usages",
        () => ({
          requester: n1,
          request: servingRequest(),
          usages: ["digital signature", "key encipherment", "client auth"],
        }),
        "UsagesNotAllowed",
        /usages must be exactly/,
      ],
      [
        "a missing Node",
        () => ({
          requester: `ghost-${suffix}`,
          request: servingRequest({ cn: `system:node:ghost-${suffix}`, sans: { dns: [`ghost-${suffix}`] } }),
        }),
        "NodeNotFound",
        /does not exist/,
      ],
      [
        "a too-long lifetime",
        () => ({ requester: n1, request: servingRequest(), expirationSeconds: 365 * 86400 }),
        "ExpirationTooLong",
        /exceeds 2592000/,
      ],
      [
        "O=system:masters",
        () => ({ requester: n1, request: servingRequest({ o: "system:masters" }) }),
        "OrganizationMismatch",
        /O must be exactly/,
      ],
      [
        // Decided from the cache's TooLarge marker: the 1.3 MB are never read back for approval.
        "a request padded past the parse cap",
        () => ({ requester: n1, request: servingRequest() + "#".repeat(1_300_000) + "\n" }),
        "RequestTooLarge",
        /request is \d+ bytes; the limit is 6500/,
      ],
    ];
    for (const [what, make, reason, message] of refusals) {
      it(`denies ${what}: Denied ${reason}, message naming the check, Warning Event`, async () => {
        const { requester, request, usages, expirationSeconds } = make();
        const name = uniqueName("csr-serving");
        await submitCsr(asNode(admin, requester), {
          name,
          signerName: kubeletServing,
          requestPem: request,
          usages: usages ?? servingUsages,
          ...(expirationSeconds ? { expirationSeconds } : {}),
        });
        const decision = await waitForApprovalDecision(admin, name);
        expect(decision.type).to.equal("Denied");
        expect(decision.reason).to.equal(reason);
        expect(decision.message).to.match(message);
        expect(decision.message).to.match(/\(check [a-zA-Z.]+\)$/);
        await waitForCsrEvent(admin, name, reason, "Warning");
      });
    }
  });

  describe("kubelet client certificates (kubernetes.io/kube-apiserver-client-kubelet)", () => {
    const nodeClientProbe = (subresource: string) => ({
      apiGroups: ["certificates.k8s.io"],
      resources: [`certificatesigningrequests/${subresource}`],
      verbs: ["create"],
    });
    const clientRequest = () =>
      buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subject: [
          { type: "O", value: "system:nodes" },
          { type: "CN", value: `system:node:${n2}` },
        ],
      });

    it("approves a node renewing its own identity only once RBAC allows certificatesigningrequests/selfnodeclient", async () => {
      const before = uniqueName("csr-client");
      await submitCsr(asNode(admin, n2), {
        name: before,
        signerName: kubeletClient,
        requestPem: clientRequest(),
        usages: ["digital signature", "client auth"],
      });
      // Without the permission the approver leaves it alone, like kube-controller-manager: no denial.
      const marker = uniqueName("csr-serving");
      await submitCsr(asNode(admin, n1), {
        name: marker,
        signerName: kubeletServing,
        requestPem: servingRequest(),
        usages: servingUsages,
      });
      await waitForApprovalDecision(admin, marker);
      expect((await readCsr(admin, before))?.status?.conditions ?? []).to.deep.equal([]);

      await bindClusterRole(
        admin,
        groupSubject("system:nodes"),
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        nodeClientProbe("selfnodeclient"),
      );
      const after = uniqueName("csr-client");
      await submitCsr(asNode(admin, n2), {
        name: after,
        signerName: kubeletClient,
        requestPem: clientRequest(),
        usages: ["digital signature", "key encipherment", "client auth"],
      });
      const decision = await waitForApprovalDecision(admin, after);
      expect(decision).to.include({ type: "Approved", reason: "AutoApproved" });
      expect(decision.message).to.contain("selfnodeclient");
    });

    it("falls back to nodeclient when selfnodeclient is not allowed, as kube-controller-manager does", async () => {
      const nodeName = `n3-${suffix}`;
      const user = `system:node:${nodeName}`;
      // Not in system:nodes, so the selfnodeclient binding above does not apply; nodeclient does.
      const requester = impersonatingKubeConfig(admin, user, ["system:authenticated"]);
      await allowToRequestCertificates(admin, userSubject(user));
      // Waited for: the approver asks once, and an early "no" would leave the CSR to the next resync.
      await bindClusterRole(
        admin,
        userSubject(user),
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        nodeClientProbe("nodeclient"),
      );
      const name = uniqueName("csr-client");
      await submitCsr(requester, {
        name,
        signerName: kubeletClient,
        requestPem: buildTestCertificateRequest({
          key: testKey("ecdsa-p256"),
          subject: [
            { type: "O", value: "system:nodes" },
            { type: "CN", value: user },
          ],
        }),
        usages: ["digital signature", "client auth"],
      });
      const decision = await waitForApprovalDecision(admin, name);
      expect(decision).to.include({ type: "Approved", reason: "AutoApproved" });
      expect(decision.message).to.contain("certificatesigningrequests/nodeclient");
    });

    it("never denies a kubelet client CSR, even a malformed one: it stays pending", async () => {
      const name = uniqueName("csr-client");
      await submitCsr(asNode(admin, n2), {
        name,
        signerName: kubeletClient,
        requestPem: buildTestCertificateRequest({
          key: testKey("rsa-1024"),
          subject: [
            { type: "O", value: "system:nodes" },
            { type: "CN", value: `system:node:${n2}` },
          ],
        }),
        usages: ["digital signature", "client auth"],
      });
      // The approver says why it leaves a CSR alone (debug log): wait for that, then look.
      const entry = await waitFor("the approver to pass over the CSR", async () =>
        running.logs
          .map((line) => JSON.parse(line) as { msg?: string; csr?: string; why?: string })
          .find((logged) => logged.msg === "not approving" && logged.csr === name),
      );
      expect(entry.why).to.contain("(check key)");
      expect((await readCsr(admin, name))?.status?.conditions ?? []).to.deep.equal([]);
    });
  });

  describe("tenant Signers with spec.approval.mode Automatic", () => {
    const signerName = `approval.csr-signer.test/foo-${suffix}`;
    const objectName = `approval-foo-${suffix}`;
    let tenant: RunningController;
    let ca: Awaited<ReturnType<typeof makeTestCertificateAuthority>>;

    before(async () => {
      ca = await makeTestCertificateAuthority({ name: `approval-${suffix}` });
      await createCaSecret(admin, `approval-cacerts-${suffix}`, ca.files);
      await createSigner(admin, objectName, {
        signerName,
        certificateAuthority: { secretName: `approval-cacerts-${suffix}` },
        approval: { mode: "Automatic", requireRbacVerb: "request" },
        policy: {
          requesters: { tenantServiceAccounts: true },
          tenants: { namespaces: ["foo"] },
          spiffe: { trustDomain: "cluster.local" },
        },
      });
      await grantSignerVerbs(admin, {
        subject: serviceAccountSubject(controllerNamespace, "csr-signer"),
        signerNames: [signerName],
        verbs: ["approve"],
      });
      await allowToRequestCertificates(admin, [
        serviceAccountSubject("foo", "web"),
        serviceAccountSubject("foo", "other"),
      ]);
      tenant = await startController(controlPlane(), [signerName], {
        leaderElection: true,
        leaseName: `approval-${suffix}`,
        identity: "approval-tenant",
      });
      await waitForSignerCondition(admin, objectName, "Ready", "True");
    });

    after(async () => {
      await tenant?.stop();
      await deleteSigner(admin, objectName);
    });

    const selfRequest = (serviceAccount: string, uriAccount = serviceAccount) =>
      buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subjectAltNames: { uri: [`spiffe://cluster.local/ns/foo/sa/${uriAccount}`] },
      });

    it("denies a requester without the RBAC verb, approves and issues once the tenant grants it with its own Role", async () => {
      const denied = uniqueName("csr-tenant");
      await submitCsr(asServiceAccount(admin, "foo", "web"), {
        name: denied,
        signerName,
        requestPem: selfRequest("web"),
      });
      const refusal = await waitForApprovalDecision(admin, denied);
      expect(refusal).to.include({ type: "Denied", reason: "RequesterNotAuthorized" });
      expect(refusal.message).to.contain("lacks verb request on certificates.k8s.io signers/");

      // The tenant's own Role and RoleBinding in namespace foo: no cluster-wide grant needed.
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      await admin
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: "foo" } } })
        .catch((error: unknown) => {
          if (apiErrorCode(error) !== 409) throw error; // another test file made it already
        });
      await rbac.createNamespacedRole({
        namespace: "foo",
        body: {
          metadata: { name: `request-${suffix}` },
          rules: [
            {
              apiGroups: ["certificates.k8s.io"],
              resources: ["signers"],
              resourceNames: [signerName],
              verbs: ["request"],
            },
          ],
        },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: "foo",
        body: {
          metadata: { name: `request-${suffix}` },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `request-${suffix}` },
          subjects: [{ kind: "ServiceAccount", name: "web", namespace: "foo" }],
        },
      });
      const approved = uniqueName("csr-tenant");
      await waitFor("the RoleBinding to take effect", async () => {
        const review = await admin.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
          body: {
            spec: {
              user: "system:serviceaccount:foo:web",
              groups: ["system:serviceaccounts"],
              resourceAttributes: {
                namespace: "foo",
                group: "certificates.k8s.io",
                resource: "signers",
                name: signerName,
                verb: "request",
              },
            },
          },
        });
        return review.status?.allowed ? true : undefined;
      });
      await submitCsr(asServiceAccount(admin, "foo", "web"), {
        name: approved,
        signerName,
        requestPem: selfRequest("web"),
      });
      const approval = await waitForApprovalDecision(admin, approved);
      expect(approval).to.include({ type: "Approved", reason: "AutoApproved" });
      expect(approval.message).to.match(
        new RegExp(
          `Signer ${objectName} approved spiffe://cluster.local/ns/foo/sa/web under spec.policy.requesters.tenantServiceAccounts`,
        ),
      );
      const outcome = await waitForOutcome(admin, approved);
      expect(opensslVerify(outcome.certificatePem!, ca.files["root-cert.pem"]!)).to.match(/: OK/);
    });

    it('takes a domain-wide grant as the API server does: request on signers "<domain>/*" in the tenant\'s Role', async () => {
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      const domainWide = `request-domain-${suffix}`;
      await rbac.createNamespacedRole({
        namespace: "foo",
        body: {
          metadata: { name: domainWide },
          rules: [
            {
              apiGroups: ["certificates.k8s.io"],
              resources: ["signers"],
              resourceNames: [`${signerName.split("/")[0]}/*`],
              verbs: ["request"],
            },
          ],
        },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: "foo",
        body: {
          metadata: { name: domainWide },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: domainWide },
          subjects: [{ kind: "ServiceAccount", name: "other", namespace: "foo" }],
        },
      });
      // Denials until the binding takes effect are final for that CSR: retry with fresh ones.
      const decision = await waitFor("a domain-wide Role to approve", async () => {
        const name = uniqueName("csr-tenant");
        await submitCsr(asServiceAccount(admin, "foo", "other"), {
          name,
          signerName,
          requestPem: selfRequest("other"),
        });
        const result = await waitForApprovalDecision(admin, name);
        return result.type === "Approved" ? result : undefined;
      });
      expect(decision).to.include({ type: "Approved", reason: "AutoApproved" });
    });

    it("never approves what the signer would refuse: another identity is Denied with the policy's rule", async () => {
      const name = uniqueName("csr-tenant");
      await submitCsr(asServiceAccount(admin, "foo", "web"), {
        name,
        signerName,
        requestPem: selfRequest("web", "admin"),
      });
      const decision = await waitForApprovalDecision(admin, name);
      expect(decision).to.include({ type: "Denied", reason: "SpiffeIdentityMismatch" });
      expect(decision.message).to.contain("rule spec.policy.requesters.tenantServiceAccounts");
      expect((await readCsr(admin, name))?.status?.certificate).to.equal(undefined);
    });

    it("with onRefusal LeavePending, a request the policy refuses stays pending, with a Warning Event naming the rule", async () => {
      const objects = admin.makeApiClient(CustomObjectsApi);
      const setOnRefusal = (onRefusal: string) =>
        objects.patchClusterCustomObject(
          {
            group: signerApiGroup,
            version: signerApiVersion,
            plural: signerPlural,
            name: objectName,
            body: { spec: { approval: { onRefusal } } },
          },
          mergePatch,
        );
      await setOnRefusal("LeavePending");
      try {
        // The controller has seen the new generation once the Signer's status says so.
        const generation = (await readSigner(admin, objectName)) as { metadata?: { generation?: number } };
        await waitFor("the controller to observe the change", async () => {
          const signer = await readSigner(admin, objectName);
          return (signer.status as { observedGeneration?: number } | undefined)?.observedGeneration ===
            generation.metadata?.generation
            ? true
            : undefined;
        });
        const name = uniqueName("csr-tenant");
        await submitCsr(asServiceAccount(admin, "foo", "web"), {
          name,
          signerName,
          requestPem: selfRequest("web", "admin"),
        });
        const event = await waitForCsrEvent(admin, name, "SpiffeIdentityMismatch");
        expect(event.type).to.equal("Warning");
        expect(event.message)
          .to.contain("not approved, left pending")
          .and.to.contain("rule spec.policy.requesters.tenantServiceAccounts");
        expect((await readCsr(admin, name))?.status?.conditions ?? []).to.deep.equal([]);
        const [metricsAddress] = tenant.controller.addresses();
        const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
        expect(metrics).to.contain(
          `csr_signer_approvals_total{signer="${signerName}",decision="left-pending",reason="SpiffeIdentityMismatch"} 1`,
        );
      } finally {
        await setOnRefusal("Deny");
      }
    });
  });

  describe("least privilege and metrics, after the flows above", () => {
    it("approves only with least-privilege RBAC: approve on the kubelet signers, not on others", async () => {
      const authorization = admin.makeApiClient(AuthorizationV1Api);
      const can = async (name: string) =>
        (
          await authorization.createSubjectAccessReview({
            body: {
              spec: {
                user: "system:serviceaccount:csr-signer:csr-signer",
                groups: ["system:serviceaccounts", "system:serviceaccounts:csr-signer"],
                resourceAttributes: {
                  group: "certificates.k8s.io",
                  resource: "signers",
                  name,
                  verb: "approve",
                },
              },
            },
          })
        ).status?.allowed === true;
      expect(await can(kubeletServing)).to.equal(true);
      expect(await can(kubeletClient)).to.equal(true);
      expect(await can("kubernetes.io/kube-apiserver-client")).to.equal(false);
      expect(await can("kubernetes.io/legacy-unknown")).to.equal(false);
    });

    it("counts approvals and denials by reason in metrics", async () => {
      const [metricsAddress] = running.controller.addresses();
      const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
      expect(metrics).to.match(
        /csr_signer_approvals_total\{signer="kubernetes.io\/kubelet-serving",decision="approved",reason="AutoApproved"\} [1-9]/,
      );
      expect(metrics).to.match(
        /csr_signer_approvals_total\{signer="kubernetes.io\/kubelet-serving",decision="denied",reason="SanNotNodeAddress"\} [1-9]/,
      );
    });
  });
});

describe("CSR clean-up", function () {
  this.timeout(60_000);
  const suffix = uniqueName("c").slice(2);
  const signerName = `cleanup.csr-signer.test/foo-${suffix}`;
  const objectName = `cleanup-${suffix}`;

  it("deletes issued, denied and pending CSRs of our signers after their periods, never others' (every period is in the unit tests)", async () => {
    const admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    const ca = await makeTestCertificateAuthority({ name: `cleanup-${suffix}` });
    await createCaSecret(admin, `cleanup-cacerts-${suffix}`, ca.files);
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName: `cleanup-cacerts-${suffix}` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    const running = await startController(controlPlane(), [signerName], {
      leaderElection: true,
      leaseName: `cleanup-${suffix}`,
      identity: "cleanup",
      cleanup: { finishedSeconds: 2, pendingSeconds: 3, approvedUnsignedSeconds: 2, intervalMs: 250 },
    });
    try {
      await waitForSignerCondition(admin, objectName, "Ready", "True");
      const request = () =>
        buildTestCertificateRequest({
          key: testKey("ecdsa-p256"),
          subjectAltNames: { dns: ["a.example.test"] },
        });
      const issued = uniqueName("csr-clean-issued");
      const denied = uniqueName("csr-clean-denied");
      const pending = uniqueName("csr-clean-pending");
      const foreign = uniqueName("csr-clean-foreign");
      const usages = ["digital signature", "server auth"];
      await submitCsr(admin, { name: issued, signerName, requestPem: request(), usages });
      await setApproval(admin, issued, "Approved");
      await submitCsr(admin, { name: denied, signerName, requestPem: request(), usages });
      await setApproval(admin, denied, "Denied");
      await submitCsr(admin, { name: pending, signerName, requestPem: request(), usages });
      await submitCsr(admin, {
        name: foreign,
        signerName: `cleanup.csr-signer.test/other-${suffix}`,
        requestPem: request(),
        usages,
      });
      expect((await waitForOutcome(admin, issued)).certificatePem).to.be.a("string");
      for (const name of [issued, denied, pending]) {
        await waitFor(
          `${name} to be deleted`,
          async () => ((await readCsr(admin, name)) === undefined ? true : undefined),
          15_000,
        );
      }
      expect(await readCsr(admin, foreign)).not.to.equal(undefined);
      const metrics = await running.controller.metrics.cleaned.get();
      const reasons = Object.fromEntries(metrics.values.map((value) => [value.labels.reason, value.value]));
      expect(reasons).to.include.keys("Issued", "Denied", "Pending");
    } finally {
      await running.stop();
      await deleteSigner(admin, objectName);
    }
  });
});

/**
 * PodCertificateRequests on the real API server (feature gate PodCertificateRequest, v1beta1), made
 * as a kubelet makes them: a Node, a ServiceAccount and a Pod bound to the Node, and the request
 * created as system:node:<name> (the Node authorizer and NodeRestriction check it against the Pod).
 */
import { expect } from "chai";
import { X509Certificate, createPublicKey } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  CertificatesV1beta1Api,
  CoreV1Api,
  type KubeConfig,
  type V1beta1PodCertificateRequest,
} from "@kubernetes/client-node";
import { clusterTrustBundleName } from "../../src/bundle/trust-bundle.js";
import {
  makeTestCertificateAuthority,
  opensslVerify,
  type TestCertificateAuthority,
} from "../support/pki.js";
import {
  createPodOnNode,
  podKeyFields,
  podTestKey,
  type PodFixture,
  type PodTestKeyType,
} from "../support/pod-certificates.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readSigner,
  startController,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { asNode, grantClusterRole, serviceAccountSubject, uniqueName } from "../support/identities.js";
import { waitFor } from "../support/wait.js";
import { runCliInProcess as cli } from "../support/cli.js";
import { createSoftHsmToken, softHsmTokenFolder } from "../support/softhsm.js";
import { controlPlane } from "./setup.js";

describe("pod certificates: PodCertificateRequests signed by a Signer with spec.podCertificates", function () {
  this.timeout(90_000);
  const suffix = uniqueName("pc").slice(3);
  const signerName = `pods.csr-signer.test/${suffix}`;
  const csrOnlySignerName = `pods.csr-signer.test/csr-only-${suffix}`;
  const objectName = `pc-${suffix}`;
  const csrOnlyObject = `pc-csr-only-${suffix}`;
  const tenant = `pc-foo-${suffix}`;
  const stranger = `pc-bar-${suffix}`;
  const nodeName = `pc-node-${suffix}`;
  let admin: KubeConfig;
  let authority: TestCertificateAuthority;
  let running: RunningController;
  let nodeUID: string;
  let tenantPod: PodFixture;
  let strangerPod: PodFixture;

  const createPod = (namespace: string, name: string): Promise<PodFixture> =>
    createPodOnNode(admin, namespace, name, nodeName);

  /** Creates the request as the kubelet of the pod's node; returns its name. */
  async function requestAsKubelet(
    pod: PodFixture,
    options: {
      signer?: string;
      keyType?: PodTestKeyType;
      form?: "stub" | "proof";
      maxExpirationSeconds?: number;
    } = {},
  ): Promise<string> {
    const kubelet = asNode(admin, nodeName).makeApiClient(CertificatesV1beta1Api);
    const created = await kubelet.createNamespacedPodCertificateRequest({
      namespace: pod.namespace,
      body: {
        metadata: { generateName: `${pod.name}-` },
        spec: {
          signerName: options.signer ?? signerName,
          podName: pod.name,
          podUID: pod.uid,
          serviceAccountName: pod.serviceAccountName,
          serviceAccountUID: pod.serviceAccountUID,
          nodeName,
          nodeUID,
          maxExpirationSeconds: options.maxExpirationSeconds ?? 86_400,
          ...podKeyFields(podTestKey(options.keyType ?? "ECDSAP256"), pod.uid, options.form ?? "stub"),
        } as V1beta1PodCertificateRequest["spec"],
      },
    });
    return created.metadata!.name!;
  }

  async function readRequest(namespace: string, name: string): Promise<V1beta1PodCertificateRequest> {
    return admin
      .makeApiClient(CertificatesV1beta1Api)
      .readNamespacedPodCertificateRequest({ namespace, name });
  }

  async function waitForDecision(namespace: string, name: string): Promise<V1beta1PodCertificateRequest> {
    return waitFor(`a decision on PodCertificateRequest ${namespace}/${name}`, async () => {
      const request = await readRequest(namespace, name);
      return (request.status?.conditions ?? []).length > 0 ? request : undefined;
    });
  }

  async function eventsOf(
    namespace: string,
    name: string,
  ): Promise<{ type: string; reason: string; message: string }[]> {
    const list = await admin
      .makeApiClient(CoreV1Api)
      .listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
    return list.items.map((event) => ({
      type: event.type ?? "",
      reason: event.reason ?? "",
      message: event.message ?? "",
    }));
  }

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    authority = await makeTestCertificateAuthority({ name: "pods" });
    await createCaSecret(admin, `${objectName}-cacerts`, authority.files);
    const node = await admin.makeApiClient(CoreV1Api).createNode({ body: { metadata: { name: nodeName } } });
    nodeUID = node.metadata!.uid!;
    tenantPod = await createPod(tenant, "web-0");
    strangerPod = await createPod(stranger, "web-0");
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName: `${objectName}-cacerts` },
      issuance: { maxDuration: "48h" },
      policy: {
        tenants: { namespaces: [tenant] },
        spiffe: { trustDomain: "cluster.local" },
        subject: { organizations: ["csr-signer tests"] },
      },
      trustBundle: { configMap: { enabled: false } },
      podCertificates: { dnsNames: ["{podName}.{namespace}.pods.test"] },
    });
    // Same CA, CSRs only: its signer name is ours for CSRs, never for PodCertificateRequests.
    await createSigner(admin, csrOnlyObject, {
      signerName: csrOnlySignerName,
      certificateAuthority: { secretName: `${objectName}-cacerts` },
      policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: [tenant] } },
      trustBundle: { configMap: { enabled: false }, clusterTrustBundle: false },
    });
    // beginRefreshAt pinned to the middle of its 50-80% band.
    // Token keys: quick reopening; no idle probe, so a lost token is found by a signature (the test).
    running = await startController(controlPlane(), [signerName, csrOnlySignerName], {
      podCertificateRandom: () => 0.5,
      tokenKeys: {
        timings: {
          initialRetryMs: 200,
          maximumRetryMs: 1000,
          incorrectPinRetryMs: 3000,
          probeIntervalMs: 600_000,
        },
      },
    });
    await waitForSignerCondition(admin, objectName, "Ready", "True");
    await waitForSignerCondition(admin, csrOnlyObject, "Ready", "True");
  });

  after(async () => {
    await running?.stop();
    await deleteSigner(admin, objectName);
    await deleteSigner(admin, csrOnlyObject);
  });

  it("issues a stub-request ECDSA P-256 key the pod's SPIFFE ID: chain leaf first, verifying against the ClusterTrustBundle", async () => {
    const name = await requestAsKubelet(tenantPod);
    const request = await waitForDecision(tenant, name);
    expect(request.status!.conditions!.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ["Issued", "True", "Issued"],
    ]);
    const chain = request.status!.certificateChain!;
    const bundle = await waitFor("the Signer's ClusterTrustBundle", async () => {
      const list = await admin.makeApiClient(CertificatesV1beta1Api).listClusterTrustBundle();
      return list.items.find((item) => item.metadata?.name === clusterTrustBundleName(signerName));
    });
    expect(opensslVerify(chain, bundle.spec.trustBundle)).to.match(/OK/);

    const leaf = new X509Certificate(chain);
    expect(leaf.subjectAltName).to.equal(
      `DNS:web-0.${tenant}.pods.test, URI:spiffe://cluster.local/ns/${tenant}/sa/web`,
    );
    expect(leaf.publicKey.export({ format: "der", type: "spki" }).toString("base64")).to.equal(
      createPublicKey(podTestKey("ECDSAP256")).export({ format: "der", type: "spki" }).toString("base64"),
    );
    expect(leaf.issuer).to.equal(new X509Certificate(authority.intermediate.certificate.pem).subject);

    // Lifetime: the request's 24 h (below the Signer's 48 h), notBefore a minute back, refresh at 65%.
    const notBefore = new Date(request.status!.notBefore!).getTime();
    const notAfter = new Date(request.status!.notAfter!).getTime();
    const beginRefreshAt = new Date(request.status!.beginRefreshAt!).getTime();
    expect(notBefore).to.equal(new Date(leaf.validFrom).getTime());
    expect(notAfter).to.equal(new Date(leaf.validTo).getTime());
    expect(notAfter - notBefore).to.equal(86_400_000);
    expect(beginRefreshAt - notBefore).to.equal(0.65 * 86_400_000);

    const events = await waitFor("the Issued Event", async () => {
      const all = await eventsOf(tenant, name);
      return all.some((event) => event.reason === "Issued") ? all : undefined;
    });
    expect(events.find((event) => event.reason === "Issued")!.message).to.contain(
      `spiffe://cluster.local/ns/${tenant}/sa/web`,
    );
  });

  it("issues an RSA 3072 key in the deprecated form (proof of possession over the pod UID), capped at the Signer's maxDuration", async () => {
    const name = await requestAsKubelet(tenantPod, {
      keyType: "RSA3072",
      form: "proof",
      maxExpirationSeconds: 7 * 86_400,
    });
    const request = await waitForDecision(tenant, name);
    expect(request.status!.conditions![0]!.type).to.equal("Issued");
    const lifetime =
      new Date(request.status!.notAfter!).getTime() - new Date(request.status!.notBefore!).getTime();
    expect(lifetime).to.equal(48 * 3600_000);
    const leaf = new X509Certificate(request.status!.certificateChain!);
    expect(leaf.publicKey.asymmetricKeyDetails?.modulusLength).to.equal(3072);
  });

  it("denies a pod of a namespace that is not a tenant: Denied NamespaceNotTenant, with a Warning Event", async () => {
    const name = await requestAsKubelet(strangerPod);
    const request = await waitForDecision(stranger, name);
    const [condition] = request.status!.conditions!;
    expect([condition!.type, condition!.reason]).to.deep.equal(["Denied", "NamespaceNotTenant"]);
    expect(condition!.message).to.equal(
      `namespace ${stranger} is not a tenant of ${signerName} (rule spec.policy.tenants)`,
    );
    expect(request.status!.certificateChain ?? "").to.equal("");
    await waitFor("the NamespaceNotTenant Event", async () =>
      (await eventsOf(stranger, name)).find(
        (event) => event.reason === "NamespaceNotTenant" && event.type === "Warning",
      ),
    );
  });

  it("denies a key type the Signer does not take (Ed25519): Denied UnsupportedKeyType, suggesting one it takes", async () => {
    const name = await requestAsKubelet(tenantPod, { keyType: "ED25519" });
    const request = await waitForDecision(tenant, name);
    const [condition] = request.status!.conditions!;
    expect([condition!.type, condition!.reason]).to.deep.equal(["Denied", "UnsupportedKeyType"]);
    expect(condition!.message).to.contain("use keyType ECDSAP256");
  });

  it("never touches a request for a signer name we do not run, nor one of a Signer without spec.podCertificates", async () => {
    const unknown = await requestAsKubelet(tenantPod, { signer: `elsewhere.csr-signer.test/${suffix}` });
    const csrOnly = await requestAsKubelet(tenantPod, { signer: csrOnlySignerName });
    const ours = await requestAsKubelet(tenantPod);
    expect((await waitForDecision(tenant, ours)).status!.conditions![0]!.type).to.equal("Issued");
    // The deterministic point: both are in the controller's cache, so its handler has seen them and
    // decided (at that event, synchronously) whether to queue them; whatever it did is done by now.
    for (const name of [unknown, csrOnly])
      await waitFor(`the controller to cache ${name}`, async () =>
        running.controller.cachedPodCertificateRequest(tenant, name),
      );
    await waitFor("the PodCertificateRequest queue to drain", async () => {
      const depth = await running.controller.metrics.queueDepth.get();
      return (depth.values.find((value) => value.labels.name === "podcertificaterequest")?.value ?? 0) === 0
        ? true
        : undefined;
    });
    for (const name of [unknown, csrOnly]) {
      const request = await readRequest(tenant, name);
      expect(request.status?.conditions ?? [], name).to.deep.equal([]);
      expect((request.metadata?.managedFields ?? []).map((field) => field.operation)).to.deep.equal([
        "Update",
      ]);
      expect(await eventsOf(tenant, name)).to.deep.equal([]);
      // Cached without its key fields: the cache holds foreign requests' names, not their bytes.
      expect(running.controller.cachedPodCertificateRequest(tenant, name)?.spec?.keyOmitted).to.equal(true);
    }
  });

  it("signs a request that arrived before its Signer, once the Signer is ready (its key read back: the cache had dropped it)", async () => {
    const lateObject = `pc-late-${suffix}`;
    const lateSignerName = `pods.csr-signer.test/late-${suffix}`;
    await grantClusterRole(
      admin,
      serviceAccountSubject(controllerNamespace, "csr-signer"),
      [
        {
          apiGroups: ["certificates.k8s.io"],
          resources: ["signers"],
          resourceNames: [lateSignerName],
          verbs: ["sign"],
        },
      ],
      `controller-sign-late-${suffix}`,
    );
    const name = await requestAsKubelet(tenantPod, { signer: lateSignerName });
    await waitFor("the controller to cache the request", async () =>
      running.controller.cachedPodCertificateRequest(tenant, name),
    );
    expect(running.controller.cachedPodCertificateRequest(tenant, name)?.spec?.keyOmitted).to.equal(true);
    try {
      await createSigner(admin, lateObject, {
        signerName: lateSignerName,
        certificateAuthority: { secretName: `${objectName}-cacerts` },
        policy: { tenants: { namespaces: [tenant] }, spiffe: { trustDomain: "cluster.local" } },
        trustBundle: { configMap: { enabled: false }, clusterTrustBundle: false },
        podCertificates: {},
      });
      const request = await waitForDecision(tenant, name);
      expect(request.status!.conditions![0]!.type).to.equal("Issued");
      expect(new X509Certificate(request.status!.certificateChain!).subjectAltName).to.equal(
        `URI:spiffe://cluster.local/ns/${tenant}/sa/web`,
      );
    } finally {
      await deleteSigner(admin, lateObject);
    }
  });

  it("issues through a Signer whose CA key is in a PKCS#11 token (SoftHSM); a lost token leaves requests pending with Events naming no token detail, and issuance resumes", async () => {
    const hsmObject = `pc-hsm-${suffix}`;
    const hsmSignerName = `pods.csr-signer.test/hsm-${suffix}`;
    const token = createSoftHsmToken("pc-hsm");
    const dir = mkdtempSync(path.join(tmpdir(), "csr-signer-pc-hsm-"));
    const pinFile = path.join(dir, "pin");
    writeFileSync(pinFile, `${token.userPin}\n`);
    const run = async (args: string[]) => {
      const result = await cli(args);
      expect(result.exitCode, result.stderr).to.equal(0);
    };
    await run(["ca", "root", "--out", path.join(dir, "root"), "--subject", `CN=pc hsm root ${suffix}`]);
    await run([
      ...["ca", "request", "--pkcs11-module", token.modulePath, "--pkcs11-token-label", token.tokenLabel],
      ...["--pkcs11-key-label", "pods-ca", "--pin-file", pinFile, "--out", path.join(dir, "ca.csr")],
    ]);
    const chainDir = path.join(dir, "chain");
    await run([
      "ca",
      "sign-intermediate",
      "--root",
      path.join(dir, "root"),
      "--csr",
      path.join(dir, "ca.csr"),
      "--out",
      chainDir,
    ]);
    const chainFiles = Object.fromEntries(
      readdirSync(chainDir).map((name) => [name, readFileSync(path.join(chainDir, name), "utf8")]),
    );
    await createCaSecret(admin, `${hsmObject}-chain`, chainFiles);
    await grantClusterRole(
      admin,
      serviceAccountSubject(controllerNamespace, "csr-signer"),
      [
        {
          apiGroups: ["certificates.k8s.io"],
          resources: ["signers"],
          resourceNames: [hsmSignerName],
          verbs: ["sign", "attest"], // attest: it publishes its ClusterTrustBundle
        },
      ],
      `controller-sign-hsm-${suffix}`,
    );
    try {
      await createSigner(admin, hsmObject, {
        signerName: hsmSignerName,
        certificateAuthority: {
          secretName: `${hsmObject}-chain`,
          pkcs11: { module: token.modulePath, tokenLabel: token.tokenLabel, keyLabel: "pods-ca", pinFile },
        },
        policy: { tenants: { namespaces: [tenant] }, spiffe: { trustDomain: "cluster.local" } },
        trustBundle: { configMap: { enabled: false } },
        podCertificates: {},
      });
      await waitForSignerCondition(admin, hsmObject, "Ready", "True");
      const issued = await waitForDecision(
        tenant,
        await requestAsKubelet(tenantPod, { signer: hsmSignerName }),
      );
      expect(issued.status!.conditions!.map((c) => c.type)).to.deep.equal(["Issued"]);
      const bundle = await waitFor("the HSM Signer's ClusterTrustBundle", async () => {
        const list = await admin.makeApiClient(CertificatesV1beta1Api).listClusterTrustBundle();
        return list.items.find((item) => item.metadata?.name === clusterTrustBundleName(hsmSignerName));
      });
      expect(opensslVerify(issued.status!.certificateChain!, bundle.spec.trustBundle)).to.match(/OK/);
      expect(new X509Certificate(issued.status!.certificateChain!).subjectAltName).to.equal(
        `URI:spiffe://cluster.local/ns/${tenant}/sa/web`,
      );

      // The token goes away: the signature fails, the request waits, the Signer is not ready, and the
      // request's Events (in the tenant's namespace) give the reason only.
      const folder = softHsmTokenFolder(token);
      cpSync(folder, path.join(dir, "token-backup"), { recursive: true });
      token.remove();
      const waiting = await requestAsKubelet(tenantPod, { signer: hsmSignerName });
      const failed = await waitFor("a token Event on the request", async () =>
        (await eventsOf(tenant, waiting)).find((event) => /^Pkcs11Token/.test(event.reason)),
      );
      expect(failed.type).to.equal("Warning");
      await waitFor("the Signer Ready=False for its token", async () => {
        const ready = (await readSigner(admin, hsmObject)).status?.conditions?.find(
          (c) => c.type === "Ready",
        );
        return ready?.status === "False" && /^Pkcs11Token/.test(ready.reason ?? "") ? true : undefined;
      });
      const events = JSON.stringify(await eventsOf(tenant, waiting));
      for (const detail of [token.tokenLabel, token.modulePath, pinFile, "pods-ca"])
        expect(events).not.to.include(detail);
      expect((await readRequest(tenant, waiting)).status?.conditions ?? []).to.deep.equal([]);

      cpSync(path.join(dir, "token-backup"), folder, { recursive: true }); // the partition is back
      await waitForSignerCondition(admin, hsmObject, "Ready", "True");
      const resumed = await waitForDecision(tenant, waiting);
      expect(resumed.status!.conditions!.map((c) => c.type)).to.deep.equal(["Issued"]);
      expect(opensslVerify(resumed.status!.certificateChain!, bundle.spec.trustBundle)).to.match(/OK/);
    } finally {
      await deleteSigner(admin, hsmObject);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts pod certificates in the metrics and the Signer's status", async () => {
    // Self-contained: what this test's own requests add, whatever ran before it.
    const issuedMetric = async () =>
      (await running.controller.metrics.podCertificatesIssued.get()).values.find(
        (value) => value.labels.signer === signerName,
      )?.value ?? 0;
    const notTenantMetric = async () =>
      (await running.controller.metrics.podCertificatesRefused.get()).values.find(
        (value) =>
          value.labels.signer === signerName &&
          value.labels.reason === "NamespaceNotTenant" &&
          value.labels.condition === "Denied",
      )?.value ?? 0;
    const counts = async () => {
      const status = (await readSigner(admin, objectName)).status as
        { issuedCount?: number; failedCount?: number } | undefined;
      return { issued: status?.issuedCount ?? 0, failed: status?.failedCount ?? 0 };
    };
    const before = {
      issued: await issuedMetric(),
      notTenant: await notTenantMetric(),
      status: await counts(),
    };
    const issued = await waitForDecision(tenant, await requestAsKubelet(tenantPod));
    expect(issued.status!.conditions![0]!.type).to.equal("Issued");
    const denied = await waitForDecision(stranger, await requestAsKubelet(strangerPod));
    expect(denied.status!.conditions![0]!.reason).to.equal("NamespaceNotTenant");
    // The controller counts right after its status write returns, which the API may show first.
    await waitFor("the metrics to count both", async () =>
      (await issuedMetric()) >= before.issued + 1 && (await notTenantMetric()) >= before.notTenant + 1
        ? true
        : undefined,
    );
    expect(await issuedMetric()).to.equal(before.issued + 1);
    expect(await notTenantMetric()).to.equal(before.notTenant + 1);
    await waitFor("the Signer's counts", async () => {
      const now = await counts();
      return now.issued >= before.status.issued + 1 && now.failed >= before.status.failed + 1
        ? true
        : undefined;
    });
  });
});

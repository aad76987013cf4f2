/**
 * How the certificate is written to status, against the real API server. A CSR whose cached copy
 * holds all a PUT of /status sends back gets one, as kube-controller-manager's signer writes
 * (kube-apiserver spends less on it than on a merge patch); any other keeps the merge patch, which
 * leaves what the cache dropped (labels, annotations, finalizers, owner references) as it is.
 */
import { expect } from "chai";
import {
  CertificatesV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import { cachedCsr } from "../../src/controller/csr-cache.js";
import { statusReplaceable } from "../../src/controller/csr-object.js";
import { KubeApi } from "../../src/kube/api-client.js";
import { kubernetesCsrApi } from "../../src/kube/csr-api-binding.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readCsr,
  startController,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import {
  buildTestCertificateRequest,
  createTestLeafCertificate,
  makeTestCertificateAuthority,
  testKey,
} from "../support/pki.js";
import { controlPlane } from "./setup.js";

/** Longer than the cache keeps of a condition message (256): a PUT must not write the cut copy back. */
const approvalMessage = "approved after a long review: ".padEnd(1_000, "r");
const finalizer = "csr-signer.test/hold";

/** A CSR as a client with its own metadata creates it; returns its name. */
async function createCsr(
  admin: KubeConfig,
  signerName: string,
  metadata: V1CertificateSigningRequest["metadata"],
): Promise<string> {
  const created = await admin.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
    body: {
      metadata,
      spec: {
        signerName,
        request: Buffer.from(
          buildTestCertificateRequest({
            key: testKey("ecdsa-p256"),
            subjectAltNames: { dns: ["web.example.test"] },
          }),
        ).toString("base64"),
        usages: ["digital signature", "server auth"],
      },
    },
  });
  return created.metadata!.name!;
}

async function approve(admin: KubeConfig, name: string): Promise<void> {
  const certificates = admin.makeApiClient(CertificatesV1Api);
  const csr = await certificates.readCertificateSigningRequest({ name });
  csr.status = {
    conditions: [
      {
        type: "Approved",
        status: "True",
        reason: "TestApproved",
        message: approvalMessage,
        lastUpdateTime: new Date(),
      },
    ],
  };
  await certificates.replaceCertificateSigningRequestApproval({ name, body: csr });
}

/** Lets a CSR held by the test's finalizer go. */
async function releaseFinalizer(admin: KubeConfig, name: string): Promise<void> {
  await KubeApi.for(admin).patch(
    `/apis/certificates.k8s.io/v1/certificatesigningrequests/${name}`,
    "application/merge-patch+json",
    {
      metadata: { finalizers: null },
    },
  );
}

const clientMetadata = (generateName: string): V1CertificateSigningRequest["metadata"] => ({
  generateName,
  labels: { team: "payments" },
  annotations: { "example.test/ticket": "T-1" },
  finalizers: [finalizer],
  ownerReferences: [
    { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: "00000000-0000-0000-0000-000000000001" },
  ],
});

describe("CSR status write: a PUT when the cached copy holds all it sends back, a merge patch otherwise", function () {
  this.timeout(90_000);
  const suffix = uniqueName("status-write").slice(6);
  const signerName = `status-write.csr-signer.test/ours-${suffix}`;
  const signerObject = `status-write-${suffix}`;
  const held: string[] = [];
  let admin: KubeConfig;
  let running: RunningController;

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    const ca = await makeTestCertificateAuthority({ name: signerObject });
    await createCaSecret(admin, signerObject, ca.files);
    await createSigner(admin, signerObject, {
      signerName,
      certificateAuthority: { secretName: signerObject },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    running = await startController(controlPlane(), [signerName]);
    await waitForSignerCondition(admin, signerObject, "Ready", "True");
  });

  after(async () => {
    await running?.stop();
    for (const name of held) await releaseFinalizer(admin, name).catch(() => undefined);
    await deleteSigner(admin, signerObject);
  });

  it("kube-apiserver keeps spec, generateName and the stored Approved condition on a PUT of /status from the cached copy; a stale copy is a conflict", async () => {
    const csrApi = kubernetesCsrApi(KubeApi.for(admin));
    const signer = `status-write.csr-signer.test/unserved-${suffix}`;
    const name = await createCsr(admin, signer, { generateName: "csr-workload-" });
    const stale = cachedCsr((await readCsr(admin, name))!, () => true);
    await approve(admin, name);
    const stored = (await readCsr(admin, name))!;
    const copy = cachedCsr(stored, () => true);
    expect(statusReplaceable(copy)).to.equal(true);
    expect(copy.status?.conditions?.[0]?.message?.length).to.be.lessThan(approvalMessage.length);
    const authority = (await makeTestCertificateAuthority({ name: `put-${suffix}` })).authority;
    const certificate = Buffer.from(await createTestLeafCertificate(authority)).toString("base64");

    expect(await csrApi.replaceStatus({ ...stale, status: copy.status }, { certificate })).to.equal(
      "conflict",
    );
    expect(await csrApi.replaceStatus(copy, { certificate })).to.equal("ok");
    const written = (await readCsr(admin, name))!;
    expect(written.status?.certificate).to.equal(certificate);
    expect(written.status?.conditions).to.have.length(1);
    expect(written.status?.conditions?.[0]?.message).to.equal(approvalMessage);
    expect(written.metadata?.generateName).to.equal("csr-workload-");
    expect(written.spec).to.deep.equal(stored.spec);
    expect(written.metadata?.managedFields?.length).to.be.at.least(
      stored.metadata?.managedFields?.length ?? 1,
    );
  });

  it("a PUT from a copy of a CSR with labels, annotations, finalizers and owner references would remove them: such a copy is not replaceable", async () => {
    const csrApi = kubernetesCsrApi(KubeApi.for(admin));
    const signer = `status-write.csr-signer.test/unserved-${suffix}`;
    const name = await createCsr(admin, signer, clientMetadata("csr-labelled-"));
    held.push(name);
    await approve(admin, name);
    const copy = cachedCsr((await readCsr(admin, name))!, () => true);
    expect(statusReplaceable(copy)).to.equal(false);
    // What the guard prevents: the same PUT regardless, and kube-apiserver takes its metadata as sent.
    const authority = (await makeTestCertificateAuthority({ name: `put-labelled-${suffix}` })).authority;
    const certificate = Buffer.from(await createTestLeafCertificate(authority)).toString("base64");
    expect(await csrApi.replaceStatus(copy, { certificate })).to.equal("ok");
    const written = (await readCsr(admin, name))!;
    expect(written.metadata?.labels ?? {}).to.deep.equal({});
    expect(written.metadata?.finalizers ?? []).to.deep.equal([]);
  });

  it("the controller signs a CSR with client-set metadata and leaves all of it as it was; a bare one keeps its generateName and approval; a name with ? and # is signed", async () => {
    const odd = await createCsr(admin, signerName, { name: `csr-odd?${suffix}#x` });
    await approve(admin, odd);
    const labelled = await createCsr(admin, signerName, clientMetadata("csr-kept-"));
    held.push(labelled);
    const bare = await createCsr(admin, signerName, { generateName: "csr-bare-" });
    await approve(admin, labelled);
    await approve(admin, bare);
    // A name with "?" and "#" (kube-apiserver allows both) is written to its own path, not cut short.
    for (const name of [labelled, bare, odd])
      expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");

    const kept = (await readCsr(admin, labelled))!;
    expect(kept.metadata?.labels).to.deep.equal({ team: "payments" });
    expect(kept.metadata?.annotations).to.deep.equal({ "example.test/ticket": "T-1" });
    expect(kept.metadata?.finalizers).to.deep.equal([finalizer]);
    expect(kept.metadata?.ownerReferences?.map((owner) => owner.name)).to.deep.equal(["owner"]);
    expect(kept.metadata?.generateName).to.equal("csr-kept-");
    const signed = (await readCsr(admin, bare))!;
    expect(signed.metadata?.generateName).to.equal("csr-bare-");
    expect(signed.status?.conditions?.map((condition) => [condition.type, condition.message])).to.deep.equal([
      ["Approved", approvalMessage],
    ]);
  });
});

/**
 * The CSR cache holds only what the controller reads. kube-apiserver accepts a spec.request that is
 * one valid PEM block followed by ~1.3 MB of padding; anyone allowed to create CSRs can make many.
 * Foreign CSRs are cached without spec.request; our own over the parse cap keep a marker and are
 * refused RequestTooLarge; lists are paged.
 */
import { expect } from "chai";
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import { buildTestCertificateRequest, makeTestCertificateAuthority, testKey } from "../support/pki.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  setApproval,
  startController,
  submitCsr,
  waitForCsrEvent,
  readCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { uniqueName } from "../support/identities.js";
import { ResilientInformer, type ListResult } from "../../src/kube/informer.js";
import type { CsrObject } from "../../src/controller/csr-object.js";
import { cachedCsr } from "../../src/controller/csr-cache.js";
import { appendConditionPatch } from "../../src/controller/condition-patch.js";
import { KubeApi } from "../../src/kube/api-client.js";
import { kubernetesApprovalApi, kubernetesCsrApi } from "../../src/kube/csr-api-binding.js";
import { controlPlane } from "./setup.js";

const padding = 1_300_000;

/** A valid CSR PEM followed by ~1.3 MB of padding, as the attacker sent it. */
function paddedRequest(dnsName: string): string {
  const pem = buildTestCertificateRequest({
    key: testKey("ecdsa-p256"),
    subjectAltNames: { dns: [dnsName] },
  });
  return pem + "#".repeat(padding) + "\n";
}

const approved = {
  type: "Approved",
  status: "True",
  reason: "TestApproved",
  message: "approved by the test",
};
const failed = { type: "Failed", status: "True", reason: "TestFailed", message: "failed by the test" };

/** Adds `count` custom conditions with `messageLength`-character messages (then `also`), as one approver write. */
async function addConditions(
  admin: KubeConfig,
  name: string,
  count: number,
  messageLength: number,
  also?: "Approved",
): Promise<void> {
  const certificates = admin.makeApiClient(CertificatesV1Api);
  const csr = await certificates.readCertificateSigningRequest({ name });
  const now = new Date();
  csr.status = {
    ...csr.status,
    conditions: [
      ...(csr.status?.conditions ?? []),
      ...Array.from({ length: count }, (_, i) => ({
        type: `Padding${i}`,
        status: "True",
        reason: "Padding",
        message: "m".repeat(messageLength),
        lastUpdateTime: now,
      })),
      ...(also ? [{ ...approved, lastUpdateTime: now }] : []),
    ],
  };
  await certificates.replaceCertificateSigningRequestApproval({ name, body: csr });
}

describe("CSR cache: bytes the controller will not use never reach it", function () {
  this.timeout(90_000);
  const suffix = uniqueName("cache").slice(6);
  const ourSignerName = `cache.csr-signer.test/ours-${suffix}`;
  const lateSignerName = `cache.csr-signer.test/late-${suffix}`;
  const foreignSignerName = `example.com/not-ours-${suffix}`;
  const objects = [`cache-ours-${suffix}`, `cache-late-${suffix}`];
  let admin: KubeConfig;
  let running: RunningController;

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    const ca = await makeTestCertificateAuthority({ name: `cache-${suffix}` });
    await createCaSecret(admin, `cache-${suffix}`, ca.files);
    await createSigner(admin, objects[0]!, {
      signerName: ourSignerName,
      certificateAuthority: { secretName: `cache-${suffix}` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    running = await startController(controlPlane(), [ourSignerName, lateSignerName]);
    await waitForSignerCondition(admin, objects[0]!, "Ready", "True");
  });

  after(async () => {
    await running?.stop();
    for (const object of objects) await deleteSigner(admin, object);
  });

  it("a foreign CSR padded to 1.3 MB is cached without its request (a NotOurs marker, not the bytes)", async () => {
    const name = uniqueName("csr-foreign");
    await submitCsr(admin, {
      name,
      signerName: foreignSignerName,
      requestPem: paddedRequest("a.example.test"),
    });
    const cached = await waitFor(`${name} in the cache`, async () => running.controller.cachedCsr(name));
    expect(cached.spec?.request).to.equal(undefined);
    expect(cached.spec?.requestOmitted?.reason).to.equal("NotOurs");
    expect(cached.spec?.requestOmitted?.bytes).to.be.greaterThan(padding);
    expect(JSON.stringify(cached).length).to.be.lessThan(2000);
  });

  it("a foreign CSR given 40 conditions with 30,000-character messages is cached with type and status only (under 4 KiB)", async () => {
    const name = uniqueName("csr-conditions");
    await submitCsr(admin, {
      name,
      signerName: foreignSignerName,
      requestPem: buildTestCertificateRequest({ key: testKey("ecdsa-p256") }),
    });
    await addConditions(admin, name, 40, 30_000);
    const cached = await waitFor(`${name} with its 40 conditions in the cache`, async () => {
      const csr = running.controller.cachedCsr(name);
      return csr?.status?.conditions?.length === 40 ? csr : undefined;
    });
    expect(cached.status?.conditions?.[0]).to.deep.equal({ type: "Padding0", status: "True" });
    expect(JSON.stringify(cached).length).to.be.lessThan(4096);
  });

  it("the Failed write appends to status: another writer's condition keeps its whole message", async () => {
    const name = uniqueName("csr-keep");
    await submitCsr(admin, {
      name,
      signerName: ourSignerName,
      requestPem: buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subjectAltNames: { dns: ["outside.policy.test"] },
      }),
      usages: ["digital signature", "server auth"],
    });
    // The other writer's long condition and the approval arrive together.
    await addConditions(admin, name, 1, 30_000, "Approved");
    const outcome = await waitForOutcome(admin, name);
    expect(outcome.failed?.reason).to.be.a("string");
    const conditions = (await readCsr(admin, name))?.status?.conditions ?? [];
    expect(conditions.map((c) => c.type)).to.deep.equal(["Padding0", "Approved", "Failed"]);
    expect(conditions[0]?.message).to.equal("m".repeat(30_000));
  });

  it("approval and status condition writes are JSON patches: other conditions stay intact, a stale resourceVersion is a conflict", async () => {
    const csrApi = kubernetesCsrApi(KubeApi.for(admin));
    const approvalApi = kubernetesApprovalApi(KubeApi.for(admin));
    const name = uniqueName("csr-append");
    await submitCsr(admin, {
      name,
      signerName: foreignSignerName,
      requestPem: buildTestCertificateRequest({ key: testKey("ecdsa-p256") }),
    });
    const ours = () => true;
    // No conditions yet: the patch creates the array.
    const pending = cachedCsr((await readCsr(admin, name))!, ours);
    await addConditions(admin, name, 1, 30_000);
    expect(await approvalApi.addApprovalCondition(name, appendConditionPatch(pending, approved))).to.equal(
      "conflict",
    );
    const withOther = cachedCsr((await readCsr(admin, name))!, ours);
    expect(withOther.status?.conditions?.[0]?.message?.length).to.be.lessThan(30_000);
    expect(await approvalApi.addApprovalCondition(name, appendConditionPatch(withOther, approved))).to.equal(
      "ok",
    );
    const approvedCsr = cachedCsr((await readCsr(admin, name))!, ours);
    expect(await csrApi.patchStatusJson(name, appendConditionPatch(approvedCsr, failed))).to.equal("ok");
    const conditions = (await readCsr(admin, name))?.status?.conditions ?? [];
    expect(conditions.map((c) => c.type)).to.deep.equal(["Padding0", "Approved", "Failed"]);
    expect(conditions[0]?.message).to.equal("m".repeat(30_000));

    const fresh = uniqueName("csr-append-empty");
    await submitCsr(admin, {
      name: fresh,
      signerName: foreignSignerName,
      requestPem: buildTestCertificateRequest({ key: testKey("ecdsa-p256") }),
    });
    const empty = cachedCsr((await readCsr(admin, fresh))!, ours);
    expect(await approvalApi.addApprovalCondition(fresh, appendConditionPatch(empty, approved))).to.equal(
      "ok",
    );
    expect((await readCsr(admin, fresh))?.status?.conditions?.map((c) => c.type)).to.deep.equal(["Approved"]);
  });

  it("our own CSR over the parse cap keeps only a marker and is refused RequestTooLarge (Failed condition and Event)", async () => {
    const name = uniqueName("csr-huge");
    await submitCsr(admin, {
      name,
      signerName: ourSignerName,
      requestPem: paddedRequest("huge.example.test"),
      usages: ["digital signature", "server auth"],
    });
    const cached = await waitFor(`${name} in the cache`, async () => running.controller.cachedCsr(name));
    expect(cached.spec?.request).to.equal(undefined);
    expect(cached.spec?.requestOmitted?.reason).to.equal("TooLarge");
    await setApproval(admin, name, "Approved");
    const outcome = await waitForOutcome(admin, name);
    expect(outcome.failed?.reason).to.equal("RequestTooLarge");
    expect(outcome.failed?.message).to.match(/request is \d+ bytes; the limit is 6500 \(rule request\)/);
    await waitForCsrEvent(admin, name, "RequestTooLarge", "Warning");
  });

  it("a CSR cached as foreign whose Signer appears later is signed from one fresh read", async () => {
    const name = uniqueName("csr-late");
    const requestPem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subjectAltNames: { dns: ["late.example.test"] },
    });
    await submitCsr(admin, {
      name,
      signerName: lateSignerName,
      requestPem,
      usages: ["digital signature", "server auth"],
    });
    await setApproval(admin, name, "Approved");
    const cached = await waitFor(`${name} approved in the cache`, async () => {
      const csr = running.controller.cachedCsr(name);
      return csr?.status?.conditions?.some((c) => c.type === "Approved") ? csr : undefined;
    });
    expect(cached.spec?.requestOmitted?.reason).to.equal("NotOurs");
    await createSigner(admin, objects[1]!, {
      signerName: lateSignerName,
      certificateAuthority: { secretName: `cache-${suffix}` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
  });

  it("lists are paged: with pages of 7 the cache fills through ceil(n / 7) list calls of at most 7 objects each", async () => {
    const prefix = uniqueName("csr-page");
    const names = Array.from({ length: 30 }, (_, i) => `${prefix}-${i}`);
    await Promise.all(
      names.map((name) =>
        submitCsr(admin, {
          name,
          signerName: foreignSignerName,
          requestPem: buildTestCertificateRequest({
            key: testKey("ecdsa-p256"),
            subjectAltNames: { dns: ["p.example.test"] },
          }),
        }),
      ),
    );
    const certificates = admin.makeApiClient(CertificatesV1Api);
    const pages: number[] = [];
    const informer = new ResilientInformer<CsrObject>(admin, {
      path: "/apis/certificates.k8s.io/v1/certificatesigningrequests",
      pageSize: 7,
      list: async (page) => {
        const result = (await certificates.listCertificateSigningRequest(page)) as ListResult<CsrObject>;
        pages.push(result.items.length);
        return result;
      },
    });
    try {
      await informer.start();
      const total = (await certificates.listCertificateSigningRequest()).items.length;
      for (const name of names) expect(informer.get(name), name).not.to.equal(undefined);
      expect(pages.every((size) => size <= 7)).to.equal(true);
      expect(pages.length).to.equal(Math.ceil(total / 7));
      expect(informer.list()).to.have.length(total);
    } finally {
      informer.stop();
    }
  });
});

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
  waitFor,
  waitForCsrEvent,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { ResilientInformer, type ListResult } from "../../src/kube/informer.js";
import type { CsrObject } from "../../src/controller/csr-reconciler.js";
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

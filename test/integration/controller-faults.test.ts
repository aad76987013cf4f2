import { expect } from "chai";
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { CsrObject } from "../../src/controller/csr-object.js";
import { CsrReconciler } from "../../src/controller/csr-reconciler.js";
import { ControllerMetrics } from "../../src/controller/metrics.js";
import { SignerRegistry } from "../../src/controller/signer-registry.js";
import { KubeApi } from "../../src/kube/api-client.js";
import { kubernetesCsrApi } from "../../src/kube/csr-api-binding.js";
import { silentLogger } from "../support/silent-logger.js";
import {
  createTestLeafCertificate,
  makeTestCertificateAuthority,
  type TestCertificateAuthority,
} from "../support/pki.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readCsr,
  submitApprovedServerCsr,
  startController,
  waitForOutcome,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { uniqueName } from "../support/identities.js";
import { controlPlane } from "./setup.js";

describe("controller faults: restarts, two replicas, write conflicts", function () {
  this.timeout(90_000);
  const suffix = uniqueName("f").slice(2);
  const signerName = `faults.csr-signer.test/foo-${suffix}`;
  const objectName = `faults-${suffix}`;
  const secretName = `faults-cacerts-${suffix}`;
  let admin: KubeConfig;
  let ca: TestCertificateAuthority;
  const spec = {
    signerName,
    certificateAuthority: { secretName },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  };

  before(async function () {
    this.timeout(60_000);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    ca = await makeTestCertificateAuthority({ name: `faults-${suffix}` });
    await createCaSecret(admin, secretName, ca.files);
    await createSigner(admin, objectName, spec);
  });

  after(async () => {
    await deleteSigner(admin, objectName);
  });

  // The admin identity (CN=admin) is the requester: the Signer allows user "admin".
  const requestAndApprove = (name: string): Promise<void> => submitApprovedServerCsr(admin, name, signerName);

  it("nothing is lost across a restart: CSRs approved while no controller runs are issued by the next one", async () => {
    const first = await startController(controlPlane(), [signerName]);
    const before = uniqueName("csr-restart");
    await requestAndApprove(before);
    expect((await waitForOutcome(admin, before)).certificatePem).to.be.a("string");
    await first.stop();
    const whileDown = Array.from({ length: 10 }, () => uniqueName("csr-restart"));
    for (const name of whileDown) await requestAndApprove(name);
    for (const name of whileDown)
      expect((await readCsr(admin, name))?.status?.certificate, name).to.equal(undefined);
    const second = await startController(controlPlane(), [signerName]);
    try {
      for (const name of whileDown)
        expect((await waitForOutcome(admin, name)).certificatePem, name).to.be.a("string");
    } finally {
      await second.stop();
    }
  });

  it("two replicas at once: only the Lease holder signs, each CSR gets one certificate, and the other takes over when the leader goes", async () => {
    const leaseName = `faults-${suffix}`;
    const timings = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 };
    const a = await startController(controlPlane(), [signerName], {
      leaderElection: true,
      leaseName,
      identity: "replica-a",
      leaseTimings: timings,
    });
    const b = await startController(controlPlane(), [signerName], {
      leaderElection: true,
      leaseName,
      identity: "replica-b",
      leaseTimings: timings,
    });
    try {
      const [leader, follower] = await waitFor("one leader", async () => {
        if (a.controller.isLeader && !b.controller.isLeader) return [a, b] as const;
        if (b.controller.isLeader && !a.controller.isLeader) return [b, a] as const;
        return undefined;
      });
      const names = Array.from({ length: 20 }, () => uniqueName("csr-replicas"));
      for (const name of names) await requestAndApprove(name);
      const certificates = new Map<string, string>();
      for (const name of names) certificates.set(name, (await waitForOutcome(admin, name)).certificatePem!);
      const issuedBy = async (replica: typeof a) => {
        const metric = await replica.controller.metrics.issued.get();
        return metric.values.reduce((sum, value) => sum + value.value, 0);
      };
      expect(await issuedBy(leader)).to.equal(20);
      expect(await issuedBy(follower)).to.equal(0);
      const followerReconciles = await follower.controller.metrics.reconcileTotal.get();
      expect(followerReconciles.values.reduce((sum, value) => sum + value.value, 0)).to.equal(0);
      // Nor does it queue them: a follower's queue would hold every CSR name it sees until it leads.
      const followerAdds = await follower.controller.metrics.queueAdds.get();
      const added = (queue: string) =>
        followerAdds.values
          .filter((value) => value.labels.name === queue)
          .reduce((sum, value) => sum + value.value, 0);
      expect(added("certificatesigningrequest")).to.equal(0);

      await leader.stop(); // releases the Lease
      await waitFor(
        "the follower to lead",
        async () => (follower.controller.isLeader ? true : undefined),
        10_000,
      );
      const afterFailover = uniqueName("csr-failover");
      await requestAndApprove(afterFailover);
      expect((await waitForOutcome(admin, afterFailover)).certificatePem).to.be.a("string");
      for (const [name, pem] of certificates) {
        const csr = await readCsr(admin, name);
        expect(Buffer.from(csr!.status!.certificate!, "base64").toString(), name).to.equal(pem); // never re-signed
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  describe("status write conflicts (the reconciler fed a stale cache)", () => {
    let registry: SignerRegistry;
    const certificatesApi = () => admin.makeApiClient(CertificatesV1Api);

    before(() => {
      const signerObject = { metadata: { name: objectName, generation: 1 }, spec };
      const secret = {
        metadata: { name: secretName, namespace: "csr-signer" },
        data: Object.fromEntries(
          Object.entries(ca.files).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
        ),
      };
      registry = new SignerRegistry(
        { signers: () => [signerObject], secret: () => secret, namespaces: () => [] },
        "csr-signer",
      );
      registry.rebuild();
      // Standalone, nobody publishes the bundle; record it as published so the CA is adopted.
      registry.markPublished(objectName);
      registry.rebuild();
    });

    function reconcilerWithCache(cached: CsrObject): CsrReconciler {
      return new CsrReconciler(
        registry,
        { get: () => cached },
        kubernetesCsrApi(KubeApi.for(admin)),
        { record: () => undefined },
        new ControllerMetrics(),
        silentLogger,
      );
    }

    it("never signs again a CSR that someone else gave a certificate meanwhile (409 -> re-read -> done)", async () => {
      const name = uniqueName("csr-conflict");
      await requestAndApprove(name);
      const stale = (await readCsr(admin, name)) as CsrObject;
      const theirs = await createTestLeafCertificate(ca.authority);
      const fresh = await certificatesApi().readCertificateSigningRequest({ name });
      fresh.status = { ...fresh.status, certificate: Buffer.from(theirs).toString("base64") };
      await certificatesApi().replaceCertificateSigningRequestStatus({ name, body: fresh });
      const result = await reconcilerWithCache(stale).reconcile(name);
      expect(result).to.deep.equal({ kind: "done" });
      expect(Buffer.from((await readCsr(admin, name))!.status!.certificate!, "base64").toString()).to.equal(
        theirs,
      );
    });

    it("retries after an unrelated change made the cache stale, then signs from a fresh read", async () => {
      const name = uniqueName("csr-conflict");
      await requestAndApprove(name);
      const stale = (await readCsr(admin, name)) as CsrObject;
      const fresh = await certificatesApi().readCertificateSigningRequest({ name });
      fresh.metadata!.annotations = { "example.test/touched": "yes" };
      await certificatesApi().replaceCertificateSigningRequest({ name, body: fresh });
      expect(await reconcilerWithCache(stale).reconcile(name)).to.deep.equal({
        kind: "retry",
        reason: "Conflict",
      });
      expect((await readCsr(admin, name))?.status?.certificate).to.equal(undefined);
      const current = (await readCsr(admin, name)) as CsrObject;
      expect(await reconcilerWithCache(current).reconcile(name)).to.deep.equal({ kind: "done" });
      expect((await readCsr(admin, name))?.status?.certificate).to.be.a("string");
    });

    it("drops quietly a CSR deleted between the cache and the write (404)", async () => {
      const name = uniqueName("csr-gone");
      await requestAndApprove(name);
      const stale = (await readCsr(admin, name)) as CsrObject;
      await certificatesApi().deleteCertificateSigningRequest({ name });
      expect(await reconcilerWithCache(stale).reconcile(name)).to.deep.equal({ kind: "done" });
    });
  });
});

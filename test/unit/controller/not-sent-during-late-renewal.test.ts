/**
 * The certificate write checks stillLeading (Leadership.isLeader) after the client's rate limiter
 * and answers "not sent" when it is false. During a late lease renewal isLeader is false and then
 * true again with no onChange, so no new leader and no takeover requeue follow: CsrSigning.sign must
 * look at the CSR again (it answered "done" once, and the approved CSR waited for the 10-minute
 * resync). Found by an adversarial review.
 */
import { expect } from "chai";
import { CsrSigning } from "../../../src/controller/csr-signing.js";
import { Leadership } from "../../../src/controller/leadership.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { ProgressMonitor } from "../../../src/controller/progress-monitor.js";
import { SignerRegistry } from "../../../src/controller/signer-registry.js";
import { WorkQueue } from "../../../src/controller/work-queue.js";
import { startWorkerSet } from "../../../src/controller/worker-set.js";
import { LeaderElector, type Lease, type LeaseStore } from "../../../src/kube/leader-election.js";
import { jsonLogger } from "../../../src/logger.js";
import { systemIssuanceEnvironment } from "../../../src/pki/issuance.js";
import { ManualClock, settle } from "../../support/manual-clock.js";
import { buildTestCertificateRequest, makeTestCertificateAuthority, testKey } from "../../support/pki.js";

class SlowLeaseStore implements LeaseStore {
  lease: Lease | undefined;
  private version = 0;
  hold = false;
  private held: (() => void)[] = [];
  async read(): Promise<Lease | undefined> {
    return this.lease && structuredClone(this.lease);
  }
  async create(lease: Lease): Promise<void> {
    this.lease = {
      ...structuredClone(lease),
      metadata: { ...lease.metadata, resourceVersion: String(++this.version) },
    };
  }
  async replace(lease: Lease): Promise<void> {
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    this.lease = {
      ...structuredClone(lease),
      metadata: { ...lease.metadata, resourceVersion: String(++this.version) },
    };
  }
  letThrough(): void {
    this.hold = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

async function readyRegistry(name: string): Promise<SignerRegistry> {
  const ca = await makeTestCertificateAuthority({ name });
  const spec = {
    signerName: `example.com/${name}`,
    certificateAuthority: { secretName: `${name}-cacerts` },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  };
  const registry = new SignerRegistry(
    {
      signers: () => [{ metadata: { name, generation: 1 }, spec }],
      secret: () => ({
        metadata: { name: `${name}-cacerts`, namespace: "csr-signer" },
        data: Object.fromEntries(
          Object.entries(ca.files).map(([key, value]) => [key, Buffer.from(value).toString("base64")]),
        ),
      }),
      namespaces: () => [],
    },
    "csr-signer",
  );
  registry.rebuild();
  registry.markPublished(name);
  registry.rebuild();
  return registry;
}

describe("CsrSigning: a certificate write held back by a late lease renewal", () => {
  it("is written once the renewal lands (no takeover will requeue the CSR)", async function () {
    this.timeout(20_000);
    const registry = await readyRegistry("late");
    const requestPem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subjectAltNames: { dns: ["web.example.test"] },
    });
    const csr = {
      metadata: { name: "approved-csr", uid: "u", resourceVersion: "1" },
      spec: {
        signerName: "example.com/late",
        username: "admin",
        usages: ["digital signature", "server auth"],
        request: Buffer.from(requestPem).toString("base64"),
      },
    };
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new SlowLeaseStore();
    const elector = new LeaderElector(store, {
      namespace: "csr-signer",
      name: "csr-signer",
      identity: "a",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock,
      jitter: () => 0,
    });
    const changes: boolean[] = [];
    elector.onChange((leading) => changes.push(leading));
    elector.start();
    await settle();
    const leadership = new Leadership(elector, clock);
    leadership.acquired();
    // The write waits in the client's rate limiter (the same slowness that delays the renewal);
    // kubernetesCsrApi asks stillLeading (isLeader) once it is through.
    let releaseLimiter: () => void = () => undefined;
    let limited = true;
    const outcomes: string[] = [];
    const patchStatus = async (): Promise<"ok" | "not sent"> => {
      if (limited) await new Promise<void>((resolve) => (releaseLimiter = resolve));
      const outcome = leadership.isLeader ? "ok" : "not sent";
      outcomes.push(outcome);
      return outcome;
    };
    const signing = new CsrSigning(
      registry,
      {
        read: () => Promise.resolve(csr),
        patchStatus,
        patchStatusJson: () => Promise.reject(new Error("no condition")),
        replaceStatus: () => Promise.reject(new Error("no PUT")),
      },
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "error", write: () => undefined }),
      systemIssuanceEnvironment,
    );
    const queues = {
      csrs: new WorkQueue(clock),
      signers: new WorkQueue(clock),
      podCertificateRequests: new WorkQueue(clock),
    };
    const parts = {
      metrics: new ControllerMetrics(),
      progress: new ProgressMonitor(60_000, () => clock.now()),
      leadership,
      queues,
      registry: { forSignerName: () => undefined },
      informers: { csrs: { get: () => csr }, podCertificateRequests: { get: () => undefined } },
      // CsrReconciler.reconcile answers signing.sign's result for an approved CSR of a ready Signer.
      csrReconciler: { reconcile: () => signing.sign(csr, csr) },
      podCertificateReconciler: {
        signerFor: () => undefined,
        reconcile: () => Promise.resolve({ kind: "done" as const }),
      },
      signerReconciler: { reconcile: () => Promise.resolve({ kind: "done" as const }) },
    } as unknown as Parameters<typeof startWorkerSet>[0];
    const loops = startWorkerSet(parts, {
      workers: 1,
      logger: jsonLogger({ level: "error", write: () => undefined }),
    });
    await settle();
    queues.csrs.add("approved-csr"); // approved while leading: the worker takes it and signs
    for (let i = 0; i < 50 && outcomes.length === 0 && releaseLimiter.toString().includes("undefined"); i++)
      await new Promise((r) => setTimeout(r, 20));
    store.hold = true; // the renewal at 2 s hangs
    await clock.advanceSettling(2_000);
    clock.advance(8_500); // past the renew deadline
    expect(leadership.isLeader).to.equal(false);
    limited = false;
    releaseLimiter(); // the write gets through the limiter now: "not sent"
    await settle();
    await settle();
    store.letThrough(); // the renewal lands: leading again, no onChange
    await settle();
    expect(leadership.isLeader).to.equal(true);
    expect(changes).to.deep.equal([true]);
    await clock.advanceSettling(60_000);
    await settle();
    queues.csrs.shutDown();
    queues.signers.shutDown();
    queues.podCertificateRequests.shutDown();
    leadership.release();
    await elector.stop();
    await Promise.all(loops);
    expect(outcomes, "write outcomes").to.deep.equal(["not sent", "ok"]);
  });
});

/**
 * A lease renewal that is slow (an API server under load, which a tenant can cause by flooding it)
 * makes LeaderElector.isLeader false past the renew deadline and true again when the renewal lands,
 * with no onChange in between: no "stopped leading", so no takeover requeue follows. A CSR key taken
 * by a worker in that window must come back (worker-set.ts: look again in a second), and so must
 * its pending delayed add (a retry). Found by an adversarial review.
 */
import { expect } from "chai";
import { Leadership } from "../../../src/controller/leadership.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { ProgressMonitor } from "../../../src/controller/progress-monitor.js";
import { WorkQueue } from "../../../src/controller/work-queue.js";
import { startWorkerSet } from "../../../src/controller/worker-set.js";
import { LeaderElector, type Lease, type LeaseStore } from "../../../src/kube/leader-election.js";
import { jsonLogger } from "../../../src/logger.js";
import { ManualClock, settle } from "../../support/manual-clock.js";

/** One Lease in memory; replace() can be held (a slow renewal) until the test lets it through. */
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

/** Returns the CSR keys reconciled when one is queued during (or, for the control, after) the blip. */
async function reconciledAroundBlip(queuedDuringBlip: boolean, retryPending = false): Promise<string[]> {
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
  expect(elector.isLeader).to.equal(true);

  const queues = {
    csrs: new WorkQueue(clock),
    signers: new WorkQueue(clock),
    podCertificateRequests: new WorkQueue(clock),
  };
  const reconciled: string[] = [];
  const parts = {
    metrics: new ControllerMetrics(),
    progress: new ProgressMonitor(60_000, () => clock.now()),
    leadership: new Leadership(elector, clock),
    queues,
    registry: { forSignerName: () => undefined },
    informers: { csrs: { get: () => undefined }, podCertificateRequests: { get: () => undefined } },
    csrReconciler: {
      reconcile: (name: string) => {
        reconciled.push(name);
        return Promise.resolve({ kind: "done" as const });
      },
    },
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
  await settle(); // the CSR worker passed Leadership.wait and waits in queue.get()

  // A retry already pending for the key (say its certificate write timed out: the same API server
  // slowness that delays the renewal), due once the renewal has landed.
  if (retryPending) queues.csrs.addAfter("approved-csr", 15_000);
  store.hold = true; // the next renewal (at 2 s) hangs
  await clock.advanceSettling(2_000);
  clock.advance(8_500); // 10.5 s since the lease was taken: past the renew deadline
  expect(elector.isLeader, "past the renew deadline").to.equal(false);
  if (queuedDuringBlip) queues.csrs.add("approved-csr"); // its approval arrives now
  await settle();
  store.letThrough(); // the renewal (started at 2 s) lands
  await settle();
  expect(elector.isLeader, "renewed").to.equal(true);
  expect(changes, "no stopped-leading / became-leader pair: no takeover requeue").to.deep.equal([true]);
  if (!queuedDuringBlip) queues.csrs.add("approved-csr");
  await settle();
  await clock.advanceSettling(60_000);
  await settle();
  try {
    return reconciled;
  } finally {
    queues.csrs.shutDown();
    queues.signers.shutDown();
    queues.podCertificateRequests.shutDown();
    parts.leadership.release();
    await elector.stop();
    await Promise.all(loops);
  }
}

describe("workers during a late lease renewal", () => {
  it("a CSR queued while isLeader blips false is reconciled once the renewal lands (nothing else will queue it)", async () => {
    expect(await reconciledAroundBlip(true)).to.include("approved-csr");
  });

  it("a CSR with a retry pending, taken while isLeader blips false, is still reconciled when its retry is due", async () => {
    expect(await reconciledAroundBlip(true, true)).to.include("approved-csr");
  });

  it("(control) the same CSR queued once the renewal landed is reconciled", async () => {
    expect(await reconciledAroundBlip(false)).to.include("approved-csr");
  });
});

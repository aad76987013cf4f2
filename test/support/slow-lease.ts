/**
 * A LeaderElector over one Lease in memory whose renewals can be held back (a slow API server),
 * on a manual clock, and one CSR worker: for tests of what happens while a late renewal makes
 * isLeader false.
 */
import type { CsrObject } from "../../src/controller/csr-object.js";
import type { Leadership } from "../../src/controller/leadership.js";
import { ControllerMetrics } from "../../src/controller/metrics.js";
import { ProgressMonitor } from "../../src/controller/progress-monitor.js";
import type { ReconcileResult } from "../../src/controller/run-worker.js";
import { WorkQueue } from "../../src/controller/work-queue.js";
import { startWorkerSet } from "../../src/controller/worker-set.js";
import { LeaderElector, type Lease, type LeaseStore } from "../../src/kube/leader-election.js";
import { jsonLogger } from "../../src/logger.js";
import { ManualClock, settle } from "./manual-clock.js";

/** One Lease in memory; replace() can be held (a slow renewal) until the test lets it through. */
export class SlowLeaseStore implements LeaseStore {
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

/**
 * A started elector (lease 15 s, renew deadline 10 s, retry 2 s, no jitter) that has taken the
 * Lease, with the leadership changes it reported.
 */
export async function startedSlowElector(): Promise<{
  clock: ManualClock;
  store: SlowLeaseStore;
  elector: LeaderElector;
  changes: boolean[];
}> {
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
  return { clock, store, elector, changes };
}

/**
 * The worker set (one CSR worker) over fresh queues, with `reconcileCsr` as the CSR reconciler and
 * `csr` as what the CSR cache holds; the PodCertificateRequest and Signer reconcilers do nothing.
 */
export function startOneCsrWorker(
  clock: ManualClock,
  leadership: Leadership,
  reconcileCsr: (name: string) => Promise<ReconcileResult>,
  csr?: CsrObject,
): {
  queues: Record<"csrs" | "signers" | "podCertificateRequests", WorkQueue>;
  /** Shuts the queues down, releases the waiting workers and waits for them to end. */
  stop: () => Promise<void>;
} {
  const queues = {
    csrs: new WorkQueue(clock),
    signers: new WorkQueue(clock),
    podCertificateRequests: new WorkQueue(clock),
  };
  const done = (): Promise<ReconcileResult> => Promise.resolve({ kind: "done" });
  const parts = {
    metrics: new ControllerMetrics(),
    progress: new ProgressMonitor(60_000, () => clock.now()),
    leadership,
    queues,
    registry: { forSignerName: () => undefined },
    informers: { csrs: { get: () => csr }, podCertificateRequests: { get: () => undefined } },
    csrReconciler: { reconcile: reconcileCsr },
    podCertificateReconciler: { signerFor: () => undefined, reconcile: done },
    signerReconciler: { reconcile: done },
  } as unknown as Parameters<typeof startWorkerSet>[0];
  const loops = startWorkerSet(parts, {
    workers: 1,
    logger: jsonLogger({ level: "error", write: () => undefined }),
  });
  const stop = async (): Promise<void> => {
    for (const queue of Object.values(queues)) queue.shutDown();
    leadership.release();
    await Promise.all(loops);
  };
  return { queues, stop };
}

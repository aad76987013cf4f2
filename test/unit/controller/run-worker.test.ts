import { expect } from "chai";
import { ProgressMonitor } from "../../../src/controller/progress-monitor.js";
import { runWorker, type ReconcileResult } from "../../../src/controller/run-worker.js";
import { WorkQueue } from "../../../src/controller/work-queue.js";
import { jsonLogger } from "../../../src/logger.js";
import { ManualClock, settle } from "../../support/manual-clock.js";

const limits = { baseDelayMs: 5, maxDelayMs: 1000, ratePerSecond: 10, burst: 100 };

function startWorker(
  clock: ManualClock,
  reconcile: () => Promise<ReconcileResult>,
  takingDropsDelayed: boolean,
): { queue: WorkQueue; loop: Promise<void> } {
  const queue = new WorkQueue(clock, limits);
  const loop = runWorker(queue, reconcile, {
    name: "csr",
    progress: new ProgressMonitor(60_000, () => clock.now()),
    logger: jsonLogger({ write: () => undefined }),
    takingDropsDelayed,
  });
  return { queue, loop };
}

/**
 * A worker over one key whose first reconcile asks to look again in 10 s (a CSR waiting for
 * approval) and whose later ones are done (the CSR was approved and signed meanwhile).
 */
async function reconcilesAfterGracePeriod(takingDropsDelayed: boolean): Promise<number> {
  const clock = new ManualClock();
  let reconciles = 0;
  const { queue, loop } = startWorker(
    clock,
    () => Promise.resolve(++reconciles === 1 ? { kind: "after", milliseconds: 10_000 } : { kind: "done" }),
    takingDropsDelayed,
  );
  queue.add("csr-1");
  await settle();
  queue.add("csr-1"); // approved: an update event
  await settle();
  expect(reconciles).to.equal(2);
  clock.advance(10_000);
  await settle();
  queue.shutDown();
  await loop;
  return reconciles;
}

describe("runWorker", () => {
  it("with takingDropsDelayed, taking a key drops its pending delayed add: the reconcile's answer replaces it", async () => {
    expect(await reconcilesAfterGracePeriod(true)).to.equal(2);
  });

  it("without it, the delayed add still fires after a done reconcile", async () => {
    expect(await reconcilesAfterGracePeriod(false)).to.equal(3);
  });

  it("a delayed add made while the key's reconcile runs stands (an event meanwhile starts a grace period)", async () => {
    const clock = new ManualClock();
    let reconciles = 0;
    let finish!: () => void;
    const { queue, loop } = startWorker(
      clock,
      () => {
        reconciles++;
        return reconciles === 1
          ? new Promise<ReconcileResult>((resolve) => (finish = () => resolve({ kind: "done" })))
          : Promise.resolve({ kind: "done" });
      },
      true,
    );
    queue.add("csr-1");
    await settle();
    queue.addAfter("csr-1", 5_000); // the name re-created, unapproved, while the first write is in flight
    finish();
    await settle();
    clock.advance(5_000);
    await settle();
    queue.shutDown();
    await loop;
    expect(reconciles).to.equal(2);
  });

  it("/healthz sees the key a reconcile is stuck on, and the step ends when the reconcile throws", async () => {
    const clock = new ManualClock();
    const progress = new ProgressMonitor(60_000, () => clock.now());
    const queue = new WorkQueue(clock, limits);
    let fail!: (error: Error) => void;
    const loop = runWorker(queue, () => new Promise<ReconcileResult>((_, reject) => (fail = reject)), {
      name: "csr",
      progress,
      logger: jsonLogger({ write: () => undefined }),
    });
    queue.add("csr-1");
    await settle();
    clock.advance(60_001);
    expect(progress.problems()).to.deep.equal(["worker csr csr-1 stuck in one step for 60s (limit 60s)"]);
    fail(new Error("the API server went away"));
    await settle();
    expect(progress.problems()).to.deep.equal([]);
    queue.shutDown();
    await loop;
  });
});

import { expect } from "chai";
import { ProgressMonitor } from "../../../src/controller/progress-monitor.js";
import { runWorker, type ReconcileResult } from "../../../src/controller/run-worker.js";
import { WorkQueue } from "../../../src/controller/work-queue.js";
import { jsonLogger } from "../../../src/logger.js";
import { ManualClock, settle } from "../../support/manual-clock.js";

const limits = { baseDelayMs: 5, maxDelayMs: 1000, ratePerSecond: 10, burst: 100 };

/**
 * A worker over one key whose first reconcile asks to look again in 10 s (a CSR waiting for
 * approval) and whose later ones are done (the CSR was approved and signed meanwhile).
 */
async function reconcilesAfterGracePeriod(doneDropsDelayed: boolean): Promise<number> {
  const clock = new ManualClock();
  const queue = new WorkQueue(clock, limits);
  let reconciles = 0;
  const reconcile = (): Promise<ReconcileResult> =>
    Promise.resolve(++reconciles === 1 ? { kind: "after", milliseconds: 10_000 } : { kind: "done" });
  const loop = runWorker(queue, reconcile, {
    name: "csr",
    progress: new ProgressMonitor(60_000, () => clock.now()),
    logger: jsonLogger({ write: () => undefined }),
    doneDropsDelayed,
  });
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
  it("with doneDropsDelayed, a done reconcile drops the key's pending delayed add", async () => {
    expect(await reconcilesAfterGracePeriod(true)).to.equal(2);
  });

  it("without it, the delayed add still fires after a done reconcile", async () => {
    expect(await reconcilesAfterGracePeriod(false)).to.equal(3);
  });
});

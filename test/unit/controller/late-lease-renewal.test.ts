/**
 * A lease renewal that is slow (an API server under load, which a tenant can cause by flooding it)
 * makes LeaderElector.isLeader false past the renew deadline and true again when the renewal lands,
 * with no onChange in between: no "stopped leading", so no takeover requeue follows. A CSR key taken
 * by a worker in that window must come back (worker-set.ts: look again in a second), and so must
 * its pending delayed add (a retry). Found by an adversarial review.
 */
import { expect } from "chai";
import { Leadership } from "../../../src/controller/leadership.js";
import { settle } from "../../support/manual-clock.js";
import { startedSlowElector, startOneCsrWorker } from "../../support/slow-lease.js";

/** Returns the CSR keys reconciled when one is queued during (or, for the control, after) the blip. */
async function reconciledAroundBlip(queuedDuringBlip: boolean, retryPending = false): Promise<string[]> {
  const { clock, store, elector, changes } = await startedSlowElector();
  expect(elector.isLeader).to.equal(true);

  const reconciled: string[] = [];
  const leadership = new Leadership(elector, clock);
  const { queues, stop } = startOneCsrWorker(clock, leadership, (name) => {
    reconciled.push(name);
    return Promise.resolve({ kind: "done" });
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
    await elector.stop();
    await stop();
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

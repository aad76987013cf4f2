import { expect } from "chai";
import { Leadership } from "../../../src/controller/leadership.js";
import { ManualClock } from "../../support/manual-clock.js";

describe("Leadership: workers waiting for the lease", () => {
  it("holds one entry per waiting worker however long the wait (timed-out re-checks leave the list)", async () => {
    const elector = { isLeader: false };
    const clock = new ManualClock();
    const leadership = new Leadership(elector, clock);
    const waiting = leadership.wait();
    // An hour of 1 s re-checks while another replica leads.
    await clock.advanceSettling(3_600_000);
    expect(leadership.waiting).to.equal(1);
    elector.isLeader = true;
    leadership.acquired();
    await waiting;
    expect(leadership.waiting).to.equal(0);
  });
});

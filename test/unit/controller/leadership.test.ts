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

describe("Leadership: whether requests are queued (holdsLease)", () => {
  it("follows the elector's reports, not a late renewal's moment without the lease", () => {
    expect(new Leadership(undefined).holdsLease).to.equal(true); // no leader election
    const elector = { isLeader: false };
    const leadership = new Leadership(elector, new ManualClock());
    expect(leadership.holdsLease).to.equal(false);
    elector.isLeader = true;
    leadership.acquired();
    expect(leadership.holdsLease).to.equal(true);
    elector.isLeader = false; // the renew deadline passed while a renewal is in flight: no report
    expect(leadership.isLeader).to.equal(false);
    expect(leadership.holdsLease).to.equal(true);
    leadership.lost();
    expect(leadership.holdsLease).to.equal(false);
  });
});

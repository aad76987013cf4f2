import { expect } from "chai";
import { StatusWriteTurns } from "../../../src/controller/signer-status-writer.js";
import { TokenBucket } from "../../../src/kube/token-bucket.js";

/** A limiter of 5/s with a burst of one, spent, and the turns at it, on a clock the test moves. */
function drained(): { turns: StatusWriteTurns; limiter: TokenBucket; clock: { at: number } } {
  const clock = { at: 0 };
  const limiter = new TokenBucket(5, 1, () => clock.at);
  const turns = new StatusWriteTurns(limiter, 5, () => clock.at);
  expect(turns.waitMs("first-in"), "a token saved up: no wait, no turn").to.equal(0);
  limiter.reserve(); // that write took it
  return { turns, limiter, clock };
}

describe("StatusWriteTurns: Signers waiting for the status limiter come back one at a time", () => {
  it("gives each waiting Signer its own time, one refill apart, and the same time when it asks again", () => {
    const { turns, clock } = drained();
    expect(["a", "b", "c"].map((name) => turns.waitMs(name))).to.deep.equal([200, 400, 600]);
    clock.at = 100;
    expect(["c", "a", "b"].map((name) => turns.waitMs(name))).to.deep.equal([500, 100, 300]);
    clock.at = 200;
    expect(turns.waitMs("a"), "its turn has come").to.equal(0);
    expect(turns.waitMs("b")).to.equal(200);
  });

  it("a turn taken is gone: the next wait is the limiter's again", () => {
    const { turns, limiter, clock } = drained();
    expect(turns.waitMs("a")).to.equal(200);
    clock.at = 200;
    turns.taken("a");
    limiter.reserve(); // the write took the refilled token
    expect(turns.waitMs("a"), "a new turn, after the last one handed out").to.equal(200);
  });

  it("a turn left unused past its time is not honoured later: the Signer queues again", () => {
    const { turns, limiter, clock } = drained();
    expect(turns.waitMs("idle")).to.equal(200);
    clock.at = 1_000; // its turn came and went (nothing to write then); the token refilled
    limiter.reserve(); // another Signer took it
    expect(turns.waitMs("idle"), "a fresh turn, not 0 on a token planned for someone else").to.equal(200);
  });

  it("a newcomer queues behind the turns still ahead even when a token is saved up", () => {
    const { turns, clock } = drained();
    expect(["a", "b"].map((name) => turns.waitMs(name))).to.deep.equal([200, 400]);
    clock.at = 250; // a's token has refilled; a has not come back for it yet
    expect(turns.waitMs("newcomer"), "after b's turn, not on a's token").to.equal(350);
    expect(turns.waitMs("a"), "a's turn stands").to.equal(0);
  });

  it("forgets a turn not taken within a minute (a Signer deleted while it waited)", () => {
    const { turns, limiter, clock } = drained();
    expect(turns.waitMs("deleted")).to.equal(200);
    clock.at = 61_000;
    limiter.reserve(); // the limiter is empty again
    expect(turns.waitMs("other")).to.be.greaterThan(0);
    expect(turns.waitMs("deleted"), "a new turn, not the stale one").to.be.greaterThan(0);
  });
});

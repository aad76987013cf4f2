import { expect } from "chai";
import type { SignerStatus } from "../../../src/api/signer.js";
import { changesOnlyCounts, countWriteIntervalMs } from "../../../src/controller/signer-status.js";
import {
  SignerStatusPacing,
  statusChangeBurst,
  statusChangeRefillMs,
} from "../../../src/controller/signer-status-pacing.js";

/** A status whose CA is `subject`: what each rewrite of a tenant's Secret with a new intermediate changes. */
const signingWith = (subject: string, issuedCount = 0): SignerStatus => ({
  conditions: [
    {
      type: "Ready",
      status: "True",
      reason: "Ready",
      message: `signing with ${subject}`,
      lastTransitionTime: "2026-12-02T08:00:00Z",
    },
  ],
  certificateAuthority: {
    subject,
    notAfter: "2027-12-02T08:00:00Z",
    fingerprintSha256: subject,
    issuer: "CN=root",
    roots: [],
  },
  issuedCount,
  failedCount: 0,
});

describe("SignerStatusPacing (a tenant rewriting its CA Secret in a loop must not take the write budget)", () => {
  it(`writes ${statusChangeBurst} changes at once, then one per ${statusChangeRefillMs} ms for that Signer only`, () => {
    let now = 1_000_000;
    const pacing = new SignerStatusPacing(() => now);
    let current = signingWith("CN=int-0");
    for (let i = 1; i <= statusChangeBurst; i++) {
      const desired = signingWith(`CN=int-${i}`);
      expect(pacing.delayMs("tenant-a", changesOnlyCounts(desired, current)), `change ${i}`).to.equal(0);
      pacing.wrote("tenant-a", changesOnlyCounts(desired, current));
      current = desired;
    }
    const next = signingWith("CN=int-next");
    expect(pacing.delayMs("tenant-a", changesOnlyCounts(next, current))).to.equal(statusChangeRefillMs);
    // Another Signer is not held up by tenant-a's loop.
    expect(pacing.delayMs("tenant-b", changesOnlyCounts(next, current))).to.equal(0);
    now += statusChangeRefillMs - 1000;
    expect(pacing.delayMs("tenant-a", changesOnlyCounts(next, current))).to.equal(1000);
    now += 1000;
    // By then the Secret changed again: the status as it is now is what gets written.
    const latest = signingWith("CN=int-latest");
    expect(pacing.delayMs("tenant-a", changesOnlyCounts(latest, current))).to.equal(0);
    pacing.wrote("tenant-a", changesOnlyCounts(latest, current));
    expect(pacing.delayMs("tenant-a", changesOnlyCounts(signingWith("CN=int-after"), latest))).to.equal(
      statusChangeRefillMs,
    );
  });

  it("count-only changes keep their own interval and leave the change budget alone", () => {
    let now = 1_000_000;
    const pacing = new SignerStatusPacing(() => now);
    let current = signingWith("CN=int-0");
    for (let i = 1; i <= 3 * statusChangeBurst; i++) {
      const desired = signingWith("CN=int-0", i);
      expect(pacing.delayMs("busy", changesOnlyCounts(desired, current))).to.equal(0);
      pacing.wrote("busy", changesOnlyCounts(desired, current));
      current = desired;
      expect(pacing.delayMs("busy", changesOnlyCounts(signingWith("CN=int-0", i + 1), current))).to.equal(
        countWriteIntervalMs,
      );
      now += countWriteIntervalMs;
    }
    // A condition change on a busy Signer still shows at once.
    expect(pacing.delayMs("busy", changesOnlyCounts(signingWith("CN=int-1", 30), current))).to.equal(0);
  });

  it("a deleted Signer's pace is forgotten", () => {
    const pacing = new SignerStatusPacing(() => 0);
    let current = signingWith("CN=int-0");
    for (let i = 1; i <= statusChangeBurst; i++) {
      const desired = signingWith(`CN=int-${i}`);
      pacing.wrote("gone", changesOnlyCounts(desired, current));
      current = desired;
    }
    expect(pacing.delayMs("gone", changesOnlyCounts(signingWith("CN=x"), current))).to.be.above(0);
    pacing.forget("gone");
    expect(pacing.delayMs("gone", changesOnlyCounts(signingWith("CN=x"), current))).to.equal(0);
  });
});

import { expect } from "chai";
import { SignerStatusCounts } from "../../../src/controller/signer-status-counts.js";

describe("SignerStatusCounts (the issued and failed counts of Signer status)", () => {
  it("keeps what was counted while a write was in flight for the next write", () => {
    const counts = new SignerStatusCounts();
    counts.countIssued("a");
    counts.countIssued("a");
    counts.countFailed("a");
    const since = counts.since("a");
    const desired = { issuedCount: 2, failedCount: 1 };
    counts.computed(desired, since);
    counts.countIssued("a"); // during the write
    counts.statusWritten("a", desired);
    expect(counts.since("a")).to.deep.equal({ issued: 1, failed: 0 });
  });

  it("answers the larger of the cache and the last write, until the cache catches up", () => {
    const counts = new SignerStatusCounts();
    counts.countIssued("a");
    const desired = { issuedCount: 5, failedCount: 0 };
    counts.computed(desired, counts.since("a"));
    counts.statusWritten("a", desired);
    expect(counts.current("a", { issuedCount: 4 })).to.include({ issuedCount: 5, failedCount: 0 });
    expect(counts.current("a", { issuedCount: 7, failedCount: 2 })).to.include({
      issuedCount: 7,
      failedCount: 2,
    });
    counts.retainOnly(new Set());
    expect(counts.current("a", { issuedCount: 4 })).to.deep.equal({ issuedCount: 4 });
  });

  it("forgets a deleted Signer's counts since its last write too, not only its last written counts", () => {
    const counts = new SignerStatusCounts();
    counts.countIssued("gone");
    counts.countFailed("gone");
    counts.countIssued("live");
    counts.retainOnly(new Set(["live"]));
    expect(counts.since("gone")).to.deep.equal({ issued: 0, failed: 0 });
    expect(counts.since("live")).to.deep.equal({ issued: 1, failed: 0 });
  });

  it("starts afresh after a write of a status it did not compute", () => {
    const counts = new SignerStatusCounts();
    counts.countFailed("a");
    counts.statusWritten("a", { issuedCount: 9 });
    expect(counts.since("a")).to.deep.equal({ issued: 0, failed: 0 });
  });
});

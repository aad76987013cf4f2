import { expect } from "chai";
import { mergeRecordedRoots, RecordedRootsBook } from "../../../src/controller/recorded-roots.js";
import type { RecordedRoot } from "../../../src/api/signer.js";

const root = (fingerprintSha256: string, extra: Partial<RecordedRoot> = {}): RecordedRoot => ({
  fingerprintSha256,
  subject: `CN=${fingerprintSha256}`,
  notAfter: "2036-01-01T00:00:00Z",
  pem: "",
  ...extra,
});

describe("recorded roots", () => {
  it("merges status with this process's records: per root, the earliest publication and retirement win", () => {
    const merged = mergeRecordedRoots(
      [root("A", { firstPublished: "2026-01-02T00:00:00Z" }), root("B")],
      [root("A", { firstPublished: "2026-01-01T00:00:00Z", retiredAt: "2026-03-01T00:00:00Z" }), root("C")],
    );
    expect(merged).to.deep.equal([
      root("A", { firstPublished: "2026-01-01T00:00:00Z", retiredAt: "2026-03-01T00:00:00Z" }),
      root("B"),
      root("C"),
    ]);
  });

  it("marks unpublished current roots published once (retired ones stay unpublished), and forgets deleted Signers", () => {
    const book = new RecordedRootsBook();
    book.set("foo", [root("A"), root("R", { retiredAt: "2026-01-01T00:00:00Z" })]);
    const now = new Date("2026-06-01T12:00:00Z");
    expect(book.markPublished("foo", now)).to.equal(true);
    expect(book.markPublished("foo", now)).to.equal(false);
    expect(book.get("foo")!.map((r) => r.firstPublished)).to.deep.equal(["2026-06-01T12:00:00Z", undefined]);
    book.retainOnly(new Set(["bar"]));
    expect(book.get("foo")).to.equal(undefined);
  });
});

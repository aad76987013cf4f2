import { expect } from "chai";
import { cutLongStrings, omittedStringBytes } from "../../../src/kube/long-strings.js";

describe("cutLongStrings (long JSON string values cut before parsing)", () => {
  const cut = (value: unknown, max: number): unknown =>
    JSON.parse(cutLongStrings(Buffer.from(JSON.stringify(value)), max).toString("utf8"));

  it("replaces a string value over the limit by a placeholder that records its length", () => {
    const parsed = cut({ spec: { signerName: "example.com/x", request: "A".repeat(100) } }, 20) as {
      spec: { signerName: string; request: string };
    };
    expect(parsed.spec.signerName).to.equal("example.com/x");
    expect(omittedStringBytes(parsed.spec.request)).to.equal(100);
  });

  it("keeps strings at the limit, escaped quotes and backslashes included, and leaves the rest intact", () => {
    const value = { a: 'x\\"y', b: ["1234567890", { c: "\\\\" }], d: 5, e: null };
    expect(cut(value, 10)).to.deep.equal(value);
  });

  it("counts escapes as their bytes: a long escaped string is cut whole, what follows survives", () => {
    const parsed = cut({ long: '\\"'.repeat(20), after: "ok" }, 10) as { long: string; after: string };
    expect(omittedStringBytes(parsed.long)).to.equal(80);
    expect(parsed.after).to.equal("ok");
  });

  it("an ordinary string is not a placeholder", () => {
    expect(omittedStringBytes("omitted:12")).to.equal(undefined);
    expect(omittedStringBytes(12)).to.equal(undefined);
  });
});

import { expect } from "chai";
import { LongStringCutter, omittedStringBytes } from "../../../src/kube/long-strings.js";
import { cutLongStrings } from "../../support/long-strings.js";

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

describe("LongStringCutter (the same, as bytes stream in)", () => {
  it("gives the same result whatever the chunk boundaries, and never holds more than the limit of a long value", () => {
    const json = Buffer.from(
      JSON.stringify({ a: "short", request: "B".repeat(5000), esc: 'q\\"' + "C".repeat(300), z: [1, "x"] }),
    );
    const whole = cutLongStrings(json, 100).toString("utf8");
    for (const size of [1, 2, 7, 64, 1000]) {
      const cutter = new LongStringCutter(100);
      const out: Buffer[] = [];
      for (let i = 0; i < json.length; i += size) {
        cutter.push(json.subarray(i, i + size));
        const ready = cutter.take();
        out.push(...ready);
        const held = (cutter as unknown as { held: Buffer[] }).held.reduce((n, b) => n + b.length, 0);
        expect(held, `chunk size ${size}`).to.be.at.most(101 + size);
      }
      expect(Buffer.concat(out).toString("utf8"), `chunk size ${size}`).to.equal(whole);
    }
    const parsed = JSON.parse(whole) as Record<string, unknown>;
    expect(parsed.a).to.equal("short");
    expect(omittedStringBytes(parsed.request)).to.equal(5000);
    expect(omittedStringBytes(parsed.esc)).to.equal(305);
    expect(parsed.z).to.deep.equal([1, "x"]);
  });
});

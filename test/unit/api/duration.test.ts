import { expect } from "chai";
import { DurationSyntaxError, parseGoDuration, parseLongDuration } from "../../../src/api/duration.js";

describe("durations", () => {
  describe("parseGoDuration (Signer specs, controller flags)", () => {
    const accepted: [string, number][] = [
      ["24h", 86_400],
      ["90m", 5400],
      ["1h30m", 5400],
      ["600s", 600],
      ["3600s", 3600],
      ["1h30m15s", 5415],
      ["0s", 0],
    ];
    for (const [text, seconds] of accepted)
      it(`reads ${text} as ${seconds} s`, () => expect(parseGoDuration(text)).to.equal(seconds));

    const refused: unknown[] = [
      "",
      "1d",
      "10y",
      "30m1h",
      "1.5h",
      " 24h",
      "24",
      "h",
      "-1h",
      3600,
      undefined,
      null,
    ];
    for (const text of refused) {
      it(`refuses ${JSON.stringify(text)}, showing what it takes`, () =>
        expect(() => parseGoDuration(text))
          .to.throw(DurationSyntaxError)
          .with.property("message")
          .that.matches(/must be a duration such as "24h", "90m" or "1h30m", got /));
    }
  });

  describe("parseLongDuration (offline CA commands)", () => {
    const accepted: [string, number][] = [
      ["600s", 600],
      ["90m", 5400],
      ["24h", 86_400],
      ["30d", 30 * 86_400],
      ["10y", 10 * 365 * 86_400],
      ["1h30m", 5400],
      ["1d12h", 129_600],
      [" 48h ", 172_800],
    ];
    for (const [text, seconds] of accepted)
      it(`reads ${JSON.stringify(text)} as ${seconds} s`, () =>
        expect(parseLongDuration(text)).to.equal(seconds));

    for (const text of ["", "24", "1.5d", "-1d", "1w", "d", "24 h"]) {
      it(`refuses ${JSON.stringify(text)}, naming the units it takes`, () =>
        expect(() => parseLongDuration(text))
          .to.throw(DurationSyntaxError)
          .with.property("message")
          .that.matches(/^cannot read duration ".*": use a number with s, m, h, d or y/));
    }
  });
});

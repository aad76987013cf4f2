import { expect } from "chai";
import {
  DurationSyntaxError,
  parseGoDuration,
  parseGoDurationMilliseconds,
  parseLongDuration,
} from "../../../src/api/duration.js";

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

  describe("parseGoDurationMilliseconds (leader election flags)", () => {
    const accepted: [string, number][] = [
      ["15s", 15_000],
      ["500ms", 500],
      ["1s500ms", 1500],
      ["2m", 120_000],
      ["1m30s", 90_000],
      ["1h", 3_600_000],
    ];
    for (const [text, milliseconds] of accepted)
      it(`reads ${text} as ${milliseconds} ms`, () =>
        expect(parseGoDurationMilliseconds(text)).to.equal(milliseconds));
    for (const text of ["", "ms", "1.5s", "500", "5ms1s", "-2s", "2 s", 2000, undefined]) {
      it(`refuses ${JSON.stringify(text)}`, () =>
        expect(() => parseGoDurationMilliseconds(text))
          .to.throw(DurationSyntaxError)
          .with.property("message")
          .that.matches(/must be a duration such as "15s", "1m30s" or "500ms", got /));
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

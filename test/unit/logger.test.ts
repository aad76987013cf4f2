import { expect } from "chai";
import { jsonLogger, logLine } from "../../src/logger.js";

describe("logLine (one JSON object per log line)", () => {
  const time = "2026-12-02T17:00:00.000Z";
  const cases: Array<Record<string, unknown>> = [
    {},
    { csr: "a", uid: undefined, serial: "00ff" },
    { message: 'quote " backslash \\ newline \n tab \t NUL \u0000 ünïcödé 名前 \u2028' },
    { nested: { list: [1, "two", null, { three: true }] }, when: new Date(0), count: 0 },
    { msg: "a field named like a head key", other: 1 },
    { time: "theirs" },
  ];
  for (const fields of cases) {
    it(`is what JSON.stringify of the spread object gives: ${JSON.stringify(fields)}`, () => {
      const line = logLine(time, "info", 'signed "certificate"', fields);
      expect(line.endsWith("\n")).to.equal(true);
      expect(line).to.equal(
        JSON.stringify({ time, level: "info", msg: 'signed "certificate"', ...fields }) + "\n",
      );
      expect(JSON.parse(line)).to.deep.equal(
        JSON.parse(JSON.stringify({ time, level: "info", msg: 'signed "certificate"', ...fields })),
      );
    });
  }

  it("the logger writes one such line per call at or above its level", () => {
    const lines: string[] = [];
    const logger = jsonLogger({ level: "info", write: (line) => lines.push(line) });
    logger.debug("hidden");
    logger.warn("shown", { signer: "example.com/foo" });
    expect(lines).to.have.length(1);
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(parsed).to.include({ level: "warn", msg: "shown", signer: "example.com/foo" });
    expect(Number.isNaN(Date.parse(parsed.time as string))).to.equal(false);
  });
});

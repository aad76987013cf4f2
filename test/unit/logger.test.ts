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

describe("jsonLogger with holdInfoMs (the controller's: one write per certificate)", () => {
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const messages = (writes: string[]): string[][] =>
    writes.map((text) =>
      text
        .trimEnd()
        .split("\n")
        .map((line) => (JSON.parse(line) as { msg: string }).msg),
    );

  it("holds info lines for holdInfoMs after the first, then writes them in one write, in order", async () => {
    const writes: string[] = [];
    const logger = jsonLogger({ level: "info", write: (text) => writes.push(text), holdInfoMs: 30 });
    logger.info("one");
    logger.debug("below the level");
    logger.info("two");
    await sleep(5);
    expect(writes).to.deep.equal([]);
    await sleep(60);
    expect(messages(writes)).to.deep.equal([["one", "two"]]);
  });

  it("flush() writes what is held at once (the line before a certificate write)", () => {
    const writes: string[] = [];
    const logger = jsonLogger({ level: "info", write: (text) => writes.push(text), holdInfoMs: 30 });
    logger.info("signed certificate");
    logger.info("writing certificate");
    logger.flush();
    expect(messages(writes)).to.deep.equal([["signed certificate", "writing certificate"]]);
    logger.flush();
    expect(writes).to.have.length(1);
  });

  it("a flush leaves the hold timer running: a line held after it goes out when that timer ends", async () => {
    const writes: string[] = [];
    const logger = jsonLogger({ level: "info", write: (text) => writes.push(text), holdInfoMs: 100 });
    logger.info("signed certificate 1"); // the timer starts: due at 100 ms
    logger.info("writing certificate 2");
    logger.flush();
    const later = new Promise<void>((resolve) =>
      setTimeout(() => {
        logger.info("signed certificate 2"); // held at 60 ms: out with the timer due at 100 ms
        resolve();
      }, 60),
    );
    await new Promise((resolve) => setTimeout(resolve, 130)); // timers fire in the order they are due
    await later;
    expect(messages(writes)).to.deep.equal([
      ["signed certificate 1", "writing certificate 2"],
      ["signed certificate 2"],
    ]);
  });

  it("a warn or error line is never held, and goes out after the info lines before it", () => {
    const writes: string[] = [];
    const logger = jsonLogger({ level: "info", write: (text) => writes.push(text), holdInfoMs: 30 });
    logger.info("before");
    logger.error("trouble");
    expect(messages(writes)).to.deep.equal([["before"], ["trouble"]]);
  });

  it("writes out at once past 64 KiB held, so a burst never holds much", () => {
    const writes: string[] = [];
    const logger = jsonLogger({ level: "info", write: (text) => writes.push(text), holdInfoMs: 30 });
    for (let index = 0; index < 1000; index++) logger.info("line", { index, padding: "x".repeat(100) });
    expect(writes.length).to.be.at.least(1);
    for (const text of writes) expect(text.length).to.be.below(64 * 1024 + 200);
    logger.flush();
    expect(messages(writes).flat()).to.have.length(1000);
  });
});

import { expect } from "chai";
import { omittedStringBytes } from "../../../src/kube/long-strings.js";
import { WatchLines } from "../../../src/kube/watch-lines.js";

/** Feeds `bytes` to a WatchLines in chunks of `size` and returns the lines it delivered. */
function splitInChunks(bytes: Buffer, size: number, maxStringBytes: number | undefined): string[] {
  const lines: string[] = [];
  const watchLines = new WatchLines(maxStringBytes, (line) => lines.push(line));
  for (let start = 0; start < bytes.length; start += size) {
    // A fresh Buffer per chunk, overwritten after the push, as a reused socket buffer would be.
    const chunk = Buffer.from(bytes.subarray(start, start + size));
    watchLines.push(chunk);
    chunk.fill(0x21);
  }
  return lines;
}

const event = (object: unknown): string => JSON.stringify({ type: "ADDED", object });

describe("WatchLines (a watch's bytes into one text per event line)", () => {
  const events = [
    event({ metadata: { name: "a" }, spec: { request: "QUJD" } }),
    event({ metadata: { name: "b-ünïcödé-名前" }, status: { conditions: [{ type: "Approved" }] } }),
    event({ metadata: { name: "c" }, spec: { request: "R".repeat(300) } }),
  ];
  const stream = Buffer.from(`${events.join("\n")}\n\n${events[0]}\n`);

  it("delivers every line whole, whatever the chunk boundaries (multi-byte characters split included), skipping empty ones", () => {
    for (const size of [1, 2, 3, 5, 17, 64, 1000, stream.length]) {
      expect(splitInChunks(stream, size, 1024), `chunks of ${size}`).to.deep.equal([...events, events[0]]);
      expect(splitInChunks(stream, size, undefined), `chunks of ${size}, no limit`).to.deep.equal([
        ...events,
        events[0],
      ]);
    }
  });

  it("cuts a string over the limit once its line grows past it, and only in that line", () => {
    const long = event({ metadata: { name: "padded" }, spec: { request: "P".repeat(5000), after: "kept" } });
    const bytes = Buffer.from(`${events[0]}\n${long}\n${events[1]}\n${events[2]}\n`);
    for (const size of [1, 7, 64, 1000, bytes.length]) {
      const lines = splitInChunks(bytes, size, 100);
      expect(lines, `chunks of ${size}`).to.have.length(4);
      expect(lines[0]).to.equal(events[0]);
      const padded = JSON.parse(lines[1]!) as { object: { spec: { request: string; after: string } } };
      expect(omittedStringBytes(padded.object.spec.request)).to.equal(5000);
      expect(padded.object.spec.after).to.equal("kept");
      expect(lines[2], "the line after a cut one is read whole").to.equal(events[1]);
      const over = JSON.parse(lines[3]!) as { object: { spec: { request: string } } };
      expect(
        omittedStringBytes(over.object.spec.request),
        "a line over the limit in one chunk is cut too",
      ).to.equal(300);
    }
  });

  it("keeps a long line's strings under the limit as they were", () => {
    const many = event({ items: Array.from({ length: 200 }, (_, index) => `item-${index}`) });
    expect(splitInChunks(Buffer.from(`${many}\n`), 13, 50)).to.deep.equal([many]);
  });

  it("holds no more than the limit plus a chunk of a line with a long string (besides what the cutter holds of its current string)", () => {
    const lines: string[] = [];
    const watchLines = new WatchLines(100, (line) => lines.push(line));
    const held = (): number => (watchLines as unknown as { pendingBytes: number }).pendingBytes;
    watchLines.push(Buffer.from('{"type":"ADDED","object":{"request":"'));
    let most = 0;
    for (let index = 0; index < 1000; index++) {
      watchLines.push(Buffer.from("Z".repeat(64)));
      most = Math.max(most, held());
    }
    watchLines.push(Buffer.from('"}}\n'));
    expect(most).to.be.at.most(100 + 64);
    expect(lines).to.have.length(1);
    expect(
      omittedStringBytes((JSON.parse(lines[0]!) as { object: { request: string } }).object.request),
    ).to.equal(64_000);
  });
});

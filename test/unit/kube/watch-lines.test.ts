import { expect } from "chai";
import { omittedStringBytes } from "../../../src/kube/long-strings.js";
import type { KubeApi } from "../../../src/kube/api-client.js";
import { listPage } from "../../../src/kube/raw-json.js";
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

  it("skips a line over the limit that ends inside a string, as JSON.parse skips it whole, and reads the next", () => {
    // Not JSON (a JSON string holds no raw newline), yet without the unfinished string the cutter
    // holds back, what came before it is a complete event: it must not be delivered.
    const prefix = event({ metadata: { name: "victim", uid: "u1" }, pad: "p".repeat(150) });
    for (const tail of ['"', ' "abc', ' "abc\\', ` "${"Q".repeat(500)}`]) {
      const malformed = `${prefix}${tail}`;
      expect(() => JSON.parse(malformed)).to.throw(SyntaxError);
      const bytes = Buffer.from(`${malformed}\n${events[0]}\n`);
      for (const size of [1, 7, 64, bytes.length]) {
        const lines = splitInChunks(bytes, size, 100);
        expect(lines, `tail ${JSON.stringify(tail.slice(0, 8))}, chunks of ${size}`).to.deep.equal([
          events[0],
        ]);
      }
      expect(() => JSON.parse(splitInChunks(bytes, 64, undefined)[0]!), "no limit: delivered whole").to.throw(
        SyntaxError,
      );
    }
  });
});

describe("listPage (a list response cut as it streams in)", () => {
  /** A KubeApi whose stream hands out `body` in chunks of `size`. */
  const streaming = (body: string, size: number): KubeApi =>
    ({
      stream: async (_path: string, _query: unknown, onChunk: (chunk: Buffer) => void): Promise<void> => {
        const bytes = Buffer.from(body);
        for (let start = 0; start < bytes.length; start += size)
          onChunk(Buffer.from(bytes.subarray(start, start + size)));
      },
    }) as unknown as KubeApi;

  it("cuts long strings and parses the page", async () => {
    const body = JSON.stringify({
      items: [{ spec: { request: "R".repeat(500) } }, { spec: { request: "ok" } }],
    });
    for (const size of [1, 13, body.length]) {
      const page = await listPage<{ items: { spec: { request: string } }[] }>(
        streaming(body, size),
        "/x",
        {},
        100,
      );
      expect(omittedStringBytes(page.items[0]!.spec.request)).to.equal(500);
      expect(page.items[1]!.spec.request).to.equal("ok");
    }
  });

  it("refuses a body that ends inside a string, as JSON.parse of the whole body does", async () => {
    const complete = JSON.stringify({ items: [{ metadata: { name: "a" } }] });
    for (const tail of ['"', ' "abc', ` "${"Q".repeat(500)}`]) {
      expect(() => JSON.parse(complete + tail)).to.throw(SyntaxError);
      for (const size of [1, 13, complete.length + tail.length]) {
        let error: unknown;
        try {
          await listPage(streaming(complete + tail, size), "/x", {}, 100);
        } catch (caught) {
          error = caught;
        }
        expect(error, `tail ${JSON.stringify(tail.slice(0, 8))}, chunks of ${size}`).to.be.instanceOf(
          SyntaxError,
        );
      }
    }
  });
});

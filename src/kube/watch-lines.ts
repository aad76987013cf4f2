/**
 * A watch's bytes as lines of text, one event each, with long string values cut on the way for the
 * lines that can hold them (see long-strings.ts).
 */
import { LongStringCutter } from "./long-strings.js";

/**
 * Splits a watch's bytes into lines (one event each; JSON strings hold no raw newline) and hands
 * each line's text on. A line that grows past `maxStringBytes` before its newline may hold a string
 * that long, so from then on its bytes go through a LongStringCutter as they stream in; a shorter
 * line cannot, and when it lies within one chunk it is decoded straight from undici's chunk: a CSR
 * event is a few KiB, and the cutter scanned and copied every byte of it (reading watch events
 * allocated 35 KB per certificate before, 19 KB after; BENCHMARKS.md, sixth pass). Of a line it holds at most
 * the limit plus one chunk before cutting begins, then what the cutter gives back (strings within
 * the limit, placeholders), and the cutter at most the limit of the string it is in.
 */
export class WatchLines {
  /** The current line's bytes from earlier chunks (copies: undici's chunk may be reused). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Set once the current line is past the limit; it takes the line's bytes until its newline. */
  private cutter: LongStringCutter | undefined;

  constructor(
    private readonly maxStringBytes: number | undefined,
    private readonly deliver: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline >= 0; newline = chunk.indexOf(0x0a, start)) {
      const whole = this.pending.length === 0 && this.cutter === undefined;
      if (whole && (this.maxStringBytes === undefined || newline - start <= this.maxStringBytes)) {
        if (newline > start) this.deliver(chunk.toString("utf8", start, newline));
      } else {
        this.add(chunk.subarray(start, newline));
        // A string still open at the newline: not JSON (a JSON string holds no raw newline), and the
        // cutter holds that string back, so what it gave out might parse: skipped, as JSON.parse
        // skips such a line when it is short enough to be read whole.
        const open = this.cutter?.endsInString === true;
        const line = this.takeLine();
        if (line.length > 0 && !open) this.deliver(line.toString("utf8"));
      }
      start = newline + 1;
    }
    if (start < chunk.length) this.add(chunk.subarray(start));
  }

  /** Adds bytes of an unfinished line: copied, or cut once the line is past the limit. */
  private add(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.cutter) {
      this.cutter.push(bytes);
      this.keep(this.cutter.take());
      return;
    }
    this.keep([Buffer.from(bytes)]);
    if (this.maxStringBytes !== undefined && this.pendingBytes > this.maxStringBytes) {
      // Past the limit: what the line holds so far goes through a cutter, and so does the rest.
      this.cutter = new LongStringCutter(this.maxStringBytes);
      const held = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      for (const part of held) this.cutter.push(part);
      this.keep(this.cutter.take());
    }
  }

  private keep(parts: Buffer[]): void {
    for (const part of parts) {
      this.pending.push(part);
      this.pendingBytes += part.length;
    }
  }

  private takeLine(): Buffer {
    const line = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.cutter = undefined;
    return line;
  }
}

/**
 * Cuts long string values out of JSON bytes before they are parsed. A CSR's spec.request may carry
 * ~1.5 MB that kube-apiserver stored; parsing it makes JS strings of that size (several per object:
 * the decoded text, the parsed value) that the garbage collector frees late. Cutting at the byte
 * level means such a value never becomes a string at all: it is replaced by a placeholder that
 * records its length. Linear in the input.
 */

const quote = 0x22;
const backslash = 0x5c;
const placeholderPrefix = "\u0000omitted:";

/** The length in bytes of the string value a placeholder stands for; undefined for any other value. */
export function omittedStringBytes(value: unknown): number | undefined {
  if (typeof value !== "string" || !value.startsWith(placeholderPrefix)) return undefined;
  return Number(value.slice(placeholderPrefix.length));
}

/**
 * Cuts as bytes stream in: a string value is held only until it proves longer than the limit, then
 * skipped; so however long a value is, no more than the limit of it (plus one chunk) is ever held.
 */
export class LongStringCutter {
  private output: Buffer[] = [];
  private inString = false;
  private escaped = false;
  private skipping = false;
  /** Bytes of the current string so far (between the quotes). */
  private length = 0;
  /** The current string's bytes from its opening quote, while it may still be kept. */
  private held: Buffer[] = [];

  constructor(private readonly maxStringBytes: number) {}

  push(chunk: Buffer): void {
    let runStart = 0; // first byte of this chunk not yet emitted or held
    for (let index = 0; index < chunk.length; index++) {
      const byte = chunk[index];
      if (!this.inString) {
        if (byte === quote) {
          this.emit(chunk.subarray(runStart, index));
          this.inString = true;
          this.skipping = false;
          this.length = 0;
          runStart = index;
        }
        continue;
      }
      if (this.escaped) this.escaped = false;
      else if (byte === backslash) this.escaped = true;
      else if (byte === quote) {
        if (this.skipping) {
          // JSON.stringify escapes the NUL: the placeholder parses back to the string it names.
          this.emit(Buffer.from(JSON.stringify(`${placeholderPrefix}${this.length}`)));
        } else {
          this.held.push(chunk.subarray(runStart, index + 1));
          this.emit(Buffer.concat(this.held));
        }
        this.held = [];
        this.inString = false;
        runStart = index + 1;
        continue;
      }
      this.length++;
      if (!this.skipping && this.length > this.maxStringBytes) {
        this.skipping = true;
        this.held = [];
      }
    }
    if (!this.inString) this.emit(chunk.subarray(runStart));
    else if (!this.skipping) this.held.push(Buffer.from(chunk.subarray(runStart))); // a copy: the chunk may go
  }

  /** The bytes ready so far (a string still open stays held until it ends). */
  take(): Buffer[] {
    const ready = this.output;
    this.output = [];
    return ready;
  }

  private emit(bytes: Buffer): void {
    if (bytes.length > 0) this.output.push(Buffer.from(bytes)); // a copy, so no input chunk stays pinned
  }
}

/** `json` with every string value (or key) longer than `maxStringBytes` replaced by a placeholder. */
export function cutLongStrings(json: Buffer, maxStringBytes: number): Buffer {
  const cutter = new LongStringCutter(maxStringBytes);
  cutter.push(json);
  return Buffer.concat(cutter.take());
}

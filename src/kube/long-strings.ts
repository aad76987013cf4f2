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
 * Quotes and backslashes are found with Buffer.indexOf (memchr), not byte by byte in JavaScript, and
 * the bytes between two cut strings leave as one copy: on a CSR watch this loop was 7% of the
 * controller's CPU when it looked at every byte and copied every string separately.
 */
export class LongStringCutter {
  private output: Buffer[] = [];
  private inString = false;
  private escaped = false;
  private skipping = false;
  /** Bytes of the current string so far (between the quotes). */
  private length = 0;
  /** The current string's bytes from its opening quote in earlier chunks, while it may still be kept. */
  private held: Buffer[] = [];

  constructor(private readonly maxStringBytes: number) {}

  push(chunk: Buffer): void {
    const end = chunk.length;
    let runStart = 0; // first byte of this chunk not yet emitted, skipped or held
    let stringStart = -1; // the current string's opening quote, when it is in this chunk
    let nextBackslash = -2; // -2: not searched yet; -1: none left in this chunk
    let index = 0;
    while (index < end) {
      if (!this.inString) {
        const open = chunk.indexOf(quote, index);
        if (open < 0) break;
        this.inString = true;
        this.skipping = false;
        this.length = 0;
        stringStart = open;
        index = open + 1;
        continue;
      }
      if (this.escaped) {
        this.escaped = false;
        this.count(chunk, 1, runStart, stringStart);
        index++;
        continue;
      }
      const close = chunk.indexOf(quote, index);
      const stop = close < 0 ? end : close;
      if (nextBackslash !== -1 && nextBackslash < index) nextBackslash = chunk.indexOf(backslash, index);
      if (nextBackslash >= 0 && nextBackslash < stop) {
        this.count(chunk, nextBackslash - index + 1, runStart, stringStart);
        this.escaped = true;
        index = nextBackslash + 1;
        continue;
      }
      this.count(chunk, stop - index, runStart, stringStart);
      if (close < 0) break;
      this.inString = false;
      if (this.skipping) {
        // JSON.stringify escapes the NUL: the placeholder parses back to the string it names.
        this.emit(Buffer.from(JSON.stringify(`${placeholderPrefix}${this.length}`)));
        runStart = close + 1;
      } else if (stringStart < 0) {
        // Begun in an earlier chunk and kept: its held start, then this chunk up to the quote.
        this.held.push(chunk.subarray(0, close + 1));
        this.emit(Buffer.concat(this.held));
        runStart = close + 1;
      } // else: kept whole inside this chunk, it stays part of the run
      this.held = [];
      stringStart = -1;
      index = close + 1;
    }
    if (!this.inString) this.emit(chunk.subarray(runStart));
    else if (!this.skipping) {
      if (stringStart >= 0) {
        this.emit(chunk.subarray(runStart, stringStart));
        this.held.push(Buffer.from(chunk.subarray(stringStart))); // a copy: the chunk may go
      } else this.held.push(Buffer.from(chunk));
    }
  }

  /** Adds `bytes` to the current string's length; past the limit, what came before it leaves and it is skipped. */
  private count(chunk: Buffer, bytes: number, runStart: number, stringStart: number): void {
    this.length += bytes;
    if (this.skipping || this.length <= this.maxStringBytes) return;
    this.skipping = true;
    if (stringStart >= 0) this.emit(chunk.subarray(runStart, stringStart));
    this.held = [];
  }

  /**
   * Whether the bytes so far end inside a string: its closing quote not seen. JSON never ends so,
   * and the string's bytes are held (or skipped), so what take() gave out may parse on its own.
   */
  get endsInString(): boolean {
    return this.inString;
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

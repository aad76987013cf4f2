/**
 * Strict PEM handling: exactly the blocks we expect, no headers, nothing around them.
 *
 * The scanner is linear in the input: BEGIN and END lines are found with indexOf from a cursor
 * that only moves forward, and labels and bodies are checked character by character. No regular
 * expression runs over the text (a lazy `[\s\S]*?` block pattern took 6.3 s on 1 MiB of garbage,
 * and CA Secrets, trust bundles and CSRs are all written by someone else).
 */

export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PemError";
  }
}

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const beginMarker = "-----BEGIN ";
const endMarker = "-----END ";
const dashes = "-----";

/** Counts the characters the scanner examines: its work, deterministically (see measurePemScan). */
interface WorkCounter {
  characters: number;
}

/**
 * Decodes every PEM block in `text`. With `strict`, anything but whitespace between or around
 * the blocks is an error (a CSR with prose or a second object hidden around it is refused).
 * Without it, text between blocks is ignored, but a BEGIN line that starts no well-formed
 * block (bad label, no END line) is an error, never silently dropped.
 */
export function decodePemBlocks(text: string, options: { strict: boolean }): PemBlock[] {
  return scanPemBlocks(text, options.strict, { characters: 0 });
}

/**
 * For tests: how many characters decoding `text` examines (searched spans, labels and bodies),
 * whether it succeeds or throws PemError. A linear scanner stays within a small multiple of
 * `text.length` for any input.
 */
export function measurePemScan(text: string, options: { strict: boolean }): number {
  const work = { characters: 0 };
  try {
    scanPemBlocks(text, options.strict, work);
  } catch (error) {
    if (!(error instanceof PemError)) throw error;
    // a refused input still counts: the work to refuse it is what is measured
  }
  return work.characters;
}

function scanPemBlocks(text: string, strict: boolean, work: WorkCounter): PemBlock[] {
  const blocks: PemBlock[] = [];
  let cursor = 0;
  for (;;) {
    const begin = find(text, beginMarker, cursor, work);
    if (strict) checkOnlyWhitespace(text, cursor, begin < 0 ? text.length : begin, work);
    if (begin < 0) return blocks;
    const beginLine = readMarkerLabel(text, begin + beginMarker.length, work);
    if (!beginLine) throw new PemError("malformed PEM BEGIN line");
    const { label } = beginLine;
    let bodyStart = beginLine.next;
    if (text[bodyStart] === "\r") bodyStart++;
    if (text[bodyStart] !== "\n") throw new PemError(`PEM BEGIN ${label} line does not end the line`);
    bodyStart++;
    const end = find(text, endMarker, bodyStart, work);
    if (end < 0) throw new PemError(`PEM block ${label} has no END line`);
    const endLine = readMarkerLabel(text, end + endMarker.length, work);
    if (!endLine) throw new PemError(`PEM block ${label} has a malformed END line`);
    if (endLine.label !== label)
      throw new PemError(`PEM block BEGIN ${label} ends with END ${endLine.label}`);
    blocks.push({ label, der: decodeBody(text, bodyStart, end, label, work) });
    cursor = endLine.next;
  }
}

/** indexOf, counting the span it searched. */
function find(text: string, marker: string, from: number, work: WorkCounter): number {
  const at = text.indexOf(marker, from);
  work.characters += (at < 0 ? text.length : at + marker.length) - from;
  return at;
}

function checkOnlyWhitespace(text: string, from: number, to: number, work: WorkCounter): void {
  work.characters += to - from;
  if (text.slice(from, to).trim() !== "") throw new PemError("unexpected text outside PEM blocks");
}

/** A-Z, 0-9 or space, by character code (NaN past the end of the text is none of them). */
function isLabelCharacter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x20;
}

/** Reads `LABEL-----` at `start` (label: A-Z, 0-9 and spaces); undefined when malformed. */
const maximumLabelLength = 64;

function readMarkerLabel(
  text: string,
  start: number,
  work: WorkCounter,
): { label: string; next: number } | undefined {
  let at = start;
  // Real labels are short ("ENCRYPTED PRIVATE KEY"); a longer one is malformed, and it is never
  // echoed into errors, conditions or Events at length.
  while (at - start <= maximumLabelLength && isLabelCharacter(text.charCodeAt(at))) at++;
  work.characters += at - start + dashes.length;
  if (at === start || at - start > maximumLabelLength || !text.startsWith(dashes, at)) return undefined;
  return { label: text.slice(start, at), next: at + dashes.length };
}

/** A-Z, a-z, 0-9, "+" or "/", by character code. */
function isBase64Character(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2b ||
    code === 0x2f
  );
}

/** The base64 between the BEGIN and END lines: lines trimmed, blank lines skipped, no headers. */
function decodeBody(text: string, from: number, to: number, label: string, work: WorkCounter): Uint8Array {
  work.characters += to - from;
  const parts: string[] = [];
  for (const rawLine of text.slice(from, to).split("\n")) {
    const line = rawLine.trim();
    if (line === "") continue;
    if (line.includes(":")) throw new PemError(`PEM block ${label} has headers`);
    parts.push(line);
  }
  const base64 = parts.join("");
  if (!isPaddedBase64(base64)) throw new PemError(`PEM block ${label} is not base64`);
  return new Uint8Array(Buffer.from(base64, "base64"));
}

/** Base64 alphabet, then at most two "=" at the very end, in whole groups of four. */
function isPaddedBase64(base64: string): boolean {
  if (base64.length % 4 !== 0) return false;
  let padding = 0;
  for (let index = 0; index < base64.length; index++) {
    const code = base64.charCodeAt(index);
    if (code === 0x3d /* = */) padding++;
    else if (padding > 0 || !isBase64Character(code)) return false;
  }
  return padding <= 2;
}

/** Exactly one block with `label` and nothing else. */
export function decodeSinglePem(text: string, label: string): Uint8Array {
  const blocks = decodePemBlocks(text, { strict: true });
  if (blocks.length !== 1)
    throw new PemError(`expected exactly one ${label} PEM block, found ${blocks.length}`);
  const block = blocks[0]!;
  if (block.label !== label) throw new PemError(`expected a ${label} PEM block, found ${block.label}`);
  return block.der;
}

/** All CERTIFICATE blocks of a bundle; other blocks are an error. */
export function decodeCertificatesPem(text: string, what: string): Uint8Array[] {
  const blocks = decodePemBlocks(text, { strict: false });
  const other = blocks.find((block) => block.label !== "CERTIFICATE");
  if (other) throw new PemError(`${what}: unexpected ${other.label} block among certificates`);
  return blocks.map((block) => block.der);
}

export function encodePem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  let body = "";
  for (let i = 0; i < base64.length; i += 64) body += base64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

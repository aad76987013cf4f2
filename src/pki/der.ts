/**
 * A strict DER reader and a small DER writer.
 *
 * Why our own: certificate requests are attacker-controlled, and a signer must parse
 * exactly one way (no BER indefinite lengths, no non-minimal lengths, no trailing
 * bytes) with hard limits on depth and node count before any work happens. Writing
 * TBSCertificates directly is also what makes issuance fast: pkijs's generic ASN.1
 * builder costs ~1.2 ms per certificate, this writer a few microseconds (BENCHMARKS.md).
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

export const TagClass = { universal: 0, application: 1, contextSpecific: 2, private: 3 } as const;

export const UniversalTag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  objectIdentifier: 0x06,
  utf8String: 0x0c,
  sequence: 0x10,
  set: 0x11,
  printableString: 0x13,
  teletexString: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  universalString: 0x1c,
  bmpString: 0x1e,
} as const;

/** One decoded TLV. `value` is a view into the input, never a copy. */
export interface DerNode {
  readonly tagClass: number;
  readonly constructed: boolean;
  readonly tagNumber: number;
  /** The whole TLV (header and value), for signatures computed over the encoding. */
  readonly encoded: Uint8Array;
  readonly value: Uint8Array;
  /** Children when constructed; empty otherwise. */
  readonly children: readonly DerNode[];
}

export interface DerLimits {
  /** Deepest nesting accepted (a CSR needs about 10). */
  maxDepth: number;
  /** Most TLVs accepted in one input. */
  maxNodes: number;
}

export const defaultDerLimits: DerLimits = { maxDepth: 16, maxNodes: 1024 };

/**
 * Decodes exactly one DER TLV spanning all of `input`. Throws DerError on any BER-only
 * form, trailing data, or a limit exceeded.
 */
export function decodeDer(input: Uint8Array, limits: DerLimits = defaultDerLimits): DerNode {
  const budget = { nodes: 0 };
  const node = decodeAt(input, 0, input.length, 0, limits, budget);
  const end = node.encoded.length;
  if (end !== input.length) throw new DerError(`trailing data after DER value (${input.length - end} bytes)`);
  return node;
}

function decodeAt(
  input: Uint8Array,
  offset: number,
  limit: number,
  depth: number,
  limits: DerLimits,
  budget: { nodes: number },
): DerNode {
  if (depth > limits.maxDepth) throw new DerError(`DER nesting deeper than ${limits.maxDepth}`);
  if (++budget.nodes > limits.maxNodes) throw new DerError(`more than ${limits.maxNodes} DER values`);
  const start = offset;
  if (offset >= limit) throw new DerError("truncated DER: missing tag");
  const first = input[offset++]!;
  const tagClass = first >> 6;
  const constructed = (first & 0x20) !== 0;
  const tagNumber = first & 0x1f;
  if (tagNumber === 0x1f) {
    // High tag numbers never occur in the structures we read; refusing them keeps the reader small.
    throw new DerError("high-tag-number form is not supported");
  }
  if (offset >= limit) throw new DerError("truncated DER: missing length");
  let length = input[offset++]!;
  if (length === 0x80) throw new DerError("indefinite length is not DER");
  if (length > 0x80) {
    const lengthBytes = length & 0x7f;
    if (lengthBytes > 4) throw new DerError("DER length too large");
    if (offset + lengthBytes > limit) throw new DerError("truncated DER: length");
    if (input[offset] === 0) throw new DerError("non-minimal DER length");
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + input[offset++]!;
    if (length < 0x80) throw new DerError("non-minimal DER length");
  }
  const valueStart = offset;
  const valueEnd = valueStart + length;
  if (valueEnd > limit) throw new DerError("truncated DER: value runs past its container");
  if (tagClass === TagClass.universal) checkUniversalForm(tagNumber, constructed);
  const children: DerNode[] = [];
  if (constructed) {
    let cursor = valueStart;
    while (cursor < valueEnd) {
      const child = decodeAt(input, cursor, valueEnd, depth + 1, limits, budget);
      children.push(child);
      cursor += child.encoded.length; // a child's TLV ends where the next one starts
    }
  }
  return {
    tagClass,
    constructed,
    tagNumber,
    encoded: input.subarray(start, valueEnd),
    value: input.subarray(valueStart, valueEnd),
    children,
  };
}

/** Universal types whose encoding is always constructed (X.690 8.8-8.10, 8.18, 8.19, 8.23.2). */
const constructedUniversalTags: ReadonlySet<number> = new Set([
  UniversalTag.sequence,
  UniversalTag.set,
  0x08, // EXTERNAL
  0x0b, // EMBEDDED PDV
  0x1d, // CHARACTER STRING
]);

/**
 * The form of a universal tag is fixed by its type in DER: SEQUENCE and SET are constructed,
 * everything else is primitive (X.690 10.2: strings never use BER's constructed segments). A
 * reader that ignored the bit would read the children's bytes as the value (a constructed
 * OCTET STRING extnValue as a SAN that Go refuses, a constructed OID as a different OID).
 */
function checkUniversalForm(tagNumber: number, constructed: boolean): void {
  if (tagNumber === 0) throw new DerError("end-of-contents (universal tag 0) is not DER");
  const mustBeConstructed = constructedUniversalTags.has(tagNumber);
  if (mustBeConstructed && !constructed)
    throw new DerError(`universal tag ${tagNumber} must be constructed (SEQUENCE and SET are)`);
  if (!mustBeConstructed && constructed)
    throw new DerError(`universal tag ${tagNumber} must be primitive in DER, found the constructed form`);
}

// ---------------------------------------------------------------------------------------------
// Typed accessors: each checks the tag so that a structure of the wrong shape fails loudly.

export function expectUniversal(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new DerError(`${what}: missing`);
  if (node.tagClass !== TagClass.universal || node.tagNumber !== tag) {
    throw new DerError(`${what}: unexpected tag ${describeTag(node)}`);
  }
  return node;
}

export function expectSequence(node: DerNode | undefined, what: string): DerNode {
  return expectUniversal(node, UniversalTag.sequence, what);
}

export function isContextTag(node: DerNode | undefined, tagNumber: number): node is DerNode {
  return node !== undefined && node.tagClass === TagClass.contextSpecific && node.tagNumber === tagNumber;
}

function describeTag(node: DerNode): string {
  const className = ["universal", "application", "context", "private"][node.tagClass];
  return `[${className} ${node.tagNumber}${node.constructed ? " constructed" : ""}]`;
}

const maxObjectIdentifierArc = 0x7fffffff;

export function readObjectIdentifier(node: DerNode | undefined, what: string): string {
  const value = expectUniversal(node, UniversalTag.objectIdentifier, what).value;
  if (value.length === 0) throw new DerError(`${what}: empty OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let arc = 0;
  let arcStart = true;
  for (let i = 0; i < value.length; i++) {
    const byte = value[i]!;
    if (arcStart && byte === 0x80) throw new DerError(`${what}: non-minimal OID arc`);
    arcStart = false;
    arc = arc * 128 + (byte & 0x7f);
    // Go's encoding/asn1 refuses arcs past 2^31-1 ("base 128 integer too large"); so does this reader.
    if (arc > maxObjectIdentifierArc) throw new DerError(`${what}: OID arc larger than 2^31-1`);
    if ((byte & 0x80) === 0) {
      arcStart = true;
      arcs.push(arc);
      arc = 0;
    } else if (i === value.length - 1) {
      throw new DerError(`${what}: truncated OID`);
    }
  }
  const firstArc = Math.min(Math.floor(arcs[0]! / 40), 2);
  return [firstArc, arcs[0]! - firstArc * 40, ...arcs.slice(1)].join(".");
}

/** Reads a small non-negative INTEGER (versions, pathLen). */
export function readSmallInteger(node: DerNode | undefined, what: string): number {
  const value = expectUniversal(node, UniversalTag.integer, what).value;
  checkMinimalInteger(value, what);
  if (value.length > 4 || (value[0]! & 0x80) !== 0)
    throw new DerError(`${what}: not a small non-negative integer`);
  return value.reduce((n, b) => n * 256 + b, 0);
}

export function checkMinimalInteger(value: Uint8Array, what: string): void {
  if (value.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (value.length > 1 && value[0] === 0x00 && (value[1]! & 0x80) === 0) {
    throw new DerError(`${what}: non-minimal INTEGER`);
  }
  if (value.length > 1 && value[0] === 0xff && (value[1]! & 0x80) !== 0) {
    throw new DerError(`${what}: non-minimal INTEGER`);
  }
}

export function readBoolean(node: DerNode | undefined, what: string): boolean {
  const value = expectUniversal(node, UniversalTag.boolean, what).value;
  if (value.length !== 1 || (value[0] !== 0x00 && value[0] !== 0xff)) {
    throw new DerError(`${what}: BOOLEAN must be one byte 0x00 or 0xFF`);
  }
  return value[0] === 0xff;
}

/** Returns the bits of a BIT STRING with no unused bits (keys and signatures). */
export function readBitStringBytes(node: DerNode | undefined, what: string): Uint8Array {
  const value = expectUniversal(node, UniversalTag.bitString, what).value;
  if (value.length === 0) throw new DerError(`${what}: empty BIT STRING`);
  if (value[0] !== 0) throw new DerError(`${what}: BIT STRING with unused bits`);
  return value.subarray(1);
}

// ---------------------------------------------------------------------------------------------
// Writer. Values are Uint8Arrays; constructors concatenate once.

/** Bytes of the DER length field for a value of `length` bytes. */
function lengthFieldSize(length: number): number {
  let size = 1;
  if (length >= 0x80) for (let n = length; n > 0; n = Math.floor(n / 256)) size++;
  return size;
}

/** Writes the length field of `fieldSize` bytes (from lengthFieldSize) at `at`. */
function writeLength(out: Uint8Array, at: number, length: number, fieldSize: number): void {
  if (fieldSize === 1) {
    out[at] = length;
    return;
  }
  out[at] = 0x80 | (fieldSize - 1);
  for (let index = fieldSize - 1, n = length; index >= 1; index--, n = Math.floor(n / 256)) {
    out[at + index] = n & 0xff;
  }
}

/** One TLV around the concatenated parts, written into a single allocation. */
export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const fieldSize = lengthFieldSize(length);
  const out = new Uint8Array(1 + fieldSize + length);
  out[0] = tag;
  writeLength(out, 1, length, fieldSize);
  let offset = 1 + fieldSize;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export const sequence = (...parts: Uint8Array[]): Uint8Array => tlv(0x30, ...parts);
export const set = (...parts: Uint8Array[]): Uint8Array => tlv(0x31, ...parts);
export const octetString = (value: Uint8Array): Uint8Array => tlv(UniversalTag.octetString, value);
const utf8Encoder = new TextEncoder(); // stateless: one for every string written
export const utf8String = (text: string): Uint8Array =>
  tlv(UniversalTag.utf8String, utf8Encoder.encode(text));
export const printableString = (text: string): Uint8Array =>
  tlv(UniversalTag.printableString, utf8Encoder.encode(text));
export const ia5String = (text: string): Uint8Array => tlv(UniversalTag.ia5String, utf8Encoder.encode(text));
export const derNull = (): Uint8Array => Uint8Array.of(0x05, 0x00);
export const booleanTrue = (): Uint8Array => Uint8Array.of(0x01, 0x01, 0xff);
/** [n] EXPLICIT, constructed. */
export const explicit = (tagNumber: number, ...parts: Uint8Array[]): Uint8Array =>
  tlv(0xa0 | tagNumber, ...parts);
/** [n] IMPLICIT on a primitive value. */
export const implicitPrimitive = (tagNumber: number, value: Uint8Array): Uint8Array =>
  tlv(0x80 | tagNumber, value);

/** A non-negative INTEGER from big-endian magnitude bytes, in minimal DER (a 0x00 prefix only when needed). */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return Uint8Array.of(0x02, 0x01, 0x00);
  return (trimmed[0]! & 0x80) !== 0
    ? tlv(UniversalTag.integer, Uint8Array.of(0), trimmed)
    : tlv(UniversalTag.integer, trimmed);
}

export function smallInteger(value: number): Uint8Array {
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return unsignedInteger(Uint8Array.from(bytes.length ? bytes : [0]));
}

const oidCache = new Map<string, Uint8Array>();

export function objectIdentifier(dotted: string): Uint8Array {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [];
  const pushArc = (arc: number): void => {
    const chunk = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    bytes.push(...chunk);
  };
  pushArc(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) pushArc(arc);
  const encoded = tlv(UniversalTag.objectIdentifier, Uint8Array.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

/** A BIT STRING holding whole bytes (keys, signatures). */
export const bitStringBytes = (bytes: Uint8Array): Uint8Array =>
  tlv(UniversalTag.bitString, Uint8Array.of(0), bytes);

/**
 * A named-bit BIT STRING (keyUsage) from bit positions, DER-minimal: trailing zero bits are
 * dropped and the unused-bits count says how many bits of the last byte are padding.
 */
export function namedBitString(bitPositions: readonly number[]): Uint8Array {
  if (bitPositions.length === 0) return Uint8Array.of(UniversalTag.bitString, 0x01, 0x00);
  const highest = Math.max(...bitPositions);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const bit of bitPositions) bytes[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  const unusedBits = 7 - (highest % 8);
  return tlv(UniversalTag.bitString, Uint8Array.of(unusedBits), bytes);
}

/** Reads the positions set in a named-bit BIT STRING (keyUsage). */
export function readNamedBits(node: DerNode | undefined, what: string): number[] {
  const value = expectUniversal(node, UniversalTag.bitString, what).value;
  if (value.length === 0 || value[0]! > 7) throw new DerError(`${what}: malformed BIT STRING`);
  const positions: number[] = [];
  const totalBits = (value.length - 1) * 8 - value[0]!;
  for (let bit = 0; bit < totalBits; bit++) {
    if ((value[1 + Math.floor(bit / 8)]! & (0x80 >> (bit % 8))) !== 0) positions.push(bit);
  }
  return positions;
}

const twoDigits = (n: number): string => String(n).padStart(2, "0");

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 4.1.2.5); seconds, Zulu. */
export function time(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  const rest =
    twoDigits(date.getUTCMonth() + 1) +
    twoDigits(date.getUTCDate()) +
    twoDigits(date.getUTCHours()) +
    twoDigits(date.getUTCMinutes()) +
    twoDigits(date.getUTCSeconds()) +
    "Z";
  if (year >= 1950 && year < 2050) return tlv(UniversalTag.utcTime, asciiBytes(twoDigits(year % 100) + rest));
  return tlv(UniversalTag.generalizedTime, asciiBytes(String(year).padStart(4, "0") + rest));
}

function asciiBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

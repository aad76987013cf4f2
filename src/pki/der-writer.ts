/**
 * A small DER writer: values are Uint8Arrays; constructors concatenate once.
 *
 * Writing TBSCertificates directly is what makes issuance fast: pkijs's generic ASN.1
 * builder costs ~1.2 ms per certificate, this writer a few microseconds (BENCHMARKS.md).
 */
import { UniversalTag } from "./der-reader.js";

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

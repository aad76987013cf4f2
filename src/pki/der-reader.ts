/**
 * A strict DER reader.
 *
 * Why our own: certificate requests are attacker-controlled, and a signer must parse
 * exactly one way (no BER indefinite lengths, no non-minimal lengths, no trailing
 * bytes) with hard limits on depth and node count before any work happens.
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

/** One decoded TLV. `encoded` and `value` are views into the input, never copies. */
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

const defaultDerLimits: DerLimits = { maxDepth: 16, maxNodes: 1024 };

/**
 * Decodes exactly one DER TLV spanning all of `input`. Throws DerError on any BER-only
 * form, trailing data, or a limit exceeded.
 */
export function decodeDer(input: Uint8Array, limits: DerLimits = defaultDerLimits): DerNode {
  const budget = { nodes: 0 };
  const node = decodeAt(input, 0, input.length, 0, limits, budget);
  if (node.end !== input.length)
    throw new DerError(`trailing data after DER value (${input.length - node.end} bytes)`);
  return node;
}

const noChildren: readonly DerNode[] = Object.freeze([]);

/**
 * A decoded TLV as offsets into the input: `encoded` and `value` are views made when read, since
 * most nodes of a request are only walked past (parsing a request allocated 25 KB per certificate
 * with a view per node, 19 KB with views made when read; BENCHMARKS.md, sixth pass).
 */
class DecodedNode implements DerNode {
  constructor(
    private readonly input: Uint8Array,
    readonly tagClass: number,
    readonly constructed: boolean,
    readonly tagNumber: number,
    private readonly start: number,
    private readonly valueStart: number,
    /** Where the TLV ends in the input: the next sibling's start. */
    readonly end: number,
    readonly children: readonly DerNode[],
  ) {}

  get encoded(): Uint8Array {
    return this.input.subarray(this.start, this.end);
  }

  get value(): Uint8Array {
    return this.input.subarray(this.valueStart, this.end);
  }
}

function decodeAt(
  input: Uint8Array,
  offset: number,
  limit: number,
  depth: number,
  limits: DerLimits,
  budget: { nodes: number },
): DecodedNode {
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
  let children = noChildren;
  if (constructed) {
    const decoded: DerNode[] = [];
    let cursor = valueStart;
    while (cursor < valueEnd) {
      const child = decodeAt(input, cursor, valueEnd, depth + 1, limits, budget);
      decoded.push(child);
      cursor = child.end; // a child's TLV ends where the next one starts
    }
    children = decoded;
  }
  return new DecodedNode(input, tagClass, constructed, tagNumber, start, valueStart, valueEnd, children);
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

/** Whether the node is exactly a DER NULL (05 00). */
export const isDerNull = (node: DerNode): boolean =>
  node.encoded.length === 2 && node.encoded[0] === UniversalTag.null && node.encoded[1] === 0;

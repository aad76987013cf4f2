/**
 * A mutable ASN.1 tree for the parser-differential test: honest structures are built as trees,
 * mutated at the encoding level (tags, lengths, BER forms, duplicated or missing elements, stray
 * bytes), then encoded. Deliberately independent of src/pki/der-reader.ts, the reader under test.
 */

export interface DerTree {
  /** Identifier octets (one byte, or more for the BER high-tag-number form). */
  identifier: number[];
  /** Leaf bytes, or children encoded one after another (also for an encapsulating OCTET STRING). */
  content: Uint8Array | DerTree[];
  /** How the length is written: DER (minimal), one byte longer than needed, or BER indefinite. */
  lengthForm?: "minimal" | "nonMinimal" | "indefinite";
  /** Added to the written length (a lying length). */
  lengthDelta?: number;
  /** Bytes written as they are, without identifier or length (stray trailing data). */
  raw?: boolean;
}

export const leaf = (tag: number, bytes: Uint8Array | number[]): DerTree => ({
  identifier: [tag],
  content: Uint8Array.from(bytes),
});
export const node = (tag: number, ...children: DerTree[]): DerTree => ({
  identifier: [tag],
  content: children,
});
export const seq = (...children: DerTree[]): DerTree => node(0x30, ...children);
export const setOf = (...children: DerTree[]): DerTree => node(0x31, ...children);
export const rawBytes = (bytes: Uint8Array | number[]): DerTree => ({
  identifier: [],
  content: Uint8Array.from(bytes),
  raw: true,
});

export function oid(dotted: string): DerTree {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [];
  const pushArc = (arc: number): void => {
    const chunk = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    bytes.push(...chunk);
  };
  pushArc(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) pushArc(arc);
  return leaf(0x06, bytes);
}

export const text = (tag: number, value: string): DerTree => leaf(tag, new TextEncoder().encode(value));
export const latin1 = (tag: number, value: string): DerTree =>
  leaf(
    tag,
    Array.from(value, (c) => c.charCodeAt(0) & 0xff),
  );
export function bmp(value: string): DerTree {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) bytes.push(value.charCodeAt(i) >> 8, value.charCodeAt(i) & 0xff);
  return leaf(0x1e, bytes);
}
export const integer = (value: number): DerTree => leaf(0x02, value < 0x80 ? [value] : [0, value]);
export const boolean = (value: boolean): DerTree => leaf(0x01, [value ? 0xff : 0x00]);
export const derNullTree = (): DerTree => leaf(0x05, []);
/** An OCTET STRING holding DER (extnValue): the inner tree stays mutable. */
export const octetsOf = (inner: DerTree): DerTree => node(0x04, inner);

function encodeLength(length: number, form: DerTree["lengthForm"]): number[] {
  if (form === "indefinite") return [0x80];
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  if (form === "nonMinimal") return [0x80 | (bytes.length + 1), 0, ...bytes];
  if (length < 0x80) return [length];
  return [0x80 | bytes.length, ...bytes];
}

export function encodeTree(tree: DerTree): Uint8Array {
  const content = Array.isArray(tree.content) ? concat(tree.content.map(encodeTree)) : tree.content;
  if (tree.raw) return content;
  const length = Math.max(0, content.length + (tree.lengthDelta ?? 0));
  const header = [...tree.identifier, ...encodeLength(length, tree.lengthForm)];
  const trailer = tree.lengthForm === "indefinite" ? [0, 0] : [];
  return concat([Uint8Array.from(header), content, Uint8Array.from(trailer)]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function cloneTree(tree: DerTree): DerTree {
  return {
    ...tree,
    identifier: [...tree.identifier],
    content: Array.isArray(tree.content) ? tree.content.map(cloneTree) : tree.content.slice(),
  };
}

/** Every node in pre-order (the root first), for picking a mutation target by index. */
export function nodesOf(tree: DerTree): DerTree[] {
  const out: DerTree[] = [tree];
  if (Array.isArray(tree.content)) for (const child of tree.content) out.push(...nodesOf(child));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutations. Each names a kind, a target (index into the nodes of the right sort, taken modulo
// their number, so any number is valid and small numbers shrink well) and a free parameter.

export const mutationKinds = [
  "flipByte", // xor one content byte of a leaf
  "replaceLeaf", // replace a leaf's content with other bytes
  "prependZero", // a leading 0x00 (non-minimal INTEGER, odd lengths)
  "retag", // any other identifier byte
  "toggleConstructed", // the constructed bit (0x20), in both directions
  "changeClass", // universal <-> context-specific <-> application <-> private
  "highTagForm", // the same tag number written in BER high-tag-number form
  "lengthDelta", // the length field lies by a little
  "nonMinimalLength", // BER: a longer length field than needed
  "indefiniteLength", // BER: 0x80 ... 00 00
  "constructedString", // BER: a primitive value split into a constructed one of two chunks
  "duplicateChild", // the same element twice (extensions, attributes, RDNs, SANs, values)
  "removeChild", // a missing element
  "swapChildren", // two elements in the other order
  "appendChild", // a copy of another element of the tree, appended
  "appendBytes", // stray bytes after the last element
  "truncate", // the encoding cut short (applied to the whole encoding)
] as const;
export type MutationKind = (typeof mutationKinds)[number];

export interface Mutation {
  kind: MutationKind;
  target: number;
  parameter: number;
  bytes: number[];
}

export function applyMutation(tree: DerTree, mutation: Mutation): void {
  const all = nodesOf(tree).filter((n) => !n.raw);
  const leaves = all.filter((n) => !Array.isArray(n.content));
  const parents = all.filter((n) => Array.isArray(n.content));
  const pick = <T>(list: T[]): T | undefined =>
    list.length ? list[mutation.target % list.length] : undefined;
  const p = mutation.parameter;
  switch (mutation.kind) {
    case "flipByte": {
      const target = pick(leaves.filter((n) => (n.content as Uint8Array).length > 0));
      if (!target) return;
      const bytes = (target.content as Uint8Array).slice();
      bytes[p % bytes.length]! ^= (p >> 8) % 255 || 1;
      target.content = bytes;
      return;
    }
    case "replaceLeaf": {
      const target = pick(leaves);
      if (target) target.content = Uint8Array.from(mutation.bytes);
      return;
    }
    case "prependZero": {
      const target = pick(leaves);
      if (target) target.content = concat([Uint8Array.of(p % 2 ? 0xff : 0x00), target.content as Uint8Array]);
      return;
    }
    case "retag": {
      const target = pick(all);
      if (target) target.identifier = [p % 256];
      return;
    }
    case "toggleConstructed": {
      const target = pick(all);
      if (target) target.identifier[0]! ^= 0x20;
      return;
    }
    case "changeClass": {
      const target = pick(all);
      if (target) target.identifier[0] = (target.identifier[0]! + 0x40 * (1 + (p % 3))) & 0xff;
      return;
    }
    case "highTagForm": {
      const target = pick(all.filter((n) => n.identifier.length === 1 && (n.identifier[0]! & 0x1f) !== 0x1f));
      if (target) target.identifier = [(target.identifier[0]! & 0xe0) | 0x1f, target.identifier[0]! & 0x1f];
      return;
    }
    case "lengthDelta": {
      const target = pick(all);
      if (target) target.lengthDelta = [-2, -1, 1, 2][p % 4];
      return;
    }
    case "nonMinimalLength": {
      const target = pick(all);
      if (target) target.lengthForm = "nonMinimal";
      return;
    }
    case "indefiniteLength": {
      const target = pick(parents.length && p % 4 !== 0 ? parents : all);
      if (target) target.lengthForm = "indefinite";
      return;
    }
    case "constructedString": {
      const target = pick(leaves.filter((n) => n.identifier.length === 1));
      if (!target) return;
      const bytes = target.content as Uint8Array;
      const cut = bytes.length ? p % (bytes.length + 1) : 0;
      const tag = target.identifier[0]!;
      target.identifier = [tag | 0x20];
      target.content = [leaf(tag, bytes.subarray(0, cut)), leaf(tag, bytes.subarray(cut))];
      return;
    }
    case "duplicateChild":
    case "removeChild":
    case "swapChildren": {
      const target = pick(parents.filter((n) => (n.content as DerTree[]).length > 0));
      if (!target) return;
      const children = target.content as DerTree[];
      const index = p % children.length;
      if (mutation.kind === "duplicateChild") {
        children.splice((p >> 4) % (children.length + 1), 0, cloneTree(children[index]!));
      } else if (mutation.kind === "removeChild") {
        children.splice(index, 1);
      } else {
        const other = (p >> 4) % children.length;
        [children[index], children[other]] = [children[other]!, children[index]!];
      }
      return;
    }
    case "appendChild": {
      const target = pick(parents);
      if (target) (target.content as DerTree[]).push(cloneTree(all[p % all.length]!));
      return;
    }
    case "appendBytes": {
      const target = pick(parents);
      if (target) (target.content as DerTree[]).push(rawBytes(mutation.bytes.length ? mutation.bytes : [0]));
      return;
    }
    case "truncate":
      return; // applied to the encoding, by truncateEncoding
  }
}

/** The encoding with every mutation applied; truncation cuts the final bytes. */
export function encodeMutated(tree: DerTree, mutations: readonly Mutation[]): Uint8Array {
  const copy = cloneTree(tree);
  for (const mutation of mutations) applyMutation(copy, mutation);
  let encoded = encodeTree(copy);
  for (const mutation of mutations) {
    if (mutation.kind === "truncate" && encoded.length > 1)
      encoded = encoded.subarray(0, mutation.parameter % encoded.length);
  }
  return encoded;
}

/** Reads honest DER (definite lengths, low tags) into a tree; for SubjectPublicKeyInfo from node:crypto. */
export function parseTree(bytes: Uint8Array): DerTree {
  const [tree, end] = parseAt(bytes, 0);
  if (end !== bytes.length) throw new Error("parseTree: trailing bytes");
  return tree;
}

function parseAt(bytes: Uint8Array, offset: number): [DerTree, number] {
  const identifier = bytes[offset++]!;
  let length = bytes[offset++]!;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[offset++]!;
  }
  const end = offset + length;
  if (!(identifier & 0x20)) return [leaf(identifier, bytes.subarray(offset, end)), end];
  const children: DerTree[] = [];
  while (offset < end) {
    const [child, next] = parseAt(bytes, offset);
    children.push(child);
    offset = next;
  }
  return [node(identifier, ...children), end];
}

import {
  DerError,
  UniversalTag,
  expectSequence,
  expectUniversal,
  readObjectIdentifier,
  type DerNode,
} from "./der-reader.js";
import { objectIdentifier, printableString, sequence, set, utf8String } from "./der-writer.js";
import { readString } from "./der-strings.js";
import { Oid, nameAttributeOids, nameAttributeShortNames } from "./oids.js";

/** One attribute of a distinguished name; `type` is a short name (CN, O, ...) or a dotted OID. */
export interface NameAttribute {
  readonly type: string;
  readonly value: string;
}

/** A distinguished name as an ordered list of single-attribute RDNs. */
export type DistinguishedName = readonly NameAttribute[];

/**
 * Reads a Name. Multi-valued RDNs are refused: nothing we sign uses them, and they are a
 * classic place for two parsers to disagree about which value counts.
 */
export function readName(node: DerNode | undefined, what: string): DistinguishedName {
  const name = expectSequence(node, what);
  return name.children.map((rdn, index) => {
    const rdnSet = expectUniversal(rdn, UniversalTag.set, `${what} RDN ${index}`);
    if (rdnSet.children.length !== 1) throw new DerError(`${what}: multi-valued RDNs are not accepted`);
    const attribute = expectSequence(rdnSet.children[0], `${what} attribute`);
    if (attribute.children.length !== 2) throw new DerError(`${what}: malformed attribute`);
    const oid = readObjectIdentifier(attribute.children[0], `${what} attribute type`);
    return {
      type: nameAttributeShortNames[oid] ?? oid,
      value: readString(attribute.children[1], `${what} ${oid}`),
    };
  });
}

/** Encodes a Name; country as PrintableString (RFC 5280), everything else UTF8String. */
export function encodeName(name: DistinguishedName): Uint8Array {
  return sequence(
    ...name.map((attribute) => {
      const oid = nameAttributeOids[attribute.type.toUpperCase()] ?? attribute.type;
      if (!/^\d+(\.\d+)+$/.test(oid)) throw new Error(`unknown name attribute type ${attribute.type}`);
      const value = oid === Oid.country ? printableString(attribute.value) : utf8String(attribute.value);
      return set(sequence(objectIdentifier(oid), value));
    }),
  );
}

/** RFC 4514-style text, in the order written (for messages, logs and policy matching). */
export function formatName(name: DistinguishedName): string {
  return name.map((attribute) => `${attribute.type}=${escapeAttributeValue(attribute.value)}`).join(",");
}

function escapeAttributeValue(value: string): string {
  return value
    .replace(/([,+"\\<>;=])/g, "\\$1")
    .replace(/^([ #])/, "\\$1")
    .replace(/ $/, "\\ ");
}

/** Values of one attribute type (e.g. every O), in order. */
export function attributeValues(name: DistinguishedName, type: string): string[] {
  return name.filter((attribute) => attribute.type === type).map((attribute) => attribute.value);
}

/**
 * Parses "O=Example,CN=Example Root CA" (commas and equals signs escaped with a backslash).
 * Empty text is the empty name. Throws naming the part it could not read.
 */
export function parseDistinguishedName(text: string): DistinguishedName {
  if (text.trim() === "") return [];
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "\\" && i + 1 < text.length) {
      current += text[++i];
    } else if (char === ",") {
      parts.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts.map((part) => {
    const equals = part.indexOf("=");
    const type = part.slice(0, equals).trim().toUpperCase();
    if (equals <= 0 || !(type in nameAttributeOids)) {
      throw new Error(
        `cannot read name part "${part}": expected TYPE=value with TYPE one of ${Object.keys(nameAttributeOids).join(", ")}`,
      );
    }
    return { type, value: part.slice(equals + 1).trim() };
  });
}

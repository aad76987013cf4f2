import { isIP } from "node:net";
import { DerError, TagClass, expectSequence, type DerNode } from "./der-reader.js";
import { ia5String, implicitPrimitive, sequence } from "./der-writer.js";
import { latin1Text } from "./der-strings.js";
import { readUriSan } from "./uri-san.js";

/** SANs by type. Values are as requested (policy normalises DNS case before matching). */
export interface SubjectAlternativeNames {
  readonly dns: readonly string[];
  readonly ip: readonly string[];
  readonly uri: readonly string[];
  readonly email: readonly string[];
}

export const noSubjectAlternativeNames: SubjectAlternativeNames = { dns: [], ip: [], uri: [], email: [] };

export function countSubjectAlternativeNames(names: SubjectAlternativeNames): number {
  return names.dns.length + names.ip.length + names.uri.length + names.email.length;
}

// GeneralName CHOICE tags (RFC 5280 4.2.1.6).
const GeneralNameTag = { rfc822Name: 1, dnsName: 2, uniformResourceIdentifier: 6, ipAddress: 7 } as const;

/**
 * Reads a GeneralNames SEQUENCE. Any type other than DNS, IP, URI and email (otherName,
 * directoryName, registeredID, ...) is refused through `refuse`: unknown shapes are denied.
 */
export function readGeneralNames(node: DerNode, refuse: (message: string) => never): SubjectAlternativeNames {
  const names = expectSequence(node, "subjectAltName");
  if (names.children.length === 0) refuse("subjectAltName extension is empty");
  const dns: string[] = [];
  const ip: string[] = [];
  const uri: string[] = [];
  const email: string[] = [];
  for (const name of names.children) {
    if (name.tagClass !== TagClass.contextSpecific || name.constructed) {
      refuse(`subjectAltName type [${name.tagNumber}] is not accepted`);
    }
    switch (name.tagNumber) {
      case GeneralNameTag.dnsName:
        dns.push(readAscii(name.value, "DNS name"));
        break;
      case GeneralNameTag.rfc822Name:
        email.push(readAscii(name.value, "email address"));
        break;
      case GeneralNameTag.uniformResourceIdentifier:
        uri.push(readUriSan(name.value));
        break;
      case GeneralNameTag.ipAddress:
        ip.push(formatIpAddress(name.value));
        break;
      default:
        refuse(`subjectAltName type [${name.tagNumber}] is not accepted (only DNS, IP, URI and email)`);
    }
  }
  return { dns, ip, uri, email };
}

function readAscii(bytes: Uint8Array, what: string): string {
  if (bytes.length === 0) throw new DerError(`empty ${what} SAN`);
  for (const byte of bytes) {
    if (byte < 0x21 || byte > 0x7e) throw new DerError(`${what} SAN has a control, space or non-ASCII byte`);
  }
  return latin1Text(bytes);
}

function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
    return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1); // canonical compressed form
  }
  throw new DerError(`IP address SAN of ${bytes.length} bytes`);
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address in text form. */
export function ipAddressBytes(text: string): Uint8Array {
  const version = isIP(text);
  if (version === 4) return Uint8Array.from(text.split(".").map(Number));
  if (version === 6) {
    const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    const [head, tail] = canonical.includes("::") ? canonical.split("::") : [canonical, undefined];
    const headGroups = head ? head.split(":") : [];
    const tailGroups = tail ? tail.split(":") : [];
    const groups = [
      ...headGroups,
      ...Array<string>(8 - headGroups.length - tailGroups.length).fill("0"),
      ...tailGroups,
    ];
    const out = new Uint8Array(16);
    groups.forEach((group, index) => {
      const value = parseInt(group, 16);
      out[index * 2] = value >> 8;
      out[index * 2 + 1] = value & 0xff;
    });
    return out;
  }
  throw new Error(`not an IP address: ${text}`);
}

/** Encodes GeneralNames in a fixed order: DNS, IP, URI, email. */
export function encodeGeneralNames(names: SubjectAlternativeNames): Uint8Array {
  return sequence(
    ...names.dns.map((name) => retag(ia5String(name), GeneralNameTag.dnsName)),
    ...names.ip.map((address) => implicitPrimitive(GeneralNameTag.ipAddress, ipAddressBytes(address))),
    ...names.uri.map((uri) => retag(ia5String(uri), GeneralNameTag.uniformResourceIdentifier)),
    ...names.email.map((email) => retag(ia5String(email), GeneralNameTag.rfc822Name)),
  );
}

/** Turns a universal primitive TLV into [n] IMPLICIT of the same content. */
function retag(encoded: Uint8Array, tagNumber: number): Uint8Array {
  const out = encoded.slice();
  out[0] = 0x80 | tagNumber;
  return out;
}

/**
 * IP addresses as policy compares them: parsing, CIDR containment and special-purpose classes.
 *
 * An IPv4-mapped IPv6 address (::ffff:10.96.0.1) is the IPv4 address 10.96.0.1 to Go's crypto/x509
 * (net.IP.To4 folds it) and so to every Kubernetes client verifying a certificate: every range check
 * compares its embedded IPv4 address, never the 16-byte form, so an allowed "::/0" cannot smuggle an
 * address outside the IPv4 ranges. An IPv4-compatible one (::10.96.0.1, deprecated) is NOT folded by
 * Go (To4 is nil), nor by OpenSSL, which compare bytes: it is the IPv6 address ::a60:1 and is
 * compared as one, so 10.0.0.0/8 does not contain it.
 */
import { isIPv4, isIPv6 } from "node:net";
import { ipAddressBytes } from "../pki/subject-alternative-names.js";

/** A parsed CIDR: network bytes (4 or 16) and prefix length. */
export interface IpRange {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** The 4 or 16 bytes of an IP address in text form; undefined when it is not one (zones refused). */
export function parseIpAddress(text: string): Uint8Array | undefined {
  if (text.includes("%") || (!isIPv4(text) && !isIPv6(text))) return undefined;
  return ipAddressBytes(text);
}

/** How a 16-byte address embeds an IPv4 address, if it does. */
export function embeddedIpv4Kind(bytes: Uint8Array): "IPv4-mapped" | "IPv4-compatible" | undefined {
  if (bytes.length !== 16 || !bytes.subarray(0, 10).every((byte) => byte === 0)) return undefined;
  if (bytes[10] === 0xff && bytes[11] === 0xff) return "IPv4-mapped";
  if (bytes[10] !== 0 || bytes[11] !== 0) return undefined;
  // :: and ::1 are the IPv6 unspecified and loopback addresses, not IPv4-compatible ones.
  const low = bytes.subarray(12);
  if (low[0] === 0 && low[1] === 0 && low[2] === 0 && (low[3] === 0 || low[3] === 1)) return undefined;
  return "IPv4-compatible";
}

/** The address as TLS clients read it: an IPv4-mapped address becomes its 4 bytes (Go's To4). */
function normalizeIpAddress(bytes: Uint8Array): Uint8Array {
  return embeddedIpv4Kind(bytes) === "IPv4-mapped" ? bytes.slice(12) : bytes;
}

/** Canonical text of normalised address bytes: dotted IPv4, or compressed lower-case IPv6. */
function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/** Canonical normalised text of an address in any text form; undefined when it is not an address. */
export function canonicalIpAddress(text: string): string | undefined {
  const bytes = parseIpAddress(text);
  return bytes ? formatIpAddress(normalizeIpAddress(bytes)) : undefined;
}

/**
 * Parses "address/prefix"; undefined when malformed. A range inside ::ffff:0:0/96 with a prefix of
 * at least 96 is the IPv4 range it maps, so it compares like one.
 */
export function parseCidr(cidr: string): IpRange | undefined {
  const parts = cidr.split("/");
  if (parts.length !== 2) return undefined;
  const [address, prefixText] = parts as [string, string];
  // Leading zeros in the prefix are ambiguous.
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  const bytes = parseIpAddress(address);
  const prefix = Number(prefixText);
  if (!bytes || prefix > bytes.length * 8) return undefined;
  if (embeddedIpv4Kind(bytes) === "IPv4-mapped" && prefix >= 96)
    return { bytes: bytes.slice(12), prefix: prefix - 96 };
  return { bytes, prefix };
}

/** True when `address` (text) is inside `range`, both compared in their normalised form. */
export function ipRangeContains(range: IpRange, address: string): boolean {
  const parsed = parseIpAddress(address);
  if (!parsed) return false;
  const bytes = normalizeIpAddress(parsed);
  if (bytes.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    const index = Math.floor(bit / 8);
    if ((bytes[index]! & mask) !== (range.bytes[index]! & mask)) return false;
  }
  return true;
}

const specialRanges: readonly [string, string][] = [
  ["0.0.0.0/32", "unspecified"],
  ["::/128", "unspecified"],
  ["127.0.0.0/8", "loopback"],
  ["::1/128", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["fe80::/10", "link-local"],
  ["224.0.0.0/4", "multicast"],
  ["ff00::/8", "multicast"],
  ["255.255.255.255/32", "broadcast"],
];
const parsedSpecialRanges = specialRanges.map(([cidr, name]) => [parseCidr(cidr)!, name] as const);

/**
 * The special-purpose class of an address that must never name a serving host (loopback,
 * link-local, unspecified, multicast, broadcast, or IPv4 embedded in IPv6, which hides an IPv4
 * address behind an IPv6 one); undefined for an ordinary unicast address or a non-address.
 */
export function specialPurposeIpClass(address: string): string | undefined {
  const bytes = parseIpAddress(address);
  if (!bytes) return undefined;
  const embedded = embeddedIpv4Kind(bytes);
  if (embedded) return `${embedded} IPv6`;
  return parsedSpecialRanges.find(([range]) => ipRangeContains(range, address))?.[1];
}

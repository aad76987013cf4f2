/**
 * The syntax of requested SANs, before any policy: what the controller checks on its way to
 * matching names against a Signer's patterns, and what `csr-signer sign` (which has no patterns)
 * checks on its own. Pure; no regular expression over a SAN longer than a DNS label.
 */
import { ipAddressBytes, type SubjectAlternativeNames } from "../pki/subject-alternative-names.js";
import { parsePlainMailbox } from "./email-address.js";
import { embeddedIpv4Kind } from "./ip-addresses.js";
import type { SubjectAltNameSyntaxReason } from "../api/reasons.js";

/** The first malformed SAN: a CamelCase reason and a message naming the rule it breaks. */
export interface SubjectAltNameSyntaxProblem {
  readonly reason: SubjectAltNameSyntaxReason;
  readonly message: string;
}

const maximumDnsNameLength = 253;
const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A lower-case host name: labels of letters, digits and inner hyphens, at most 253 characters; no wildcard. */
export function isDnsHostName(name: string): boolean {
  return name.length <= maximumDnsNameLength && name.split(".").every((label) => dnsLabel.test(label));
}

/**
 * A DNS name of at least two letter-digit-hyphen labels (any case), at most 253 characters, where
 * "*" may only be the whole left-most label: `*.*.com`, `a*.b.com`, `-a..b` and `localhost` are not.
 */
export function isDnsNameSyntax(name: string): boolean {
  if (name.length > maximumDnsNameLength) return false;
  const labels = name.toLowerCase().split(".");
  return (
    labels.length >= 2 &&
    labels.every((label, index) => dnsLabel.test(label) || (index === 0 && label === "*"))
  );
}

export function invalidDnsNameMessage(name: string): string {
  return `DNS SAN ${JSON.stringify(name)} is not a valid DNS name (letter-digit-hyphen labels, at least two; a "*" may only be the whole left-most label)`;
}

export function invalidEmailAddressMessage(email: string): string {
  return `email SAN ${JSON.stringify(email)} is not a plain mailbox (exactly one "@", an unquoted dot-atom local part, a domain)`;
}

/**
 * The first SAN that is malformed whatever the policy, or undefined. IPv4-mapped IPv6 addresses
 * (::ffff:0:0/96) are refused: every TLS client reads them as the embedded IPv4 address, so the
 * certificate would name an address that the text of the request hides.
 */
export function subjectAltNameSyntaxProblem(
  names: SubjectAlternativeNames,
): SubjectAltNameSyntaxProblem | undefined {
  for (const name of names.dns) {
    if (!isDnsNameSyntax(name)) return { reason: "InvalidDnsName", message: invalidDnsNameMessage(name) };
  }
  for (const address of names.ip) {
    const bytes = ipAddressBytes(address);
    if (embeddedIpv4Kind(bytes) === "IPv4-mapped") {
      return {
        reason: "InvalidIpAddress",
        message: `IP SAN ${address} is an IPv4-mapped IPv6 address (::ffff:0:0/96), which TLS clients read as ${bytes.slice(12).join(".")}; request the IPv4 address itself`,
      };
    }
  }
  for (const email of names.email) {
    if (!parsePlainMailbox(email))
      return { reason: "InvalidEmailAddress", message: invalidEmailAddressMessage(email) };
  }
  return undefined;
}

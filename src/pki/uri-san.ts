/**
 * The URI SANs csr-signer accepts: absolute RFC 3986 URIs in the subset whose text survives Go's
 * url.Parse and URL.String() unchanged. Go's crypto/x509 hands every reader a parsed *url.URL, so a
 * URI it would refuse (a bad percent-escape) or re-serialise differently (an upper-case scheme, a
 * backtick, user info, an empty fragment) would make csr-signer and its readers disagree about the
 * identity in a certificate. Anything outside the subset is refused rather than normalised.
 */
import { DerError } from "./der-reader.js";
import { latin1Text } from "./der-strings.js";

// RFC 3986 appendix A, with three restrictions where Go's URL.String() would not give the text back:
// the scheme is lower case (Go lower-cases it), there is no userinfo (Go re-escapes it) and a
// fragment, when present, is not empty (Go drops a bare "#").
const unreserved = "A-Za-z0-9\\-._~";
const subDelims = "!$&'()*+,;=";
const percentEncoded = "%[0-9A-Fa-f]{2}";
const pchar = `(?:[${unreserved}${subDelims}:@]|${percentEncoded})`;
const scheme = "[a-z][a-z0-9+\\-.]*";
// reg-name only (no IP literal, no percent-escape: Go allows those in a host only for non-ASCII),
// dot-separated non-empty labels as Go's domainNameValid wants, and an optional numeric port.
const hostLabel = `[A-Za-z0-9\\-_~${subDelims}]+`;
const authority = `${hostLabel}(?:\\.${hostLabel})*(?::[0-9]+)?`;
const pathAbsoluteOrEmpty = `(?:/${pchar}*)*`;
const pathRootless = `${pchar}+(?:/${pchar}*)*`;
const query = `(?:[/?]|${pchar})*`;
const fragment = `(?:[/?]|${pchar})+`;

const acceptedUri = new RegExp(
  `^${scheme}:(?://${authority}${pathAbsoluteOrEmpty}|/(?:${pchar}+(?:/${pchar}*)*)?|${pathRootless})?` +
    `(?:\\?${query})?(?:#${fragment})?$`,
);

/** The text of a URI SAN, or DerError when it is not an absolute URI in the round-tripping subset. */
export function readUriSan(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError("empty URI SAN");
  for (const byte of bytes) {
    if (byte < 0x21 || byte > 0x7e) throw new DerError("URI SAN has a control, space or non-ASCII byte");
  }
  const text = latin1Text(bytes);
  if (!acceptedUri.test(text)) {
    throw new DerError(
      "URI SAN is not an absolute RFC 3986 URI with a lower-case scheme, a host name, no user info and valid percent-escapes",
    );
  }
  return text;
}

/**
 * Email SANs as plain RFC 5321 mailboxes. An rfc822Name is matched against spec.policy.emailDomains
 * only after it has been read as exactly one mailbox, so that `a@evil.com@allowed.com`,
 * `"x@evil.com"@allowed.com` and `@allowed.com` (which a split at the last "@" let through) never
 * reach the domain comparison. Scanned character by character: no regular expression over the SAN.
 */

export interface Mailbox {
  readonly localPart: string;
  /** Lower-cased: domains compare case-insensitively (RFC 5321 2.4). */
  readonly domain: string;
}

/** RFC 5321 4.5.3.1.1 and 4.5.3.1.2. */
const maximumLocalPartLength = 64;
const maximumDomainLength = 255;
const maximumLabelLength = 63;

/** RFC 5322 atext: the characters of an unquoted local part besides the dots between atoms. */
const atextSymbols = new Set("!#$%&'*+-/=?^_`{|}~");

const isAsciiLetterOrDigit = (character: string): boolean =>
  (character >= "a" && character <= "z") ||
  (character >= "A" && character <= "Z") ||
  (character >= "0" && character <= "9");

/** A dot-atom: one or more atext runs joined by single dots (no quoting, no leading, trailing or double dot). */
function isDotAtom(text: string): boolean {
  if (text.length === 0) return false;
  let previousWasDot = true; // a leading dot is refused like a double dot
  for (const character of text) {
    if (character === ".") {
      if (previousWasDot) return false;
      previousWasDot = true;
    } else if (isAsciiLetterOrDigit(character) || atextSymbols.has(character)) {
      previousWasDot = false;
    } else {
      return false;
    }
  }
  return !previousWasDot;
}

/** A domain of letter-digit-hyphen labels (RFC 5321 Domain; no address literals, no trailing dot). */
function isDomain(text: string): boolean {
  if (text.length === 0 || text.length > maximumDomainLength) return false;
  return text
    .split(".")
    .every(
      (label) =>
        label.length > 0 &&
        label.length <= maximumLabelLength &&
        !label.startsWith("-") &&
        !label.endsWith("-") &&
        [...label].every((character) => isAsciiLetterOrDigit(character) || character === "-"),
    );
}

/**
 * Reads `text` as one plain mailbox: exactly one "@", a non-empty unquoted dot-atom local part of
 * at most 64 characters, and a domain of DNS labels. Undefined for anything else.
 */
export function parsePlainMailbox(text: string): Mailbox | undefined {
  const at = text.indexOf("@");
  if (at < 0 || text.indexOf("@", at + 1) >= 0) return undefined;
  const localPart = text.slice(0, at);
  const domain = text.slice(at + 1);
  if (localPart.length > maximumLocalPartLength || !isDotAtom(localPart) || !isDomain(domain))
    return undefined;
  return { localPart, domain: domain.toLowerCase() };
}

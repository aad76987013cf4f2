import { X509Certificate } from "node:crypto";
import {
  DerError,
  TagClass,
  UniversalTag,
  decodeDer,
  expectSequence,
  expectUniversal,
  isContextTag,
  readBitStringBytes,
  readBoolean,
  readNamedBits,
  readObjectIdentifier,
  readSmallInteger,
  type DerNode,
} from "./der-reader.js";
import { Oid } from "./oids.js";
import { encodePem } from "./pem.js";

/**
 * A certificate with the fields a CA needs, read once. Node's X509Certificate (OpenSSL) does
 * signature checks, validity and fingerprints; our DER reader supplies what it does not expose
 * (exact subject bytes for name chaining, keyUsage bits, pathLen, key identifiers).
 */
export interface ParsedCertificate {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly x509: X509Certificate;
  readonly subject: string;
  readonly issuer: string;
  /** Subject Name exactly as encoded, to be the issuer of what this certificate signs. */
  readonly subjectNameDer: Uint8Array;
  readonly serialNumberHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCertificateAuthority: boolean;
  readonly pathLength: number | undefined;
  /** keyUsage bit positions, or undefined when the extension is absent. */
  readonly keyUsageBits: readonly number[] | undefined;
  readonly subjectKeyIdentifier: Uint8Array | undefined;
  readonly authorityKeyIdentifier: Uint8Array | undefined;
  readonly subjectPublicKey: Uint8Array;
  readonly fingerprintSha256: string;
  readonly selfSigned: boolean;
}

export const KeyUsageBit = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const x509 = new X509Certificate(Buffer.from(der));
  const root = expectSequence(decodeDer(der, { maxDepth: 24, maxNodes: 8192 }), "Certificate");
  const tbs = expectSequence(root.children[0], "tbsCertificate");
  const fields = isContextTag(tbs.children[0], 0) ? tbs.children.slice(1) : tbs.children;
  const [, , issuerNode, , subjectNode, spkiNode, ...rest] = fields as DerNode[];
  const issuerNameDer = expectSequence(issuerNode, "issuer").encoded;
  const subjectNameDer = expectSequence(subjectNode, "subject").encoded;
  const subjectPublicKey = readBitStringBytes(
    expectSequence(spkiNode, "subjectPublicKeyInfo").children[1],
    "subjectPublicKey",
  );

  let isCertificateAuthority = false;
  let pathLength: number | undefined;
  let keyUsageBits: number[] | undefined;
  let subjectKeyIdentifier: Uint8Array | undefined;
  let authorityKeyIdentifier: Uint8Array | undefined;
  const extensionsNode = rest.find((node) => isContextTag(node, 3));
  for (const extension of extensionsNode
    ? expectSequence(extensionsNode.children[0], "extensions").children
    : []) {
    const oid = readObjectIdentifier(extension.children[0], "extension id");
    const value = expectUniversal(
      extension.children[extension.children.length - 1],
      UniversalTag.octetString,
      oid,
    ).value;
    const inner = decodeDer(value);
    switch (oid) {
      case Oid.basicConstraints: {
        const [caNode, pathNode] = expectSequence(inner, "basicConstraints").children;
        if (caNode?.tagNumber === UniversalTag.boolean) {
          isCertificateAuthority = readBoolean(caNode, "cA");
          if (pathNode) pathLength = readSmallInteger(pathNode, "pathLenConstraint");
        } else if (caNode) {
          pathLength = readSmallInteger(caNode, "pathLenConstraint");
        }
        break;
      }
      case Oid.keyUsage:
        keyUsageBits = readNamedBits(inner, "keyUsage");
        break;
      case Oid.subjectKeyIdentifier:
        subjectKeyIdentifier = expectUniversal(inner, UniversalTag.octetString, "subjectKeyIdentifier").value;
        break;
      case Oid.authorityKeyIdentifier: {
        const keyId = expectSequence(inner, "authorityKeyIdentifier").children.find((node) =>
          isContextTag(node, 0),
        );
        authorityKeyIdentifier = keyId?.value;
        break;
      }
    }
  }
  return {
    der,
    pem: encodePem("CERTIFICATE", der),
    x509,
    subject: (x509.subject ?? "").replaceAll("\n", ", "),
    issuer: (x509.issuer ?? "").replaceAll("\n", ", "),
    subjectNameDer,
    serialNumberHex: x509.serialNumber.toLowerCase(),
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    isCertificateAuthority,
    pathLength,
    keyUsageBits,
    subjectKeyIdentifier,
    authorityKeyIdentifier,
    subjectPublicKey,
    fingerprintSha256: x509.fingerprint256,
    // Not x509.checkIssued: OpenSSL's also demands keyCertSign, and we want to report that separately.
    selfSigned: Buffer.from(issuerNameDer).equals(subjectNameDer) && x509.verify(x509.publicKey),
  };
}

/**
 * NotAfter (milliseconds since the epoch) of the first certificate of a CSR's status.certificate
 * (base64 of a PEM chain), or undefined when it is not one. The CSR cache keeps this in place of the
 * chain of every CSR we issued (about 2.5 KB each), for the clean-up's one question of it, and reads
 * it on the watch event of each certificate: the PEM body is checked by one regular expression, not
 * decodePemBlocks' character loop (25 µs a certificate there; BENCHMARKS.md, seventh pass).
 */
export function leafNotAfterMs(statusCertificate: string): number | undefined {
  // When in doubt, undefined (the clean-up then waits its hour): only what we write is read, the
  // leaf's block first, at the very start, its END line ending the line, strict base64 between;
  // kube-apiserver's Go PEM decoder skips text before a block, which this must not read as one.
  // Go's decoder also skips a block whose BEGIN line has more on it, whose END line does not start
  // a line or has more after it than spaces, tabs and one carriage return before the newline, or whose base64 lacks its
  // padding (hostile-tenant reviews): such a block is not read here either.
  const pem = Buffer.from(statusCertificate, "base64").toString("latin1");
  if (!pem.startsWith(certificateBegin)) return undefined;
  const bodyStart = certificateBegin.length + (pem[certificateBegin.length] === "\r" ? 1 : 0);
  if (pem[bodyStart] !== "\n") return undefined;
  const end = pem.indexOf(certificateEnd, bodyStart);
  const afterEnd = end + certificateEnd.length;
  if (end < 0 || pem[end - 1] !== "\n") return undefined;
  // Go reads the END line to its newline, drops one "\r" right before that newline, and takes the
  // block only if nothing but spaces and tabs is left after the dashes ("\r\r", "\r " or a "\r"
  // ending the data make it skip the block; checked against Go 1.26's encoding/pem).
  const lineEnd = pem.indexOf("\n", afterEnd);
  let rest = pem.slice(afterEnd, lineEnd < 0 ? pem.length : lineEnd);
  if (lineEnd >= 0 && rest.endsWith("\r")) rest = rest.slice(0, -1);
  if (!endLineRest.test(rest)) return undefined;
  const body = pem.slice(bodyStart, end);
  if (!strictBase64Lines.test(body)) return undefined;
  // Go's StdEncoding refuses a body without its padding (and then skips the block); Buffer does not.
  if ((body.length - countLineBreaks(body)) % 4 !== 0) return undefined;
  try {
    const der = Buffer.from(body, "base64"); // the line breaks skipped
    const tbs = expectSequence(expectSequence(decodeDer(der), "Certificate").children[0], "tbsCertificate");
    const fields = isContextTag(tbs.children[0], 0) ? tbs.children.slice(1) : tbs.children;
    const validity = expectSequence(fields[3], "validity");
    const notAfter = validity.children[1];
    if (validity.children.length !== 2 || notAfter?.tagClass !== TagClass.universal) return undefined;
    return readTimeMs(notAfter.tagNumber, notAfter.value);
  } catch (error) {
    if (error instanceof DerError) return undefined;
    throw error;
  }
}

const certificateBegin = "-----BEGIN CERTIFICATE-----";
const certificateEnd = "-----END CERTIFICATE-----";
/**
 * The standard base64 alphabet and line breaks, padding only at the end. One way to match any input
 * (linear): a pattern that could split a run of line breaks between two repetitions backtracked
 * quadratically, 2.2 s on a 64 KiB status.certificate of line breaks (the hostile-tenant review).
 */
const strictBase64Lines = /^[A-Za-z0-9+/\r\n]*(?:=[\r\n]*){0,2}$/;
/** What Go's PEM decoder lets follow an END line's dashes on that line, once a "\r" before its newline is dropped. */
const endLineRest = /^[ \t]*$/;

function countLineBreaks(text: string): number {
  let count = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x0a || code === 0x0d) count++;
  }
  return count;
}

/**
 * UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 4.1.2.5 writes
 * them. Digits read from the bytes, not through a string and a regular expression (a third of this
 * reader's cost on every issued certificate's watch event; BENCHMARKS.md, eighth pass).
 */
function readTimeMs(tag: number, value: Uint8Array): number | undefined {
  const yearDigits = tag === UniversalTag.utcTime ? 2 : tag === UniversalTag.generalizedTime ? 4 : 0;
  if (yearDigits === 0 || value.length !== yearDigits + 11 || value[yearDigits + 10] !== 0x5a)
    return undefined;
  let at = 0;
  /** The next `count` bytes as a decimal number, NaN unless all are ASCII digits. */
  const digits = (count: number): number => {
    let number = 0;
    for (const end = at + count; at < end; at++) {
      const digit = value[at]! - 0x30;
      if (digit < 0 || digit > 9) return Number.NaN;
      number = number * 10 + digit;
    }
    return number;
  };
  const year = digits(yearDigits);
  const [month, day, hour, minute, second] = [digits(2), digits(2), digits(2), digits(2), digits(2)];
  const fullYear = yearDigits === 2 ? year + (year < 50 ? 2000 : 1900) : year;
  const ms = Date.UTC(fullYear, month - 1, day, hour, minute, second);
  if (Number.isNaN(ms)) return undefined;
  const date = new Date(ms);
  // A field out of range (month 13, hour 99) would roll into another date: not a time.
  const exact =
    date.getUTCFullYear() === fullYear &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return exact ? ms : undefined;
}

import { X509Certificate } from "node:crypto";
import {
  DerError,
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
import { PemError, decodePemBlocks, encodePem } from "./pem.js";

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
 * (base64 of a PEM chain), or undefined when it is not one. Only the validity is read: the CSR
 * cache keeps this in place of the chain of every CSR we issued (about 2.5 KB each), for the
 * clean-up's one question of it.
 */
export function leafNotAfterMs(statusCertificate: string): number | undefined {
  try {
    const first = decodePemBlocks(Buffer.from(statusCertificate, "base64").toString("latin1"), {
      strict: false,
    })[0];
    if (first?.label !== "CERTIFICATE") return undefined;
    const tbs = expectSequence(
      expectSequence(decodeDer(first.der), "Certificate").children[0],
      "tbsCertificate",
    );
    const fields = isContextTag(tbs.children[0], 0) ? tbs.children.slice(1) : tbs.children;
    const validity = expectSequence(fields[3], "validity");
    return readTimeMs(validity.children[1]);
  } catch (error) {
    if (error instanceof DerError || error instanceof PemError) return undefined;
    throw error;
  }
}

/** UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 4.1.2.5 writes them. */
function readTimeMs(node: DerNode | undefined): number | undefined {
  if (node === undefined || node.tagClass !== 0) return undefined;
  const text = Buffer.from(node.value).toString("latin1");
  const match =
    node.tagNumber === UniversalTag.utcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : node.tagNumber === UniversalTag.generalizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (!match) return undefined;
  const [, yearText, month, day, hour, minute, second] = match as unknown as string[];
  let year = Number(yearText);
  if (yearText!.length === 2) year += year < 50 ? 2000 : 1900;
  const ms = Date.UTC(year, Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  return Number.isFinite(ms) ? ms : undefined;
}

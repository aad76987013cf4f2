import { verify as verifySignature } from "node:crypto";
import { CertificateRequestError } from "./certificate-request-error.js";
import {
  DerError,
  UniversalTag,
  decodeDer,
  expectSequence,
  expectUniversal,
  isContextTag,
  isDerNull,
  readBitStringBytes,
  readBoolean,
  readObjectIdentifier,
  readSmallInteger,
  type DerLimits,
  type DerNode,
} from "./der-reader.js";
import { latin1Text } from "./der-strings.js";
import { largestAcceptedRsaBits } from "./key-allow-list.js";
import { attributeValues, readName, type DistinguishedName } from "./names.js";
import { Oid } from "./oids.js";
import type { PemError } from "./pem.js";
import { decodeSinglePem } from "./pem.js";
import { checkKeyEncoding, importPublicKey, publicKeyOf, type PublicKeyDescription } from "./request-key.js";
import { readGeneralNames, type SubjectAlternativeNames } from "./subject-alternative-names.js";

// Where callers have always found it; it lives apart so that request-key.ts can throw it too.
export { CertificateRequestError };

export interface CertificateRequestLimits {
  /** Bytes of PEM accepted before any decoding (cert-manager uses 6500). */
  maxPemBytes: number;
  der: DerLimits;
  /**
   * RSA keys with a longer modulus are refused (KeyNotAllowed) before their signature is verified;
   * absent: any size the PEM cap lets through.
   */
  maxRsaModulusBits?: number;
}

/**
 * The controller's limits. No Signer, approver or `sign` accepts an RSA key above
 * largestAcceptedRsaBits, so the signature of a larger one is never verified: within the PEM cap a
 * tenant could send a 16,384-bit key with the exponent 2^31-1, whose verification costs about 2.2 ms
 * of CPU, against 0.6 ms for the largest accepted key and about 0.15 ms to parse, verify and issue a
 * whole Istio request (BENCHMARKS.md, "What an RSA key no Signer accepts would cost").
 */
export const defaultCertificateRequestLimits: CertificateRequestLimits = {
  maxPemBytes: 6500,
  der: { maxDepth: 12, maxNodes: 512 },
  maxRsaModulusBits: largestAcceptedRsaBits,
};

/** A parsed request whose proof of possession has been verified. */
export interface CertificateRequest {
  readonly subject: DistinguishedName;
  readonly subjectAltNames: SubjectAlternativeNames;
  readonly publicKeyDescription: PublicKeyDescription;
  /** The SubjectPublicKeyInfo exactly as requested, copied into the certificate. */
  readonly subjectPublicKeyInfo: Uint8Array;
  /** The subjectPublicKey bits, for the subject key identifier. */
  readonly subjectPublicKey: Uint8Array;
  /** OIDs of every requested extension; none but SANs is ever copied into a certificate. */
  readonly requestedExtensionOids: readonly string[];
  /** Every requested extension as read (the parser-differential test compares them with Go's). */
  readonly requestedExtensions: readonly RequestedExtension[];
  /** True when the request asked for basicConstraints CA:TRUE (policy refuses it). */
  readonly requestsCertificateAuthority: boolean;
}

const signatureHashes: Record<string, { hash: string; keyAlgorithm: "rsa" | "ec" }> = {
  [Oid.sha256WithRsa]: { hash: "sha256", keyAlgorithm: "rsa" },
  [Oid.sha384WithRsa]: { hash: "sha384", keyAlgorithm: "rsa" },
  [Oid.sha512WithRsa]: { hash: "sha512", keyAlgorithm: "rsa" },
  [Oid.ecdsaWithSha256]: { hash: "sha256", keyAlgorithm: "ec" },
  [Oid.ecdsaWithSha384]: { hash: "sha384", keyAlgorithm: "ec" },
  [Oid.ecdsaWithSha512]: { hash: "sha512", keyAlgorithm: "ec" },
};

/**
 * Parses a PEM certificate request with hard limits before decoding, strictly (one block,
 * nothing around it, DER only, no duplicate extensions or extensionRequest attributes, at most
 * one CN), and verifies its self-signature with node:crypto (OpenSSL), not a JS verifier.
 */
export function parseCertificateRequest(
  pem: string | Uint8Array,
  limits: CertificateRequestLimits = defaultCertificateRequestLimits,
): CertificateRequest {
  const size = typeof pem === "string" ? Buffer.byteLength(pem) : pem.byteLength;
  if (size > limits.maxPemBytes) {
    throw new CertificateRequestError(
      "RequestTooLarge",
      `request is ${size} bytes; the limit is ${limits.maxPemBytes}`,
    );
  }
  const text = typeof pem === "string" ? pem : latin1Text(pem); // no copy of the bytes first
  let der: Uint8Array;
  try {
    der = decodeSinglePem(text, "CERTIFICATE REQUEST");
  } catch (error) {
    throw new CertificateRequestError("MalformedRequest", `request PEM: ${(error as PemError).message}`);
  }
  try {
    return parseDer(der, limits.der, limits.maxRsaModulusBits);
  } catch (error) {
    if (error instanceof DerError)
      throw new CertificateRequestError("MalformedRequest", `request DER: ${error.message}`);
    throw error;
  }
}

function parseDer(
  der: Uint8Array,
  limits: DerLimits,
  maxRsaModulusBits: number | undefined,
): CertificateRequest {
  const root = expectSequence(decodeDer(der, limits), "CertificationRequest");
  if (root.children.length !== 3) throw new DerError("CertificationRequest must have 3 fields");
  const [info, signatureAlgorithm, signatureBits] = root.children as [DerNode, DerNode, DerNode];
  expectSequence(info, "certificationRequestInfo");
  // attributes ([0]) is mandatory in RFC 2986, even when empty; Go's parser (kube-apiserver's) refuses a request without it.
  if (info.children.length !== 4)
    throw new DerError("certificationRequestInfo must have 4 fields (version, subject, key, attributes)");
  const [versionNode, subjectNode, spkiNode, attributesNode] = info.children as [
    DerNode,
    DerNode,
    DerNode,
    DerNode,
  ];
  if (readSmallInteger(versionNode, "version") !== 0) throw new DerError("only version 1 (0) requests exist");
  const subject = readName(subjectNode, "subject");
  if (attributeValues(subject, "CN").length > 1) {
    throw new CertificateRequestError("MultipleCommonNames", "subject has more than one CN");
  }

  const spki = expectSequence(spkiNode, "subjectPublicKeyInfo");
  const subjectPublicKey = readBitStringBytes(spki.children[1], "subjectPublicKey");
  const keyFacts = checkKeyEncoding(spki, subjectPublicKey, limits, maxRsaModulusBits);
  const key = publicKeyOf(spki.encoded, keyFacts);

  // Between our parse of the key and verify (where OpenSSL reads a key publicKeyOf left as PEM
  // text), every refusal first asks whether OpenSSL can read the key: one it cannot is refused as
  // KeyNotAllowed, whatever else is wrong with the request, as when it was imported right after our parse.
  const refuseUnreadableKey = (): void => {
    if (typeof key.verifyWith === "string") importPublicKey(key.verifyWith, keyFacts);
  };
  let hash: string;
  let signature: Uint8Array;
  try {
    let keyAlgorithm: string;
    ({ hash, keyAlgorithm } = readSignatureAlgorithm(signatureAlgorithm));
    if (key.type !== keyAlgorithm) {
      throw new CertificateRequestError(
        "UnsupportedSignatureAlgorithm",
        `signature algorithm does not match the ${key.description.algorithm} key`,
      );
    }
    signature = readBitStringBytes(signatureBits, "signature");
  } catch (error) {
    refuseUnreadableKey();
    throw error;
  }
  let verified: boolean;
  try {
    verified = verifySignature(hash, info.encoded, key.verifyWith, signature);
  } catch (error) {
    // Only a key OpenSSL cannot read makes verify throw here.
    refuseUnreadableKey();
    throw error;
  }
  if (!verified) {
    throw new CertificateRequestError(
      "InvalidSignature",
      "proof of possession failed: the request signature does not verify",
    );
  }

  const extensions = readExtensionRequest(attributesNode);
  const seen = new Set<string>();
  let subjectAltNames: SubjectAlternativeNames = { dns: [], ip: [], uri: [], email: [] };
  let requestsCertificateAuthority = false;
  for (const extension of extensions) {
    if (seen.has(extension.oid)) {
      throw new CertificateRequestError(
        "DuplicateExtension",
        `extension ${extension.oid} is requested twice`,
      );
    }
    seen.add(extension.oid);
    if (extension.oid === Oid.subjectAltName) {
      subjectAltNames = readGeneralNames(decodeDer(extension.value, limits), (message) => {
        throw new CertificateRequestError("UnsupportedSubjectAltName", message);
      });
    } else if (extension.oid === Oid.basicConstraints) {
      const constraints = expectSequence(decodeDer(extension.value, limits), "basicConstraints");
      requestsCertificateAuthority =
        constraints.children[0]?.tagNumber === UniversalTag.boolean &&
        readBoolean(constraints.children[0], "cA");
    }
  }
  return {
    subject,
    subjectAltNames,
    publicKeyDescription: key.description,
    subjectPublicKeyInfo: spki.encoded,
    subjectPublicKey,
    requestedExtensionOids: [...seen],
    requestedExtensions: extensions,
    requestsCertificateAuthority,
  };
}

function readSignatureAlgorithm(node: DerNode): { hash: string; keyAlgorithm: "rsa" | "ec" } {
  const algorithm = expectSequence(node, "signatureAlgorithm");
  const oid = readObjectIdentifier(algorithm.children[0], "signatureAlgorithm");
  const known = signatureHashes[oid];
  if (!known)
    throw new CertificateRequestError(
      "UnsupportedSignatureAlgorithm",
      `signature algorithm ${oid} is not accepted`,
    );
  const parameters = algorithm.children[1];
  const parametersOk =
    known.keyAlgorithm === "rsa"
      ? algorithm.children.length === 1 ||
        (algorithm.children.length === 2 && parameters !== undefined && isDerNull(parameters))
      : algorithm.children.length === 1;
  if (!parametersOk) throw new DerError("signatureAlgorithm parameters are malformed");
  return known;
}

export interface RequestedExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** extnValue's contents (the DER of the extension). */
  readonly value: Uint8Array;
}

function readExtensionRequest(attributesNode: DerNode): RequestedExtension[] {
  if (!isContextTag(attributesNode, 0) || !attributesNode.constructed)
    throw new DerError("attributes must be [0] IMPLICIT SET");
  let extensions: RequestedExtension[] | undefined;
  for (const attribute of attributesNode.children) {
    expectSequence(attribute, "attribute");
    const oid = readObjectIdentifier(attribute.children[0], "attribute type");
    if (oid !== Oid.extensionRequest) continue; // challengePassword and friends carry nothing we use
    if (extensions) {
      throw new CertificateRequestError(
        "DuplicateExtensionRequest",
        "the extensionRequest attribute appears twice",
      );
    }
    const values = expectUniversal(attribute.children[1], UniversalTag.set, "extensionRequest values");
    if (values.children.length !== 1) {
      throw new CertificateRequestError(
        "DuplicateExtensionRequest",
        "extensionRequest must hold exactly one value",
      );
    }
    extensions = expectSequence(values.children[0], "extensions").children.map((extension) => {
      expectSequence(extension, "extension");
      const oid = readObjectIdentifier(extension.children[0], "extension id");
      const hasCritical = extension.children.length === 3;
      if (extension.children.length !== 2 && !hasCritical)
        throw new DerError(`extension ${oid} has wrong shape`);
      const critical = hasCritical ? readBoolean(extension.children[1], `extension ${oid} critical`) : false;
      const value = expectUniversal(
        extension.children[hasCritical ? 2 : 1],
        UniversalTag.octetString,
        `extension ${oid}`,
      ).value;
      return { oid, critical, value };
    });
  }
  return extensions ?? [];
}

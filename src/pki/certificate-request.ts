import { createPublicKey, verify as verifySignature, type KeyObject } from "node:crypto";
import {
  DerError,
  UniversalTag,
  checkMinimalInteger,
  decodeDer,
  expectSequence,
  expectUniversal,
  isContextTag,
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
import { decodeSinglePem, encodePem } from "./pem.js";
import { readGeneralNames, type SubjectAlternativeNames } from "./subject-alternative-names.js";
import type { CertificateRequestRejectionReason } from "../api/reasons.js";

/**
 * A certificate request refused for what it is (not for who asked). `reason` is a CamelCase
 * word for conditions and metrics; `message` names the rule and never echoes key material.
 */
export class CertificateRequestError extends Error {
  constructor(
    readonly reason: CertificateRequestRejectionReason,
    message: string,
  ) {
    super(message);
    this.name = "CertificateRequestError";
  }
}

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
 * tenant could send a 16,384-bit key with the exponent 2^31-1, whose verification costs about 4.5 ms
 * of CPU, against about 0.3 ms for an Istio request.
 */
export const defaultCertificateRequestLimits: CertificateRequestLimits = {
  maxPemBytes: 6500,
  der: { maxDepth: 12, maxNodes: 512 },
  maxRsaModulusBits: largestAcceptedRsaBits,
};

export type PublicKeyDescription =
  | { readonly algorithm: "RSA"; readonly bits: number; readonly publicExponent: bigint }
  | { readonly algorithm: "ECDSA"; readonly curve: string };

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

/** OpenSSL's names (asymmetricKeyDetails.namedCurve) for the curves with a short name. */
const curveNames: Record<string, string> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};

/** The same curves by OID, so an accepted key's curve is read from our parse, not asked of OpenSSL. */
const curveNamesByOid: Record<string, string> = {
  [Oid.prime256v1]: "P-256",
  [Oid.secp384r1]: "P-384",
  [Oid.secp521r1]: "P-521",
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

/** What our own parse of an RSA or EC key says: the size and curve that policy checks. */
type KeyFacts =
  | { readonly algorithm: "rsa"; readonly modulus: Uint8Array; readonly publicExponent: Uint8Array }
  | { readonly algorithm: "ec"; readonly curveOid: string }
  | undefined;

/**
 * Only the key encodings Go's crypto/x509 reads (kube-apiserver refuses the others, and Go clients
 * could not read a certificate carrying them), checked before OpenSSL, which reads more:
 * rsaEncryption with exactly NULL parameters (RFC 3279) and a DER RSAPublicKey (OpenSSL takes BER
 * forms such as a high-tag-number SEQUENCE), ecPublicKey with a named curve and an uncompressed
 * point (RFC 5480). Returns what was read, undefined for other algorithms (OpenSSL names them).
 */
function checkKeyEncoding(
  spki: DerNode,
  subjectPublicKey: Uint8Array,
  limits: DerLimits,
  maxRsaModulusBits: number | undefined,
): KeyFacts {
  if (spki.children.length !== 2) throw new DerError("subjectPublicKeyInfo must have 2 fields");
  const algorithm = expectSequence(spki.children[0], "subjectPublicKeyInfo algorithm");
  if (algorithm.children.length > 2) throw new DerError("subjectPublicKeyInfo algorithm has wrong shape");
  const oid = readObjectIdentifier(algorithm.children[0], "public key algorithm");
  const parameters = algorithm.children[1];
  if (oid === Oid.rsaEncryption) {
    if (!(parameters && isDerNull(parameters)))
      throw new CertificateRequestError("KeyNotAllowed", "RSA public key parameters must be NULL (RFC 3279)");
    const rsaPublicKey = expectSequence(decodeDer(subjectPublicKey, limits), "RSAPublicKey");
    if (rsaPublicKey.children.length !== 2) throw new DerError("RSAPublicKey must have 2 fields");
    const [modulus, publicExponent] = ["RSA modulus", "RSA public exponent"].map((what, index) => {
      const value = expectUniversal(rsaPublicKey.children[index], UniversalTag.integer, what).value;
      checkMinimalInteger(value, what);
      if ((value[0]! & 0x80) !== 0) throw new DerError(`${what} is negative`);
      // Go's crypto/rsa refuses to verify with a larger exponent, so kube-apiserver refuses the request.
      if (index === 1 && value.length > 4)
        throw new CertificateRequestError("KeyNotAllowed", "RSA public exponent above 2^31-1");
      return value;
    }) as [Uint8Array, Uint8Array];
    const bits = bitLength(modulus);
    if (maxRsaModulusBits !== undefined && bits > maxRsaModulusBits)
      throw new CertificateRequestError(
        "KeyNotAllowed",
        `RSA key of ${bits} bits is above ${maxRsaModulusBits}, the most any signer accepts`,
      );
    return { algorithm: "rsa", modulus, publicExponent };
  }
  if (oid === Oid.ecPublicKey) {
    const curveOid = readObjectIdentifier(parameters, "ECDSA public key named curve");
    if (subjectPublicKey[0] !== 0x04)
      throw new CertificateRequestError(
        "KeyNotAllowed",
        "ECDSA public key must be an uncompressed point (RFC 5480)",
      );
    return { algorithm: "ec", curveOid };
  }
  return undefined;
}

const isDerNull = (node: DerNode): boolean =>
  node.encoded.length === 2 && node.encoded[0] === UniversalTag.null && node.encoded[1] === 0;

/** Bits in a minimal non-negative INTEGER's magnitude (OpenSSL's modulusLength). */
function bitLength(magnitude: Uint8Array): number {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  if (start === magnitude.length) return 0;
  return (magnitude.length - start - 1) * 8 + (32 - Math.clz32(magnitude[start]!));
}

function unsignedBigInt(magnitude: Uint8Array): bigint {
  return magnitude.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
}

/**
 * The requester's key as the verifier takes it, with its type and description. An RSA key or an EC
 * key on a curve we name, both read by our own parse (checkKeyEncoding), goes to node:crypto's
 * verify as PEM text: OpenSSL decodes it there, and a key it cannot read makes verify throw (the
 * caller then refuses it as importPublicKey does). No KeyObject is made for it: that spared about 6%
 * of import plus verification in a microbenchmark and 1-6% of parseCertificateRequest in a loop,
 * though no gain shows above `make bench-sign`'s spread (BENCHMARKS.md, twelfth pass). Any other
 * key is imported first, so that OpenSSL names its type and curve.
 */
function publicKeyOf(
  spkiDer: Uint8Array,
  facts: KeyFacts,
): {
  type: string | undefined;
  description: PublicKeyDescription;
  /** The PEM text, for a key OpenSSL has not read yet; otherwise the KeyObject it made. */
  verifyWith: string | KeyObject;
} {
  // PEM text, not { key, format: "der" }: node:crypto takes a string straight to OpenSSL, but tells
  // an options object from a KeyObject or CryptoKey by catching two thrown errors, which cost more
  // than OpenSSL's decoding of the key (`make bench-sign`).
  const pem = encodePem("PUBLIC KEY", spkiDer);
  if (facts?.algorithm === "rsa") {
    const description: PublicKeyDescription = {
      algorithm: "RSA",
      bits: bitLength(facts.modulus),
      publicExponent: unsignedBigInt(facts.publicExponent),
    };
    return { type: "rsa", description, verifyWith: pem };
  }
  const curve = facts?.algorithm === "ec" ? curveNamesByOid[facts.curveOid] : undefined;
  if (curve !== undefined) return { type: "ec", description: { algorithm: "ECDSA", curve }, verifyWith: pem };
  const { publicKey, description } = importPublicKey(pem, facts);
  return { type: publicKey.asymmetricKeyType, description, verifyWith: publicKey };
}

/**
 * OpenSSL decodes the key (it must accept it too); the size and curve come from our parse when
 * it read them, which spares a round trip through asymmetricKeyDetails per request.
 */
function importPublicKey(
  pem: string,
  facts: KeyFacts,
): { publicKey: KeyObject; description: PublicKeyDescription } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(pem);
  } catch {
    throw new CertificateRequestError(
      "KeyNotAllowed",
      "public key could not be read (unsupported algorithm or malformed)",
    );
  }
  const keyType = publicKey.asymmetricKeyType;
  if (keyType === "rsa") {
    if (facts?.algorithm === "rsa") {
      return {
        publicKey,
        description: {
          algorithm: "RSA",
          bits: bitLength(facts.modulus),
          publicExponent: unsignedBigInt(facts.publicExponent),
        },
      };
    }
    // We read only rsaEncryption keys; should OpenSSL call a key under another OID RSA, ask it.
    const details = publicKey.asymmetricKeyDetails ?? {};
    return {
      publicKey,
      description: {
        algorithm: "RSA",
        bits: details.modulusLength ?? 0,
        publicExponent: details.publicExponent ?? 0n,
      },
    };
  }
  if (keyType === "ec") {
    // Curves without a short name (secp256k1, brainpool) keep OpenSSL's name, for the refusal message.
    const curve =
      (facts?.algorithm === "ec" ? curveNamesByOid[facts.curveOid] : undefined) ??
      openSslCurveName(publicKey.asymmetricKeyDetails?.namedCurve);
    return { publicKey, description: { algorithm: "ECDSA", curve } };
  }
  throw new CertificateRequestError("KeyNotAllowed", `public key type ${keyType} is not accepted`);
}

function openSslCurveName(namedCurve: string | undefined): string {
  return curveNames[namedCurve ?? ""] ?? namedCurve ?? "unknown";
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

export function describePublicKey(key: PublicKeyDescription): string {
  return key.algorithm === "RSA" ? `RSA-${key.bits}` : `ECDSA-${key.curve}`;
}

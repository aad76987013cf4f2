/**
 * The requester's public key in a certificate request: our own parse of its encoding (the size and
 * curve policy checks, the encodings Go reads), and the form in which OpenSSL gets it to verify the
 * request's signature.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { CertificateRequestError } from "./certificate-request-error.js";
import {
  DerError,
  UniversalTag,
  checkMinimalInteger,
  decodeDer,
  expectSequence,
  expectUniversal,
  isDerNull,
  readObjectIdentifier,
  type DerLimits,
  type DerNode,
} from "./der-reader.js";
import { Oid } from "./oids.js";
import { encodePem } from "./pem.js";

export type PublicKeyDescription =
  | { readonly algorithm: "RSA"; readonly bits: number; readonly publicExponent: bigint }
  | { readonly algorithm: "ECDSA"; readonly curve: string };

/** How messages and metrics name a key: "RSA-2048", "ECDSA-P-256". */
export function describePublicKey(key: PublicKeyDescription): string {
  return key.algorithm === "RSA" ? `RSA-${key.bits}` : `ECDSA-${key.curve}`;
}

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

/** What our own parse of an RSA or EC key says: the size and exponent, or the curve, that policy checks. */
export type KeyFacts =
  | { readonly algorithm: "rsa"; readonly description: PublicKeyDescription & { algorithm: "RSA" } }
  | { readonly algorithm: "ec"; readonly curveOid: string }
  | undefined;

/**
 * Only the key encodings Go's crypto/x509 reads (kube-apiserver refuses the others, and Go clients
 * could not read a certificate carrying them), checked before OpenSSL, which reads more:
 * rsaEncryption with exactly NULL parameters (RFC 3279) and a DER RSAPublicKey (OpenSSL takes BER
 * forms such as a high-tag-number SEQUENCE), ecPublicKey with a named curve and an uncompressed
 * point (RFC 5480). Returns what was read, undefined for other algorithms (OpenSSL names them).
 */
export function checkKeyEncoding(
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
    return {
      algorithm: "rsa",
      description: { algorithm: "RSA", bits, publicExponent: unsignedBigInt(publicExponent) },
    };
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
export function publicKeyOf(
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
  if (facts?.algorithm === "rsa") return { type: "rsa", description: facts.description, verifyWith: pem };
  const curve = facts?.algorithm === "ec" ? curveNamesByOid[facts.curveOid] : undefined;
  if (curve !== undefined) return { type: "ec", description: { algorithm: "ECDSA", curve }, verifyWith: pem };
  const { publicKey, description } = importPublicKey(pem, facts);
  return { type: publicKey.asymmetricKeyType, description, verifyWith: publicKey };
}

/**
 * OpenSSL decodes the key (it must accept it too); the size, exponent and curve come from our parse
 * when it read them, which spares a round trip through asymmetricKeyDetails per request.
 */
export function importPublicKey(
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
    // OpenSSL also reads an RSA key under the X.500 OID 2.5.8.1.1, which Go's crypto/x509 does not
    // (kube-apiserver refuses such a request, and Go clients could not read its certificate), and
    // which would skip our checks of the modulus size and the exponent.
    if (facts?.algorithm !== "rsa")
      throw new CertificateRequestError(
        "KeyNotAllowed",
        "an RSA public key is accepted only as rsaEncryption (RFC 3279), the form Go reads",
      );
    return { publicKey, description: facts.description };
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

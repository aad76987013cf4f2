/**
 * The public key of a PodCertificateRequest and whether its holder proved possession, read from
 * either form the API takes: spec.stubPKCS10Request (a self-signed, normally empty PKCS#10 request,
 * kubelet 1.36+) or the deprecated spec.pkixPublicKey with spec.proofOfPossession (a signature over
 * the ASCII pod UID: RSASSA-PSS/SHA-256, ECDSA/SHA-256 ASN.1, or Ed25519). kube-apiserver verified
 * both at create; we verify again (defence in depth) with node:crypto (OpenSSL), never a JS verifier.
 * Nothing of a stub request but its key is ever used.
 */
import { constants, createPublicKey, verify, type KeyObject } from "node:crypto";
import {
  CertificateRequestError,
  defaultCertificateRequestLimits,
  parseCertificateRequest,
} from "./certificate-request.js";
import type { PublicKeyDescription } from "./request-key.js";
import { DerError, decodeDer, expectSequence, readBitStringBytes } from "./der-reader.js";
import { largestAcceptedRsaBits } from "./key-allow-list.js";
import { encodePem } from "./pem.js";

/** The API's key types, spelled as a pod's podCertificate volume names them (keyType). */
export const podKeyTypes = ["RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519"] as const;
export type PodKeyType = (typeof podKeyTypes)[number];

/** The API caps each of pkixPublicKey, proofOfPossession and stubPKCS10Request at 10 KiB. */
const maximumPodCertificateKeyFieldBytes = 10 * 1024;

export interface PodCertificateKeyFields {
  readonly podUID: string;
  /** Base64, as JSON carries []byte. */
  readonly pkixPublicKey?: string | null;
  readonly proofOfPossession?: string | null;
  readonly stubPKCS10Request?: string | null;
}

export interface PodCertificateKey {
  /** Undefined for a key outside the API's set (the API server refuses those at create). */
  readonly keyType: PodKeyType | undefined;
  /** e.g. RSA-2048, ECDSA-P-256, Ed25519: for messages. */
  readonly description: string;
  /** RSA and ECDSA keys, for the Signer's key allow-list. */
  readonly publicKeyDescription: PublicKeyDescription | undefined;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly subjectPublicKey: Uint8Array;
  /** The stub request's self-signature, or the proof over the pod UID, verified. */
  readonly proofVerified: boolean;
}

/** A request whose key cannot be read at all; `message` never echoes key material. */
export class PodCertificateKeyError extends Error {
  readonly reason = "MalformedRequest";
  constructor(message: string) {
    super(message);
    this.name = "PodCertificateKeyError";
  }
}

const spkiLimits = { maxDepth: 8, maxNodes: 64 };
const stubLimits = { ...defaultCertificateRequestLimits, maxPemBytes: 16 * 1024 };

export function readPodCertificateKey(fields: PodCertificateKeyFields): PodCertificateKey {
  const stub = decodeField(fields.stubPKCS10Request, "stubPKCS10Request");
  const pkix = decodeField(fields.pkixPublicKey, "pkixPublicKey");
  const proof = decodeField(fields.proofOfPossession, "proofOfPossession");
  if (stub.length > 0 && pkix.length === 0 && proof.length === 0) return readStubRequest(stub);
  if (stub.length === 0 && pkix.length > 0 && proof.length > 0)
    return readProvenKey(pkix, proof, fields.podUID);
  throw new PodCertificateKeyError(
    "exactly one of stubPKCS10Request or (pkixPublicKey, proofOfPossession) must be set",
  );
}

function decodeField(value: unknown, field: string): Buffer {
  // The API serves an unset key field as null (its JSON tag has no omitempty).
  if (value === undefined || value === null || value === "") return Buffer.alloc(0);
  if (typeof value !== "string") throw new PodCertificateKeyError(`${field} is not base64 bytes`);
  // Base64 of 10 KiB is under 14 KiB; a longer value is not what the API server let through.
  if (value.length > Math.ceil(maximumPodCertificateKeyFieldBytes / 3) * 4)
    throw new PodCertificateKeyError(`${field} is over ${maximumPodCertificateKeyFieldBytes} bytes`);
  return Buffer.from(value, "base64");
}

/** SubjectPublicKeyInfo → the key, its type and its subjectPublicKey bits. */
function readSubjectPublicKeyInfo(spki: Uint8Array): {
  publicKey: KeyObject;
  subjectPublicKey: Uint8Array;
} {
  let subjectPublicKey: Uint8Array;
  try {
    const node = expectSequence(decodeDer(spki, spkiLimits), "subjectPublicKeyInfo");
    if (node.children.length !== 2) throw new DerError("subjectPublicKeyInfo must have 2 fields");
    subjectPublicKey = readBitStringBytes(node.children[1], "subjectPublicKey");
  } catch (error) {
    if (error instanceof DerError) throw new PodCertificateKeyError(`public key DER: ${error.message}`);
    throw error;
  }
  try {
    return { publicKey: createPublicKey(encodePem("PUBLIC KEY", spki)), subjectPublicKey };
  } catch {
    // OpenSSL's message can quote the input; say only what went wrong.
    throw new PodCertificateKeyError("public key could not be read (unsupported algorithm or malformed)");
  }
}

function classify(
  publicKey: KeyObject,
): Pick<PodCertificateKey, "keyType" | "description" | "publicKeyDescription"> {
  const details = publicKey.asymmetricKeyDetails ?? {};
  switch (publicKey.asymmetricKeyType) {
    case "rsa": {
      const bits = details.modulusLength ?? 0;
      return {
        keyType: bits === 3072 ? "RSA3072" : bits === 4096 ? "RSA4096" : undefined,
        description: `RSA-${bits}`,
        publicKeyDescription: { algorithm: "RSA", bits, publicExponent: details.publicExponent ?? 0n },
      };
    }
    case "ec": {
      const curve =
        { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" }[details.namedCurve ?? ""] ??
        details.namedCurve ??
        "unknown";
      const keyType = ({ "P-256": "ECDSAP256", "P-384": "ECDSAP384", "P-521": "ECDSAP521" } as const)[
        curve as "P-256"
      ] as PodKeyType | undefined;
      return { keyType, description: `ECDSA-${curve}`, publicKeyDescription: { algorithm: "ECDSA", curve } };
    }
    case "ed25519":
      return { keyType: "ED25519", description: "Ed25519", publicKeyDescription: undefined };
    default:
      return {
        keyType: undefined,
        description: publicKey.asymmetricKeyType ?? "unknown",
        publicKeyDescription: undefined,
      };
  }
}

/**
 * An RSA key no Signer accepts and Go will not verify with, which OpenSSL would still verify with at
 * a cost of milliseconds (a 16,384-bit modulus, or an exponent near the modulus' size): above
 * largestAcceptedRsaBits, or with an exponent above 2^31-1. kube-apiserver refuses both in either
 * key form; should one arrive anyway, it is left unverified, so its proof fails (and no API key type
 * names an RSA key above 4096 bits: policy denies those UnsupportedKeyType before proof matters).
 */
function tooCostlyToVerify(description: PublicKeyDescription): boolean {
  return (
    description.algorithm === "RSA" &&
    (description.bits > largestAcceptedRsaBits || description.publicExponent > 0x7fffffffn)
  );
}

/** The deprecated form: the key, and a signature over the ASCII bytes of the pod UID. */
function readProvenKey(spki: Uint8Array, proof: Uint8Array, podUID: string): PodCertificateKey {
  const { publicKey, subjectPublicKey } = readSubjectPublicKeyInfo(spki);
  const kind = classify(publicKey);
  if (kind.publicKeyDescription && tooCostlyToVerify(kind.publicKeyDescription))
    return { ...kind, subjectPublicKeyInfo: spki, subjectPublicKey, proofVerified: false };
  const data = Buffer.from(podUID, "ascii");
  let proofVerified = false;
  try {
    if (kind.keyType === "ED25519") proofVerified = verify(null, data, publicKey, proof);
    else if (publicKey.asymmetricKeyType === "ec")
      proofVerified = verify("sha256", data, { key: publicKey, dsaEncoding: "der" }, proof);
    else if (publicKey.asymmetricKeyType === "rsa")
      // Go's rsa.SignPSS with nil options: the salt length is whatever the signer chose.
      proofVerified = verify(
        "sha256",
        data,
        {
          key: publicKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_AUTO,
        },
        proof,
      );
  } catch {
    // OpenSSL throws on a malformed signature encoding: that is a proof that does not verify.
    proofVerified = false;
  }
  return { ...kind, subjectPublicKeyInfo: spki, subjectPublicKey, proofVerified };
}

/**
 * The stub PKCS#10 form: RSA and ECDSA requests go through the strict CSR parser (its self-signature
 * verified by OpenSSL); other keys are only classified, since no Signer accepts them (see
 * podKeyTypesAllowed) and they are denied UnsupportedKeyType before proof matters.
 */
function readStubRequest(der: Uint8Array): PodCertificateKey {
  let spki: Uint8Array;
  try {
    const request = expectSequence(decodeDer(der, stubLimits.der), "CertificationRequest");
    const info = expectSequence(request.children[0], "certificationRequestInfo");
    spki = expectSequence(info.children[2], "subjectPublicKeyInfo").encoded;
  } catch (error) {
    if (error instanceof DerError)
      throw new PodCertificateKeyError(`stubPKCS10Request DER: ${error.message}`);
    throw error;
  }
  const { publicKey, subjectPublicKey } = readSubjectPublicKeyInfo(spki);
  const kind = classify(publicKey);
  if (kind.publicKeyDescription === undefined)
    return { ...kind, subjectPublicKeyInfo: spki, subjectPublicKey, proofVerified: false };
  // Nor one too costly to verify (the parser would refuse it, which here would make the stub malformed).
  if (tooCostlyToVerify(kind.publicKeyDescription))
    return { ...kind, subjectPublicKeyInfo: spki, subjectPublicKey, proofVerified: false };
  try {
    parseCertificateRequest(encodePem("CERTIFICATE REQUEST", der), stubLimits);
  } catch (error) {
    if (!(error instanceof CertificateRequestError)) throw error;
    if (error.reason === "InvalidSignature")
      return { ...kind, subjectPublicKeyInfo: spki, subjectPublicKey, proofVerified: false };
    throw new PodCertificateKeyError(`stubPKCS10Request: ${error.message}`);
  }
  return { ...kind, subjectPublicKeyInfo: spki, subjectPublicKey, proofVerified: true };
}

import { createPrivateKey, createPublicKey, sign as signData, type KeyObject } from "node:crypto";
import { derNull, objectIdentifier, sequence } from "./der-writer.js";
import {
  decryptPrivateKeySync,
  EncryptedKeyError,
  isEncryptedPrivateKeyPem,
  readEncryptedPrivateKeyPem,
} from "./encrypted-private-key.js";
import { Oid } from "./oids.js";

/**
 * A CA's private key, seen only through what it can do. Implementations: a software key in
 * memory (below) and a PKCS#11 key in an HSM (src/pki/pkcs11). Nothing outside src/pki holds key bytes.
 */
export interface SigningKey {
  /** The public half, for matching the CA certificate and building SubjectPublicKeyInfo. */
  readonly publicKey: KeyObject;
  /** The DER AlgorithmIdentifier of the signatures this key makes (goes into certificates). */
  readonly signatureAlgorithm: Uint8Array;
  /** A short description for logs and status (never key material), e.g. "ECDSA-P-256/SHA-256". */
  readonly description: string;
  /** Signs `data` (a DER TBSCertificate); returns the signature as it goes into the BIT STRING. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export class SigningKeyError extends Error {
  constructor(
    message: string,
    /** "unsupportedKeySize": an RSA key outside allowedRsaCertificateAuthorityBits; else the key is unusable. */
    readonly kind: "malformed" | "unsupportedKeySize" = "malformed",
  ) {
    super(message);
    this.name = "SigningKeyError";
  }
}

/**
 * The RSA sizes a CA key may have: what Istio's and cert-manager's CAs generate and what the offline
 * toolkit writes. Signing is synchronous and grows with the cube of the size (a 16384-bit key took
 * 6 s per signature), and a tenant may supply the key, so larger keys are refused; smaller ones are
 * weak.
 */
export const allowedRsaCertificateAuthorityBits: readonly number[] = [2048, 3072, 4096];

/** "RSA-<bits>; RSA CA keys must be 2048, 3072 or 4096 bits" for a size outside them, else undefined. */
export function rsaCertificateAuthoritySizeProblem(bits: number): string | undefined {
  if (allowedRsaCertificateAuthorityBits.includes(bits)) return undefined;
  const sizes = allowedRsaCertificateAuthorityBits;
  return `RSA-${bits}; RSA CA keys must be ${sizes.slice(0, -1).join(", ")} or ${sizes.at(-1)} bits`;
}

interface SignatureProfile {
  hash: "sha256" | "sha384" | "sha512";
  algorithmIdentifier: Uint8Array;
  description: string;
}

/**
 * Refuses RSA keys of other sizes than allowedRsaCertificateAuthorityBits (SigningKeyError
 * "unsupportedKeySize").
 * SHA-256 everywhere except P-384 (SHA-384) and P-521 (SHA-512) keys, to match their strength. */
export function signatureProfileFor(publicKey: KeyObject): SignatureProfile {
  if (publicKey.asymmetricKeyType === "rsa") {
    const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
    const sizeProblem = rsaCertificateAuthoritySizeProblem(bits);
    if (sizeProblem) throw new SigningKeyError(`the CA key is ${sizeProblem}`, "unsupportedKeySize");
    return {
      hash: "sha256",
      algorithmIdentifier: sequence(objectIdentifier(Oid.sha256WithRsa), derNull()),
      description: `RSA-${bits}/SHA-256`,
    };
  }
  if (publicKey.asymmetricKeyType === "ec") {
    switch (publicKey.asymmetricKeyDetails?.namedCurve) {
      case "prime256v1":
        return {
          hash: "sha256",
          algorithmIdentifier: sequence(objectIdentifier(Oid.ecdsaWithSha256)),
          description: "ECDSA-P-256/SHA-256",
        };
      case "secp384r1":
        return {
          hash: "sha384",
          algorithmIdentifier: sequence(objectIdentifier(Oid.ecdsaWithSha384)),
          description: "ECDSA-P-384/SHA-384",
        };
      case "secp521r1":
        return {
          hash: "sha512",
          algorithmIdentifier: sequence(objectIdentifier(Oid.ecdsaWithSha512)),
          description: "ECDSA-P-521/SHA-512",
        };
    }
  }
  throw new SigningKeyError(
    `CA key type ${publicKey.asymmetricKeyType}/${publicKey.asymmetricKeyDetails?.namedCurve ?? ""} is not supported (RSA, ECDSA P-256/384/521)`,
  );
}

/** A private key held in process memory (from a Secret or mounted files). */
export class SoftwareSigningKey implements SigningKey {
  readonly #privateKey: KeyObject;
  readonly #hash: string;
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: Uint8Array;
  readonly description: string;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    const profile = signatureProfileFor(this.publicKey);
    this.#hash = profile.hash;
    this.signatureAlgorithm = profile.algorithmIdentifier;
    this.description = profile.description;
  }

  /**
   * Reads a PEM private key: PKCS#8 (PRIVATE KEY), SEC1 (EC PRIVATE KEY) or PKCS#1 (RSA PRIVATE
   * KEY); an encrypted PKCS#8 key (ENCRYPTED PRIVATE KEY) with its `passphrase`, only in the scheme
   * encrypted-private-key.ts accepts, decrypted on this thread (the offline CLI; the controller
   * decrypts with decryptPrivateKey off the event loop and uses fromKeyObject). Legacy PEM
   * encryption (Proc-Type: 4,ENCRYPTED) is refused. Errors never include the input or the passphrase.
   */
  static fromPem(pem: string | Uint8Array, passphrase?: string): SoftwareSigningKey {
    const text = typeof pem === "string" ? pem : Buffer.from(pem).toString("utf8");
    if (/Proc-Type: 4,ENCRYPTED/.test(text))
      throw new SigningKeyError(
        "the CA private key uses legacy PEM encryption (Proc-Type: 4,ENCRYPTED); convert it with openssl pkcs8 -topk8 -v2 aes256",
      );
    if (isEncryptedPrivateKeyPem(text)) {
      if (passphrase === undefined)
        throw new SigningKeyError(
          "the CA private key is encrypted and no passphrase was given (provide the passphrase, or the key unencrypted)",
        );
      try {
        return new SoftwareSigningKey(decryptPrivateKeySync(readEncryptedPrivateKeyPem(text), passphrase));
      } catch (error) {
        if (error instanceof EncryptedKeyError) throw new SigningKeyError(error.message);
        throw error;
      }
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: text, format: "pem" });
    } catch {
      // The OpenSSL message can quote parts of the input; say only what went wrong.
      throw new SigningKeyError("the CA private key is not a PEM PKCS#8, SEC1 or PKCS#1 key");
    }
    return new SoftwareSigningKey(privateKey);
  }

  static fromKeyObject(privateKey: KeyObject): SoftwareSigningKey {
    if (privateKey.type !== "private") throw new SigningKeyError("a signing key needs a private key");
    return new SoftwareSigningKey(privateKey);
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return signData(this.#hash, data, this.#privateKey);
  }

  /** PKCS#8 PEM, only for the offline CA toolkit writing a key it just generated. */
  exportPkcs8Pem(): string {
    return this.#privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  }

  toJSON(): object {
    return { description: this.description };
  }
}

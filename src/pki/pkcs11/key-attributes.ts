import { createPublicKey, type KeyObject } from "node:crypto";
import { decodeDer } from "../der-reader.js";
import { objectIdentifier } from "../der-writer.js";
import type { CertificateAuthorityKeyType } from "../offline-ca.js";
import { Oid } from "../oids.js";
import { rsaCertificateAuthoritySizeProblem } from "../signing-key.js";
import { Pkcs11Error } from "./errors.js";
import type { Pkcs11Binding, Template } from "./module.js";

/** The curves a CA key may use, by the DER of their OID (CKA_EC_PARAMS), with their JWK name. */
const curves = [
  { jwk: "P-256", coordinateBytes: 32, params: Buffer.from(objectIdentifier(Oid.prime256v1)) },
  { jwk: "P-384", coordinateBytes: 48, params: Buffer.from(objectIdentifier(Oid.secp384r1)) },
  { jwk: "P-521", coordinateBytes: 66, params: Buffer.from(objectIdentifier(Oid.secp521r1)) },
] as const;

const base64Url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

/**
 * The public key of an EC key from its CKA_EC_PARAMS and CKA_EC_POINT. The point is an OCTET
 * STRING holding the uncompressed point (PKCS#11 2.40); some libraries give the raw point.
 */
export function ecPublicKey(params: Buffer, point: Buffer, what: string): KeyObject {
  const curve = curves.find((candidate) => candidate.params.equals(params));
  if (curve === undefined) {
    throw new Pkcs11Error("Pkcs11KeyUnsupported", `${what} is on a curve other than P-256, P-384 or P-521`);
  }
  const size = curve.coordinateBytes;
  let raw: Uint8Array = point;
  if (point.length !== 1 + 2 * size) {
    try {
      raw = decodeDer(point).value;
    } catch {
      // Neither the raw point nor DER: the check below names the problem.
    }
  }
  if (raw.length !== 1 + 2 * size || raw[0] !== 0x04) {
    throw new Pkcs11Error(
      "Pkcs11KeyUnsupported",
      `${what} has a public point that is not an uncompressed EC point`,
    );
  }
  try {
    return createPublicKey({
      key: {
        kty: "EC",
        crv: curve.jwk,
        x: base64Url(raw.subarray(1, 1 + size)),
        y: base64Url(raw.subarray(1 + size)),
      },
      format: "jwk",
    });
  } catch {
    // node:crypto's message adds nothing the operator can act on beyond this.
    throw new Pkcs11Error("Pkcs11KeyUnsupported", `${what} has a public point that is not on its curve`);
  }
}

/** An RSA public key of one of the sizes a CA key may have (allowedRsaCertificateAuthorityBits). */
export function rsaPublicKey(modulus: Buffer, exponent: Buffer, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: { kty: "RSA", n: base64Url(modulus), e: base64Url(exponent) },
      format: "jwk",
    });
  } catch {
    // As above: the attribute values are simply not an RSA public key.
    throw new Pkcs11Error(
      "Pkcs11KeyUnsupported",
      `${what} has an RSA modulus or exponent that cannot be used`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  const sizeProblem = rsaCertificateAuthoritySizeProblem(bits);
  if (sizeProblem) throw new Pkcs11Error("Pkcs11KeyUnsupported", `${what} is ${sizeProblem}`);
  return key;
}

export interface KeyPairGeneration {
  mechanism: number;
  publicTemplate: Template;
  privateTemplate: Template;
}

/**
 * Templates for a CA key pair generated in the token: both halves on the token (CKA_TOKEN), the
 * private key sensitive and never extractable, usable only for signing; both named by `label`/`id`.
 */
export function keyPairGeneration(
  pkcs11: Pkcs11Binding,
  keyType: CertificateAuthorityKeyType,
  naming: Template,
): KeyPairGeneration {
  const publicTemplate: Template = [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: false },
    { type: pkcs11.CKA_VERIFY, value: true },
    { type: pkcs11.CKA_ENCRYPT, value: false },
    { type: pkcs11.CKA_WRAP, value: false },
    ...naming,
  ];
  const privateTemplate: Template = [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_EXTRACTABLE, value: false },
    { type: pkcs11.CKA_SIGN, value: true },
    { type: pkcs11.CKA_DECRYPT, value: false },
    { type: pkcs11.CKA_UNWRAP, value: false },
    { type: pkcs11.CKA_DERIVE, value: false },
    ...naming,
  ];
  if (keyType === "ecdsa-p256" || keyType === "ecdsa-p384") {
    const params = curves[keyType === "ecdsa-p256" ? 0 : 1].params;
    return {
      mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN,
      publicTemplate: [...publicTemplate, { type: pkcs11.CKA_EC_PARAMS, value: params }],
      privateTemplate,
    };
  }
  return {
    mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN,
    publicTemplate: [
      ...publicTemplate,
      { type: pkcs11.CKA_MODULUS_BITS, value: Number(keyType.slice(4)) },
      { type: pkcs11.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
    ],
    privateTemplate,
  };
}

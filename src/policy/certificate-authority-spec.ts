/**
 * Validation of spec.certificateAuthority: where the chain comes from (secretName or path), where
 * the key is when it is not a plain key file there (a PKCS#11 token, or the passphrase of an
 * encrypted key file), and the namespace of the Secrets it names (never a PKCS#11 PIN's). Part of parseSignerSpec
 * (signer-spec.ts); the CRD schema says the same.
 */
import type { CertificateAuthoritySource, Pkcs11KeySource, SecretValueSource } from "../api/signer.js";
import { SignerSpecError } from "./signer-spec-error.js";
import { object } from "./spec-fields.js";

const secretNamePattern = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const secretKeyPattern = /^[-._a-zA-Z0-9]{1,253}$/;
/** A namespace name: a DNS label (RFC 1123). */
const namespacePattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** spec.certificateAuthority, validated; throws SignerSpecError naming the field. */
export function parseCertificateAuthoritySource(raw: unknown): CertificateAuthoritySource {
  const ca = object(raw, "spec.certificateAuthority");
  const secretName = ca.secretName;
  const path = ca.path;
  if ((secretName === undefined) === (path === undefined)) {
    throw new SignerSpecError("spec.certificateAuthority", "set exactly one of secretName or path");
  }
  if (secretName !== undefined && (typeof secretName !== "string" || !secretNamePattern.test(secretName))) {
    throw new SignerSpecError("spec.certificateAuthority.secretName", "must be a Secret name");
  }
  if (path !== undefined && (typeof path !== "string" || !path.startsWith("/"))) {
    throw new SignerSpecError("spec.certificateAuthority.path", "must be an absolute path");
  }
  const pkcs11 =
    ca.pkcs11 === undefined ? undefined : parsePkcs11(ca.pkcs11, "spec.certificateAuthority.pkcs11");
  const keyPassphrase = parseSecretValueSource(
    ca.keyPassphraseFile,
    ca.keyPassphraseSecretRef,
    "spec.certificateAuthority",
    "keyPassphraseFile",
    "keyPassphraseSecretRef",
    false,
  );
  if (pkcs11 && keyPassphrase) {
    throw new SignerSpecError(
      "spec.certificateAuthority",
      "keyPassphraseFile and keyPassphraseSecretRef open a key file; with pkcs11 there is none",
    );
  }
  const secretNamespace = ca.secretNamespace;
  if (secretNamespace !== undefined) {
    if (typeof secretNamespace !== "string" || !namespacePattern.test(secretNamespace))
      throw new SignerSpecError("spec.certificateAuthority.secretNamespace", "must be a namespace name");
    // A token's PIN opens every key on it, and wrong PINs lock it (a Luna partition after 3): a
    // tenant writing fresh wrong PINs would stop every Signer on that token. The PIN stays the platform's.
    if (pkcs11 !== undefined && "secret" in pkcs11.pin)
      throw new SignerSpecError(
        "spec.certificateAuthority.pkcs11.pinSecretRef",
        "cannot be used with secretNamespace: a tenant holding a token's PIN could lock the token for every Signer on it; use pinFile",
      );
    const namesSecret =
      secretName !== undefined || (keyPassphrase !== undefined && "secret" in keyPassphrase);
    if (!namesSecret)
      throw new SignerSpecError(
        "spec.certificateAuthority.secretNamespace",
        "is the namespace of secretName and keyPassphraseSecretRef; none is set",
      );
  }
  return {
    ...(secretName !== undefined ? { secretName: secretName as string } : { path: path as string }),
    ...(pkcs11 ? { pkcs11 } : {}),
    ...(keyPassphrase ? { keyPassphrase } : {}),
    ...(secretNamespace !== undefined ? { secretNamespace: secretNamespace as string } : {}),
  };
}

/**
 * A CA Secret outside the controller's namespace must be in the Signer's one and only tenant
 * namespace: whoever reads Secrets there holds the CA key, so that key may serve that namespace
 * alone (with a second namespace or a selector, that reader could sign for the others; a
 * selector-matched namespace never counts: labels can move). Throws SignerSpecError.
 */
export function checkSecretNamespaceIsTenant(
  source: CertificateAuthoritySource,
  tenants: { namespaces: readonly string[]; namespaceSelector?: unknown },
): void {
  const { secretNamespace } = source;
  if (secretNamespace === undefined) return;
  if (!tenants.namespaces.includes(secretNamespace))
    throw new SignerSpecError(
      "spec.certificateAuthority.secretNamespace",
      `must be one of spec.policy.tenants.namespaces: whoever reads Secrets in "${secretNamespace}" holds this CA's key`,
    );
  if (tenants.namespaces.length !== 1 || tenants.namespaceSelector !== undefined)
    throw new SignerSpecError(
      "spec.certificateAuthority.secretNamespace",
      `must be the Signer's only tenant namespace (spec.policy.tenants.namespaces exactly ["${secretNamespace}"], no namespaceSelector): whoever reads Secrets there holds this CA's key and could sign for the other namespaces`,
    );
}

/**
 * A secret text from a file (`<fileField>`, an absolute path) or a Secret key (`<secretField>`:
 * {name, key}, in the certificateAuthority's Secret namespace): exactly one when `required`, at most one otherwise.
 */
function parseSecretValueSource(
  file: unknown,
  secretRef: unknown,
  parent: string,
  fileField: string,
  secretField: string,
  required: boolean,
): SecretValueSource | undefined {
  if (file !== undefined && secretRef !== undefined)
    throw new SignerSpecError(parent, `set only one of ${fileField} or ${secretField}`);
  if (file === undefined && secretRef === undefined) {
    if (required) throw new SignerSpecError(parent, `set exactly one of ${fileField} or ${secretField}`);
    return undefined;
  }
  if (file !== undefined) {
    if (typeof file !== "string" || !file.startsWith("/"))
      throw new SignerSpecError(`${parent}.${fileField}`, "must be an absolute path");
    return { file };
  }
  const ref = object(secretRef, `${parent}.${secretField}`);
  if (typeof ref.name !== "string" || !secretNamePattern.test(ref.name))
    throw new SignerSpecError(`${parent}.${secretField}.name`, "must be a Secret name");
  if (typeof ref.key !== "string" || !secretKeyPattern.test(ref.key))
    throw new SignerSpecError(`${parent}.${secretField}.key`, "must be a Secret key");
  return { secret: { name: ref.name, key: ref.key } };
}

/** certificateAuthority.pkcs11: the module, one of tokenLabel/slot, one of keyLabel/keyId, the PIN. */
function parsePkcs11(raw: unknown, field: string): Pkcs11KeySource {
  const pkcs11 = object(raw, field);
  const { module, tokenLabel, slot, keyLabel, keyId } = pkcs11;
  if (typeof module !== "string" || !module.startsWith("/"))
    throw new SignerSpecError(`${field}.module`, "must be the absolute path of a PKCS#11 module (.so)");
  if ((tokenLabel === undefined) === (slot === undefined))
    throw new SignerSpecError(field, "set exactly one of tokenLabel or slot");
  // CK_TOKEN_INFO.label is 32 bytes of UTF-8, blank-padded.
  if (
    tokenLabel !== undefined &&
    (typeof tokenLabel !== "string" || tokenLabel === "" || Buffer.byteLength(tokenLabel) > 32)
  )
    throw new SignerSpecError(`${field}.tokenLabel`, "must be a token label of 1 to 32 bytes");
  if (slot !== undefined && (typeof slot !== "number" || !Number.isInteger(slot) || slot < 0))
    throw new SignerSpecError(`${field}.slot`, "must be a slot ID (an integer, 0 or more)");
  if ((keyLabel === undefined) === (keyId === undefined))
    throw new SignerSpecError(field, "set exactly one of keyLabel or keyId");
  if (keyLabel !== undefined && (typeof keyLabel !== "string" || keyLabel === ""))
    throw new SignerSpecError(`${field}.keyLabel`, "must be a non-empty key label (CKA_LABEL)");
  if (keyId !== undefined && (typeof keyId !== "string" || !/^([0-9a-fA-F]{2}){1,128}$/.test(keyId)))
    throw new SignerSpecError(`${field}.keyId`, "must be the key's CKA_ID in hex, e.g. 01a2");
  const pin = parseSecretValueSource(
    pkcs11.pinFile,
    pkcs11.pinSecretRef,
    field,
    "pinFile",
    "pinSecretRef",
    true,
  )!;
  return {
    module,
    ...(tokenLabel !== undefined ? { tokenLabel: tokenLabel as string } : { slot: slot as number }),
    ...(keyLabel !== undefined
      ? { keyLabel: keyLabel as string }
      : { keyId: (keyId as string).toLowerCase() }),
    pin,
  };
}

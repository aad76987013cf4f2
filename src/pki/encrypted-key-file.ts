/**
 * The CA key file when it is encrypted (ENCRYPTED PRIVATE KEY): read and checked against the
 * accepted scheme synchronously (cheap), decrypted asynchronously (PBKDF2 on libuv's pool), so the
 * controller hands loadCertificateAuthority a key that costs nothing more to open.
 */
import type { KeyObject } from "node:crypto";
import { CertificateAuthorityError } from "./certificate-authority.js";
import { caKeyFileOf, fileText, type CertificateAuthorityFiles } from "./ca-layouts.js";
import {
  decryptPrivateKey,
  EncryptedKeyError,
  isEncryptedPrivateKeyPem,
  readEncryptedPrivateKeyPem,
  type EncryptedPrivateKey,
} from "./encrypted-private-key.js";

export interface EncryptedKeyFile {
  /** ca-key.pem or tls.key, for messages. */
  readonly name: string;
  readonly key: EncryptedPrivateKey;
}

/**
 * The key file of `files` (the layout's, as loadCertificateAuthority picks it) when it is an
 * ENCRYPTED PRIVATE KEY; undefined for a plain key or none. Throws CertificateAuthorityError
 * MalformedKey, naming the rule, for a scheme or cost that is not accepted.
 */
export function encryptedKeyFileOf(files: CertificateAuthorityFiles): EncryptedKeyFile | undefined {
  const { name, file } = caKeyFileOf(files);
  if (file === undefined) return undefined;
  const text = fileText(file);
  if (!isEncryptedPrivateKeyPem(text)) return undefined;
  try {
    return { name, key: readEncryptedPrivateKeyPem(text) };
  } catch (error) {
    if (!(error instanceof EncryptedKeyError)) throw error;
    throw new CertificateAuthorityError("MalformedKey", `${name}: ${error.message}`);
  }
}

/** Decrypts off the event loop; a wrong passphrase is CertificateAuthorityError MalformedKey. */
export async function decryptKeyFile(file: EncryptedKeyFile, passphrase: string): Promise<KeyObject> {
  try {
    return await decryptPrivateKey(file.key, passphrase);
  } catch (error) {
    if (!(error instanceof EncryptedKeyError)) throw error;
    throw new CertificateAuthorityError("MalformedKey", `${file.name}: ${error.message}`);
  }
}

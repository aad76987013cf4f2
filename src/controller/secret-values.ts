/**
 * Reading a secret text a Signer names (a PKCS#11 PIN, an encrypted key's passphrase): from a mounted
 * file or a key of a Secret in the Signer's Secret namespace (through the caches). Read on every rebuild
 * of the Signer, so a rewritten file (Vault Agent, the secrets-store CSI driver) or an updated Secret
 * is picked up. Errors name the source, never the value.
 */
import type { SecretValueSource } from "../api/signer.js";
import { readBoundedFile } from "../pki/bounded-file.js";
import { decodedSize, type SecretLookup } from "./ca-source.js";

/** A PIN or passphrase is short; a bigger source is refused before it is read. */
export const maximumSecretValueBytes = 4096;

export class SecretValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretValueError";
  }
}

/** "file /path" or "Secret ns/name key k", for messages. */
function describeSecretValueSource(source: SecretValueSource, secretNamespace: string): string {
  return "file" in source
    ? `file ${source.file}`
    : `Secret ${secretNamespace}/${source.secret.name} key ${source.secret.key}`;
}

/**
 * The text of `source` (a Secret key: in `secretNamespace`) without a trailing newline (templates
 * usually end with one). Throws SecretValueError when it is missing, empty or too large, and
 * `secret`'s SecretUnavailableError when the Secret cannot be looked up.
 */
export function readSecretValue(
  source: SecretValueSource,
  secretNamespace: string,
  secret: SecretLookup,
): string {
  const where = describeSecretValueSource(source, secretNamespace);
  let bytes: Buffer;
  if ("file" in source) {
    let read;
    try {
      read = readBoundedFile(source.file, maximumSecretValueBytes);
    } catch (error) {
      // The system error names the path and the cause (ENOENT, EACCES), never the content.
      throw new SecretValueError(
        `${where} cannot be read: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    if (read.kind === "notRegularFile")
      throw new SecretValueError(`${where} is not a regular file (a device, FIFO or folder is never read)`);
    if (read.kind === "tooLarge")
      throw new SecretValueError(`${where} is larger than ${maximumSecretValueBytes} bytes`);
    bytes = read.bytes;
  } else {
    const object = secret(secretNamespace, source.secret.name, [source.secret.key]);
    if (!object) throw new SecretValueError(`${where}: the Secret is not found`);
    const value = object.data?.[source.secret.key];
    if (value === undefined) throw new SecretValueError(`${where}: the Secret has no such key`);
    if (decodedSize(value) > maximumSecretValueBytes)
      throw new SecretValueError(`${where} is larger than ${maximumSecretValueBytes} bytes`);
    bytes = Buffer.from(value, "base64");
  }
  const text = bytes.toString("utf8").replace(/\r?\n$/, "");
  if (text === "") throw new SecretValueError(`${where} is empty`);
  return text;
}

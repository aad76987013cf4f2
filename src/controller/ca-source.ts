/**
 * Reading a Signer's CA files: from its Secret (in the controller's namespace or the Signer's
 * certificateAuthority.secretNamespace, through the caches) or its mounted folder. Only the known file names are read, each checked against the size cap
 * before it is decoded; the content hash lets the caller parse each distinct content once.
 */
import { createHash } from "node:crypto";
import { CertificateAuthorityError } from "../pki/certificate-authority.js";
import {
  certificateAuthorityFileNames,
  checkCertificateAuthorityFileSize,
  readCertificateAuthorityFolder,
} from "../pki/ca-material-files.js";
import { base64DecodedLength } from "../pki/base64.js";
import { omittedStringBytes } from "../kube/long-strings.js";
import type { SignerSpec } from "../api/signer.js";

export interface SecretObject {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
}

/**
 * A Secret lookup that cannot say whether the Secret exists: the controller may not list it (no
 * Role in that namespace) or its first list has not answered. The Signer waits with this reason.
 */
export class SecretUnavailableError extends Error {
  constructor(
    readonly reason: "SecretAccessForbidden" | "SecretNotYetListed",
    message: string,
  ) {
    super(message);
    this.name = "SecretUnavailableError";
  }
}

/** Where the Secrets a Signer's certificateAuthority names live. */
export function secretNamespaceOf(
  source: SignerSpec["certificateAuthority"],
  controllerNamespace: string,
): string {
  return source.secretNamespace ?? controllerNamespace;
}

export interface CertificateAuthorityFiles {
  files: Record<string, Uint8Array>;
  /** "Secret ns/name" or "folder /path", for messages. */
  sourceName: string;
  /** SHA-256 over names and contents. */
  sourceHash: string;
}

/**
 * Looks up Secret `namespace/name` through the caches; `dataKeys` are the data keys the caller
 * reads (a tenant Secret's cache keeps no other, tenant-secret-watches.ts).
 */
export type SecretLookup = (
  namespace: string,
  name: string,
  dataKeys: readonly string[],
) => SecretObject | undefined;

/**
 * The CA files of a Signer. Throws CertificateAuthorityError (TooLarge, or the folder's own
 * reasons), SecretUnavailableError from `secret`, or a plain Error naming the source when it is
 * missing or unreadable.
 */
export function readCertificateAuthorityFiles(
  source: SignerSpec["certificateAuthority"],
  controllerNamespace: string,
  secret: SecretLookup,
): CertificateAuthorityFiles {
  const { secretName, path } = source;
  if (secretName) {
    const namespace = secretNamespaceOf(source, controllerNamespace);
    const sourceName = `Secret ${namespace}/${secretName}`;
    const object = secret(namespace, secretName, certificateAuthorityFileNames);
    if (!object) throw new Error(`${sourceName} not found`);
    const files: Record<string, Uint8Array> = {};
    for (const name of certificateAuthorityFileNames) {
      const value = object.data?.[name];
      if (value === undefined) continue;
      try {
        checkCertificateAuthorityFileSize(name, decodedSize(value));
      } catch (error) {
        throw new CertificateAuthorityError("TooLarge", `${sourceName}: ${(error as Error).message}`);
      }
      files[name] = Buffer.from(value, "base64");
    }
    return { files, sourceName, sourceHash: hashFiles(files) };
  }
  const sourceName = `folder ${path}`;
  try {
    const files: Record<string, Uint8Array> = {};
    for (const [name, content] of Object.entries(readCertificateAuthorityFolder(path!)))
      if (content) files[name] = content;
    return { files, sourceName, sourceHash: hashFiles(files) };
  } catch (error) {
    if (error instanceof CertificateAuthorityError)
      throw new CertificateAuthorityError(error.reason, `${sourceName}: ${error.message}`);
    throw new Error(`${sourceName}: ${(error as Error).message}`);
  }
}

/**
 * Decoded bytes of a Secret value; a value the cache cut before parsing (a tenant Secret's watch
 * keeps no string over maximumTenantSecretStringBytes) counts at its full size, so it is TooLarge.
 */
export function decodedSize(value: string): number {
  const omitted = omittedStringBytes(value);
  return omitted !== undefined ? Math.floor((omitted * 3) / 4) : base64DecodedLength(value);
}

function hashFiles(files: Record<string, Uint8Array>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort())
    hash.update(name).update("\0").update(files[name]!).update("\0");
  return hash.digest("hex");
}

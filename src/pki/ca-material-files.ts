/**
 * Reading CA material from a mounted folder (a Secret volume, a secrets-store CSI volume) and the
 * size cap every CA file, from a folder or a Secret, is held to before it is decoded.
 */
import { existsSync, readlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { readBoundedFile } from "./bounded-file.js";
import { CertificateAuthorityError } from "./certificate-authority.js";
import { CacertsFiles, TlsSecretFiles } from "./ca-layouts.js";

/**
 * Largest CA file accepted, checked before any decoding: a CA certificate, key or chain is a few
 * KiB, a roots file during a rotation a few certificates more. Bigger material is refused.
 */
export const maximumCertificateAuthorityFileBytes = 64 * 1024;

/** The file names of both layouts: the only entries of a Secret or folder that are read. */
export const certificateAuthorityFileNames: readonly string[] = [
  ...new Set([...Object.values(CacertsFiles), ...Object.values(TlsSecretFiles)]),
];

/** Throws TooLarge, naming the file and the limit, when a file exceeds the cap (before parsing). */
export function checkCertificateAuthorityFileSize(name: string, bytes: number): void {
  if (bytes > maximumCertificateAuthorityFileBytes) {
    throw new CertificateAuthorityError(
      "TooLarge",
      `${name} is ${bytes} bytes; CA files are limited to ${maximumCertificateAuthorityFileBytes} bytes`,
    );
  }
}

/**
 * Reads the known CA file names from a folder (a mounted Secret or a secrets-store CSI volume).
 * Files that are absent stay undefined; the read follows the CSI driver's symlinks. A file over
 * the size cap is refused (TooLarge), and anything but a regular file (MissingFile), before it is read.
 */
export function readCertificateAuthorityFolder(dir: string): Record<string, Uint8Array | undefined> {
  // Kubernetes volumes and the secrets-store CSI driver publish a version folder and swap the
  // "..data" symlink to it atomically; the top-level names are links through "..data". Resolving
  // "..data" once and reading everything from that version means one read never mixes two versions.
  let source = dir;
  try {
    source = resolve(dir, readlinkSync(join(dir, "..data")));
  } catch {
    // a plain folder
  }
  const files: Record<string, Uint8Array | undefined> = {};
  for (const name of certificateAuthorityFileNames) {
    const path = join(source, name);
    if (!existsSync(path)) continue;
    const read = readBoundedFile(path, maximumCertificateAuthorityFileBytes);
    if (read.kind === "notRegularFile")
      throw new CertificateAuthorityError(
        "MissingFile",
        `${name} is not a regular file (a device, FIFO or folder is never read)`,
      );
    if (read.kind === "tooLarge") checkCertificateAuthorityFileSize(name, read.bytes);
    else files[name] = read.bytes;
  }
  return files;
}

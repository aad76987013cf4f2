/**
 * Step A of a root rotation: a new root joins the set of trusted roots (root-cert.pem or ca.crt),
 * so bundles carry old and new roots before anything signs under the new one. Pure: text in, text
 * out, with the reason for each refusal.
 */
import { parseCertificate, type ParsedCertificate } from "./certificate.js";
import { decodeCertificatesPem } from "./pem.js";

export class RootSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RootSetError";
  }
}

export interface RootSetChange {
  /** The roots file after the change: the existing roots in their order, then the added ones. */
  pem: string;
  added: ParsedCertificate[];
  /** Given roots already in the set (by SHA-256 fingerprint): nothing to do for them. */
  alreadyPresent: ParsedCertificate[];
}

/**
 * Appends `newRootsPem` to `existingRootsPem`, de-duplicated by fingerprint. Each new certificate
 * must be a root: a CA certificate, self-signed with a signature that verifies, not expired.
 */
export function addRoots(existingRootsPem: string, newRootsPem: string, now: Date): RootSetChange {
  const existing = parseAll(existingRootsPem, "existing roots");
  const candidates = parseAll(newRootsPem, "new roots");
  if (candidates.length === 0) throw new RootSetError("new roots: no certificate");
  const known = new Set(existing.map((root) => root.fingerprintSha256));
  const added: ParsedCertificate[] = [];
  const alreadyPresent: ParsedCertificate[] = [];
  for (const root of candidates) {
    checkRoot(root, now);
    if (known.has(root.fingerprintSha256)) {
      alreadyPresent.push(root);
      continue;
    }
    known.add(root.fingerprintSha256);
    added.push(root);
  }
  const pem = [...existing, ...added].map((root) => root.pem).join("");
  return { pem, added, alreadyPresent };
}

function parseAll(text: string, what: string): ParsedCertificate[] {
  try {
    return decodeCertificatesPem(text, what).map(parseCertificate);
  } catch (error) {
    throw new RootSetError(`${what}: ${(error as Error).message}`);
  }
}

function checkRoot(root: ParsedCertificate, now: Date): void {
  const name = `"${root.subject}" (${root.fingerprintSha256})`;
  if (!root.isCertificateAuthority) throw new RootSetError(`${name} is not a CA certificate`);
  if (!root.selfSigned)
    throw new RootSetError(`${name} is not a self-signed root (an intermediate belongs in ca-cert.pem)`);
  if (root.notAfter.getTime() <= now.getTime())
    throw new RootSetError(`${name} expired at ${root.notAfter.toISOString()}`);
}

/**
 * A Signer's trust bundle: the roots its clients must trust. Pure. The bookkeeping that makes
 * rotations safe lives in the Signer's status (so it survives restarts): when each root was
 * first published, and when a root left the CA material. A root that left stays in the bundle
 * for the overlap window (at least the Signer's longest leaf lifetime), then goes.
 */
import { parseCertificate, type ParsedCertificate } from "../pki/certificate.js";
import { decodeCertificatesPem } from "../pki/pem.js";
import { kubernetesTime } from "../kube/time.js";
import type { RecordedRoot } from "../api/signer.js";

export interface TrustBundle {
  /** Concatenated PEM, deterministic order (oldest NotBefore first, then fingerprint). */
  pem: string;
  certificates: ParsedCertificate[];
  /** The state to record next (new roots without firstPublished, newly retired ones with retiredAt). */
  recorded: RecordedRoot[];
  /** When the next root leaves the bundle (its overlap ends), for a timely re-check. */
  nextChangeAt?: Date;
}

/**
 * The roots in PEM text (spec.trustBundle.extraRootsPem). Throws, naming the certificate, when one
 * is not a self-signed CA: an operator who pasted an intermediate must hear about it, not find the
 * bundle silently short.
 */
export function rootsFromPem(pem: string): ParsedCertificate[] {
  if (pem.trim() === "") return [];
  const certificates = decodeCertificatesPem(pem, "extra roots").map((der) => parseCertificate(der));
  for (const [index, certificate] of certificates.entries()) {
    if (!certificate.isCertificateAuthority || !certificate.selfSigned)
      throw new Error(`certificate [${index}] "${certificate.subject}" is not a self-signed CA certificate`);
  }
  return certificates;
}

/**
 * Computes the bundle. `current` are the roots the CA material lists now (including material
 * not yet adopted for signing, which must be published before it may sign) plus extra roots.
 */
export function computeTrustBundle(
  current: readonly ParsedCertificate[],
  recorded: readonly RecordedRoot[],
  now: Date,
  overlapSeconds: number,
): TrustBundle {
  const byFingerprint = new Map<string, ParsedCertificate>();
  for (const certificate of current) {
    if (certificate.isCertificateAuthority) byFingerprint.set(certificate.fingerprintSha256, certificate);
  }
  const nowIso = kubernetesTime(now);
  const next: RecordedRoot[] = [];
  const inBundle = new Map<string, ParsedCertificate>();
  let nextChangeAt: Date | undefined;
  for (const entry of recorded) {
    const live = byFingerprint.get(entry.fingerprintSha256);
    if (live) {
      const { retiredAt: _, ...stillCurrent } = entry;
      next.push(stillCurrent);
      continue;
    }
    const retiredAt = entry.retiredAt ?? nowIso;
    const leavesAt = new Date(Date.parse(retiredAt) + overlapSeconds * 1000);
    if (leavesAt <= now || Date.parse(entry.notAfter) <= now.getTime()) continue; // overlap over, or expired: gone
    next.push({ ...entry, retiredAt });
    inBundle.set(entry.fingerprintSha256, recordedCertificate(entry));
    if (!nextChangeAt || leavesAt < nextChangeAt) nextChangeAt = leavesAt;
  }
  const recordedNext = new Set(next.map((entry) => entry.fingerprintSha256));
  for (const [fingerprint, certificate] of byFingerprint) {
    if (certificate.notAfter <= now) continue; // an expired root verifies nothing
    inBundle.set(fingerprint, certificate);
    if (!recordedNext.has(fingerprint)) {
      next.push({
        fingerprintSha256: fingerprint,
        subject: certificate.subject,
        notAfter: kubernetesTime(certificate.notAfter),
        pem: certificate.pem,
      });
    }
  }
  const certificates = [...inBundle.values()].sort(
    (a, b) =>
      a.notBefore.getTime() - b.notBefore.getTime() || a.fingerprintSha256.localeCompare(b.fingerprintSha256),
  );
  next.sort((a, b) => a.fingerprintSha256.localeCompare(b.fingerprintSha256));
  return {
    pem: certificates.map((c) => c.pem).join(""),
    certificates,
    recorded: next,
    ...(nextChangeAt ? { nextChangeAt } : {}),
  };
}

/**
 * Retiring roots parsed before, by their PEM (the DER it holds): every rebuild of every Signer
 * reads them from status again, and parsing is the costly part. Bounded: past the limit the oldest
 * entry goes (16 recorded roots per Signer make this room for a few hundred Signers).
 */
const parsedRecordedRoots = new Map<string, ParsedCertificate>();
const maximumParsedRecordedRoots = 4096;

/** A retiring root as recorded in status; throws, naming it, when its pem is not a certificate. */
function recordedCertificate(entry: RecordedRoot): ParsedCertificate {
  const cached = parsedRecordedRoots.get(entry.pem);
  if (cached) return cached;
  try {
    const [der, ...more] = decodeCertificatesPem(entry.pem, "pem");
    if (!der || more.length > 0) throw new Error("expected exactly one CERTIFICATE block");
    const certificate = parseCertificate(der);
    if (parsedRecordedRoots.size >= maximumParsedRecordedRoots)
      parsedRecordedRoots.delete(parsedRecordedRoots.keys().next().value!);
    parsedRecordedRoots.set(entry.pem, certificate);
    return certificate;
  } catch (error) {
    throw new Error(
      `recorded root ${entry.fingerprintSha256} is not a certificate: ${(error as Error).message}`,
    );
  }
}

/** True when `fingerprint` has been in the published bundle for at least `minimumSeconds`. */
export function publishedLongEnough(
  recorded: readonly RecordedRoot[],
  fingerprint: string,
  now: Date,
  minimumSeconds: number,
): boolean {
  const entry = recorded.find((root) => root.fingerprintSha256 === fingerprint);
  if (!entry?.firstPublished) return false;
  return Date.parse(entry.firstPublished) + minimumSeconds * 1000 <= now.getTime();
}

/** The name of a signer's ClusterTrustBundle: the API requires `<signerName, / as :>:<suffix>`. */
export function clusterTrustBundleName(signerName: string): string {
  return `${signerName.replaceAll("/", ":")}:csr-signer`;
}

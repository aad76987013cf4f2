/**
 * Builds one Signer as the reconcilers use it from its object: the parsed spec, the CA that signs
 * (authority-selector.ts), the trust bundle to publish, what is wrong, and when to look again.
 */
import type { CertificateAuthority } from "../pki/certificate-authority.js";
import type { ParsedCertificate } from "../pki/certificate.js";
import { computeTrustBundle, rootsFromPem, type TrustBundle } from "../bundle/trust-bundle.js";
import { parseSignerSpec, SignerSpecError } from "../policy/signer-spec.js";
import type { PendingCertificateRequest, SignerObject, SignerSpec } from "../api/signer.js";
import { firstLine, type CertificateAuthoritySelector } from "./authority-selector.js";
import type { RecordedRootsBook } from "./recorded-roots.js";
import type { SignerProblem } from "./signer-problem.js";

/** A Signer as the reconciler uses it. */
export interface ActiveSigner {
  readonly objectName: string;
  readonly generation: number | undefined;
  readonly spec: SignerSpec | undefined;
  /** The CA in use: absent until one loads; kept when a later update is broken (see degraded). */
  readonly authority: CertificateAuthority | undefined;
  /** Set when the signer cannot sign at all. */
  readonly problem: SignerProblem | undefined;
  /** Set when a CA update was refused and the previous CA is still used. */
  readonly degraded: SignerProblem | undefined;
  /** The roots to publish; absent when the spec is invalid. */
  readonly bundle: TrustBundle | undefined;
  /** Set when a CA certificate expires within spec.trustBundle.expiryWarning. */
  readonly expiring: string | undefined;
  /** The next instant this Signer must be looked at again though nothing changed (a time-based step). */
  readonly recheckAt?: Date | undefined;
  /** The token key's PKCS#10 request while no certificate for it signs (status.pendingCertificateRequest). */
  readonly pendingCertificateRequest?: PendingCertificateRequest | undefined;
}

/**
 * Most roots a Signer records (published now or retiring): four materials' worth of roots (see
 * maximumRootsPerCertificateAuthority). A rotation needs 2; a tenant rewriting its CA Secret
 * could otherwise grow every published bundle by its roots on each write, for the overlap window.
 */
export const maximumRecordedRoots = 16;

/** Material that is not yet valid gives no instant to wait for: it is read again this often. */
const notYetValidRecheckMs = 60_000;

/**
 * One Signer's failure is that Signer's condition, never every tenant's: whatever building it
 * throws (a bug, a library error on odd input) makes it unable to sign, with the reason on Ready.
 */
export function buildActiveSigner(
  object: SignerObject,
  authorities: CertificateAuthoritySelector,
  recordedRoots: RecordedRootsBook,
  now: Date,
): ActiveSigner {
  try {
    return buildSigner(object, authorities, recordedRoots, now);
  } catch (error) {
    return {
      ...unusable(object),
      problem: { reason: "SignerBuildFailed", message: `could not build this Signer: ${firstLine(error)}` },
    };
  }
}

function unusable(object: SignerObject): Omit<ActiveSigner, "problem"> {
  return {
    objectName: object.metadata?.name ?? "",
    generation: object.metadata?.generation,
    spec: undefined,
    authority: undefined,
    degraded: undefined,
    expiring: undefined,
    bundle: undefined,
  };
}

function buildSigner(
  object: SignerObject,
  authorities: CertificateAuthoritySelector,
  recordedRoots: RecordedRootsBook,
  now: Date,
): ActiveSigner {
  const objectName = object.metadata?.name ?? "";
  let spec: SignerSpec;
  try {
    spec = parseSignerSpec(object.spec, objectName);
  } catch (error) {
    if (!(error instanceof SignerSpecError)) throw error;
    return { ...unusable(object), problem: { reason: "InvalidSpec", message: error.message } };
  }
  const recorded = recordedRoots.merged(objectName, object.status?.trustBundle?.roots);
  const selection = authorities.select(objectName, spec, recorded, now);
  let extraRoots: ParsedCertificate[] = [];
  let extraProblem: SignerProblem | undefined;
  try {
    extraRoots = rootsFromPem(spec.trustBundle.extraRootsPem);
  } catch (error) {
    extraProblem = {
      reason: "InvalidExtraRoots",
      message: `spec.trustBundle.extraRootsPem: ${(error as Error).message}`,
    };
  }
  // New material's roots are published before that material may sign (see rotation-gate.ts).
  let bundle: TrustBundle;
  let recordedRootsProblem: SignerProblem | undefined;
  try {
    const bundleWith = (pendingRoots: readonly ParsedCertificate[]): TrustBundle =>
      computeTrustBundle(
        [...(selection.authority?.roots ?? []), ...pendingRoots, ...extraRoots],
        recorded,
        now,
        spec.trustBundle.overlapSeconds,
      );
    const pendingRoots = selection.pending?.roots ?? [];
    bundle = bundleWith(pendingRoots);
    // Retired roots stay for their overlap; past the cap, new material waits for them to leave
    // instead of growing every bundle (its roots already recorded stay, so nothing retires early).
    const known = new Set(recorded.map((entry) => entry.fingerprintSha256));
    const newRoots = pendingRoots.filter((root) => !known.has(root.fingerprintSha256));
    if (bundle.recorded.length > maximumRecordedRoots && newRoots.length > 0) {
      const wouldRecord = bundle.recorded.length;
      bundle = bundleWith(pendingRoots.filter((root) => known.has(root.fingerprintSha256)));
      recordedRootsProblem = {
        reason: "TooManyRecordedRoots",
        message: `the new CA material's ${newRoots.length} roots are not published: this Signer would record ${wouldRecord} roots and at most ${maximumRecordedRoots} are kept (retired roots leave after spec.trustBundle.overlap)`,
      };
    }
  } catch (error) {
    // A recorded root in status that is not a certificate: nothing safe to publish or sign under.
    return {
      ...unusable(object),
      spec,
      problem: {
        reason: "InvalidTrustBundleStatus",
        message: `status.trustBundle.roots: ${firstLine(error)}`,
      },
    };
  }
  recordedRoots.set(objectName, bundle.recorded);
  const authority = selection.authority;
  const warningMs = spec.trustBundle.expiryWarningSeconds * 1000;
  const expiringCertificates = authority
    ? caCertificates(authority).filter((c) => c.notAfter.getTime() < now.getTime() + warningMs)
    : [];
  const problem = recordedRootsProblem && !authority ? recordedRootsProblem : selection.problem;
  const degraded = (authority ? recordedRootsProblem : undefined) ?? selection.degraded ?? extraProblem;
  const notYetValid = [problem, degraded].some((p) => p?.reason === "CertificateAuthorityNotYetValid");
  return {
    objectName,
    generation: object.metadata?.generation,
    spec,
    authority,
    problem,
    degraded,
    bundle,
    pendingCertificateRequest: selection.pendingCertificateRequest,
    expiring: expiringCertificates.length
      ? expiringCertificates.map((c) => `"${c.subject}" expires ${c.notAfter.toISOString()}`).join("; ")
      : undefined,
    recheckAt: earliestAfter(now, [
      selection.pendingUntil,
      selection.retryAt,
      bundle.nextChangeAt,
      ...bundle.certificates.map((c) => c.notAfter),
      ...[authority, selection.pending].flatMap((ca) =>
        ca
          ? caCertificates(ca).flatMap((c) => [
              c.notBefore,
              c.notAfter,
              new Date(c.notAfter.getTime() - warningMs),
            ])
          : [],
      ),
      notYetValid ? new Date(now.getTime() + notYetValidRecheckMs) : undefined,
    ]),
  };
}

function caCertificates(authority: CertificateAuthority): ParsedCertificate[] {
  return [authority.signingCertificate, ...authority.intermediates, authority.anchor];
}

/** The earliest of `instants` strictly after `now`. */
function earliestAfter(now: Date, instants: (Date | undefined)[]): Date | undefined {
  let earliest: Date | undefined;
  for (const instant of instants)
    if (instant && instant > now && (!earliest || instant < earliest)) earliest = instant;
  return earliest;
}

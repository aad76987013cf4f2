import { currentDate, systemClock } from "../api/clock.js";
import type { CertificateAuthority } from "./certificate-authority.js";
import { CertificateAuthorityError } from "./certificate-authority.js";
import { keyIdentifier, signCertificate } from "./certificate-builder.js";
import type { CertificateRequest } from "./certificate-request.js";
import type { KubernetesUsage } from "../api/usages.js";
import { certificateKeyUsages } from "./key-usages.js";
import type { DistinguishedName } from "./names.js";
import { encodePem } from "./pem.js";
import { pooledRandomBytes } from "./random-pool.js";
import type { SubjectAlternativeNames } from "./subject-alternative-names.js";

/** What policy granted: the only inputs (with the request's public key) a leaf is built from. */
export interface IssuanceGrant {
  readonly subject: DistinguishedName;
  readonly subjectAltNames: SubjectAlternativeNames;
  /** Already intersected with the signer's allowed usages. */
  readonly usages: readonly KubernetesUsage[];
  readonly lifetime: LifetimeRequest;
  /** Append the root to the chain (off by default: clients are expected to hold it). */
  readonly includeRoot: boolean;
}

export interface LifetimeRequest {
  /** spec.expirationSeconds, when the requester set one. */
  readonly requestedSeconds?: number;
  readonly defaultSeconds: number;
  readonly maximumSeconds: number;
}

/**
 * Injected where tests need control: the time (read from a Clock, src/api/clock.ts, as a Date) and
 * the source of serial numbers.
 */
export interface IssuanceEnvironment {
  now(): Date;
  randomBytes(size: number): Uint8Array;
}

export const systemIssuanceEnvironment: IssuanceEnvironment = {
  now: () => currentDate(systemClock),
  randomBytes: pooledRandomBytes,
};

export const minimumLifetimeSeconds = 600;
/** Clock skew tolerance: NotBefore is set this far in the past, as kube-controller-manager does. */
export const backdateSeconds = 300;
const serialNumberBytes = 16;

export interface IssuedCertificate {
  readonly certificateDer: Uint8Array;
  /** Leaf, then intermediates, then the root when the grant asks: PEM blocks and nothing else. */
  readonly chainPem: string;
  readonly serialNumber: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * The lifetime a leaf gets: requested (or default) clamped to [10 min, maximum]. The CA chain's
 * earliest expiry (root included) is applied afterwards, in issueLeafCertificate, which refuses
 * (ExpiringSoon) rather than cap below the 10-minute minimum.
 */
export function effectiveLifetimeSeconds(lifetime: LifetimeRequest): number {
  const wanted = lifetime.requestedSeconds ?? lifetime.defaultSeconds;
  return Math.max(minimumLifetimeSeconds, Math.min(wanted, lifetime.maximumSeconds));
}

/** A random positive 128-bit serial; never zero. */
export function generateSerialNumber(random: (size: number) => Uint8Array): Uint8Array {
  for (;;) {
    const serial = random(serialNumberBytes);
    if (serial.some((byte) => byte !== 0)) return serial;
  }
}

/**
 * Issues a leaf certificate for a verified request under a policy grant. Only the request's
 * public key is taken from it; the subject, SANs and usages come from the grant.
 */
export async function issueLeafCertificate(
  authority: CertificateAuthority,
  request: CertificateRequest,
  grant: IssuanceGrant,
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<IssuedCertificate> {
  const now = environment.now();
  // Every certificate up to the root bounds the leaf, not only the one that signs it.
  const chainNotAfter = authority.notAfter;
  if (now >= chainNotAfter) {
    throw new CertificateAuthorityError(
      "Expired",
      `the CA chain (signing certificate, intermediates or root) expired at ${chainNotAfter.toISOString()}`,
    );
  }
  // In the chain's last minutes the cap would leave a leaf (down to under a second) shorter than
  // any lifetime a signer grants; refuse instead, as a CA problem the operator fixes by renewing.
  if (chainNotAfter.getTime() - now.getTime() < minimumLifetimeSeconds * 1000) {
    throw new CertificateAuthorityError(
      "ExpiringSoon",
      `the CA chain (signing certificate, intermediates or root) expires at ${chainNotAfter.toISOString()}, ` +
        `sooner than the minimum leaf lifetime of ${minimumLifetimeSeconds}s; renew the CA`,
    );
  }
  const lifetimeMs = effectiveLifetimeSeconds(grant.lifetime) * 1000;
  const notBefore = new Date(
    Math.max(
      truncateToSecond(now.getTime() - backdateSeconds * 1000),
      authority.signingCertificate.notBefore.getTime(),
    ),
  );
  const notAfter = new Date(Math.min(truncateToSecond(now.getTime() + lifetimeMs), chainNotAfter.getTime()));
  return signLeaf(authority, request, grant, { notBefore, notAfter }, environment);
}

/** A leaf's validity, decided by the caller (a PodCertificateRequest's window is the API's business). */
export interface ValidityWindow {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The request's public key: all a leaf takes from any request. */
export type SubjectKey = Pick<CertificateRequest, "subjectPublicKeyInfo" | "subjectPublicKey">;

/**
 * Issues a leaf for a verified key under a policy grant within `window`, which must lie inside the
 * signing certificate's validity and the whole chain's (root included).
 */
export async function issueLeafCertificateWithin(
  authority: CertificateAuthority,
  key: SubjectKey,
  grant: IssuanceGrant,
  window: ValidityWindow,
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<IssuedCertificate> {
  if (
    window.notAfter > authority.notAfter ||
    window.notBefore < authority.signingCertificate.notBefore ||
    window.notBefore >= window.notAfter
  ) {
    throw new CertificateAuthorityError(
      "ExpiringSoon",
      `a leaf valid ${window.notBefore.toISOString()} to ${window.notAfter.toISOString()} does not fit in the CA chain ` +
        `(valid from ${authority.signingCertificate.notBefore.toISOString()} to ${authority.notAfter.toISOString()})`,
    );
  }
  return signLeaf(authority, key, grant, window, environment);
}

async function signLeaf(
  authority: CertificateAuthority,
  key: SubjectKey,
  grant: IssuanceGrant,
  { notBefore, notAfter }: ValidityWindow,
  environment: IssuanceEnvironment,
): Promise<IssuedCertificate> {
  const usages = certificateKeyUsages(grant.usages);
  const serialNumber = generateSerialNumber(environment.randomBytes);
  const certificateDer = await signCertificate(
    {
      serialNumber,
      issuerName: authority.signingCertificate.subjectNameDer,
      subject: grant.subject,
      notBefore,
      notAfter,
      subjectPublicKeyInfo: key.subjectPublicKeyInfo,
      subjectKeyIdentifier: keyIdentifier(key.subjectPublicKey),
      authorityKeyIdentifier: authority.keyIdentifier,
      subjectAltNames: grant.subjectAltNames,
      keyUsageBits: usages.keyUsageBits,
      extendedKeyUsageOids: usages.extendedKeyUsageOids,
      basicConstraints: { ca: false },
    },
    authority.signingKey,
  );
  const chainPem =
    encodePem("CERTIFICATE", certificateDer) +
    authority.chainPem +
    (grant.includeRoot ? authority.anchor.pem : "");
  return { certificateDer, chainPem, serialNumber, notBefore, notAfter };
}

export function truncateToSecond(milliseconds: number): number {
  return Math.floor(milliseconds / 1000) * 1000;
}

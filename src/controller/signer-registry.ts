/**
 * The configured signers, rebuilt from the Signer, Secret and Namespace caches whenever any of
 * them changes. Pure bookkeeping plus CA loading: it computes the status each Signer should have
 * (desiredStatus) and the controller writes it, so the controller decides when (only while leading).
 */
import { resolveSignerNameClaims, type SignerNameClaimant } from "./signer-name-claims.js";
import type { CertificateAuthority } from "../pki/certificate-authority.js";
import type { ParsedCertificate } from "../pki/certificate.js";
import { computeTrustBundle, rootsFromPem, type TrustBundle } from "../bundle/trust-bundle.js";
import { labelSelectorMatches, parseSignerSpec, SignerSpecError } from "../policy/signer-spec.js";
import type { SignerConditionReason } from "../api/reasons.js";
import type {
  CertificateSummary,
  RecordedRoot,
  SignerCondition,
  SignerObject,
  SignerSpec,
  SignerStatus,
} from "../api/signer.js";
import { kubernetesTime } from "../kube/time.js";
import {
  CertificateAuthoritySelector,
  firstLine,
  type CertificateAuthorityParseObserver,
} from "./authority-selector.js";

export interface SecretObject {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
}

export interface NamespaceObject {
  metadata?: { name?: string; labels?: Record<string, string> };
  status?: { phase?: string };
}

/** Why a signer cannot sign right now; every reason is transient from a CSR's point of view. */
export interface SignerProblem {
  reason: SignerConditionReason;
  message: string;
}

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
}

export interface SignerSources {
  signers(): SignerObject[];
  secret(namespace: string, name: string): SecretObject | undefined;
  namespaces(): NamespaceObject[];
}

export class SignerRegistry {
  private bySignerName = new Map<string, ActiveSigner>();
  private byObjectName = new Map<string, ActiveSigner>();
  private readonly authorities: CertificateAuthoritySelector;
  /** Roots this process recorded (publication times, retirements), merged with Signer status. */
  private readonly recorded = new Map<string, RecordedRoot[]>();
  private readonly issuedSinceStatus = new Map<string, number>();
  private readonly failedSinceStatus = new Map<string, number>();
  /** tenantNamespaces() answers, per parsed spec (a rebuild makes new specs). */
  private tenantsBySpec = new WeakMap<SignerSpec, ReadonlySet<string>>();
  /** Problems of the last trust bundle publication, by Signer (Degraded while there are any). */
  private readonly publicationProblems = new Map<string, string>();
  /** The last transient failure while signing (an API write refused, the CA failed), until a success. */
  private readonly signingTrouble = new Map<string, SignerProblem>();

  constructor(
    private readonly sources: SignerSources,
    private readonly controllerNamespace: string,
    private readonly now: () => Date = () => new Date(),
    onCertificateAuthorityParse?: CertificateAuthorityParseObserver,
  ) {
    this.authorities = new CertificateAuthoritySelector(
      (namespace, name) => sources.secret(namespace, name),
      controllerNamespace,
      onCertificateAuthorityParse,
    );
  }

  /** The signer handling `signerName`, when one Signer (and only one) claims it. */
  forSignerName(signerName: string): ActiveSigner | undefined {
    return this.bySignerName.get(signerName);
  }

  all(): ActiveSigner[] {
    return [...this.byObjectName.values()];
  }

  /**
   * Recomputes every signer from the caches. Returns the signer names whose ability to sign
   * changed (became ready or got a new CA), so their pending CSRs can be queued again.
   */
  rebuild(): string[] {
    const previous = this.bySignerName;
    const byObjectName = new Map<string, ActiveSigner>();
    const claims = new Map<string, SignerNameClaimant[]>();
    for (const object of this.sources.signers()) {
      const name = object.metadata?.name ?? "";
      const signer = this.buildSignerIsolated(object);
      byObjectName.set(name, signer);
      if (signer.spec)
        claims.set(signer.spec.signerName, [
          ...(claims.get(signer.spec.signerName) ?? []),
          { objectName: name, creationTimestamp: object.metadata?.creationTimestamp },
        ]);
    }
    const { owners, refused } = resolveSignerNameClaims(claims);
    for (const [objectName, { signerName, owner }] of refused)
      byObjectName.set(objectName, {
        ...byObjectName.get(objectName)!,
        problem: {
          reason: "DuplicateSignerName",
          message: `spec.signerName ${signerName} belongs to Signer ${owner}, which claimed it first`,
        },
      });
    const bySignerName = new Map<string, ActiveSigner>();
    for (const [signerName, owner] of owners) bySignerName.set(signerName, byObjectName.get(owner)!);
    this.authorities.retainOnly(new Set(byObjectName.keys()));
    for (const troubles of [this.signingTrouble, this.publicationProblems])
      for (const name of troubles.keys()) if (!byObjectName.has(name)) troubles.delete(name);
    this.byObjectName = byObjectName;
    this.bySignerName = bySignerName;
    const changed: string[] = [];
    for (const [signerName, signer] of bySignerName) {
      const before = previous.get(signerName);
      if (!signer.problem && (!before || before.problem || before.authority !== signer.authority))
        changed.push(signerName);
    }
    return changed;
  }

  /**
   * Tenant namespaces of a signer: those named plus those its selector matches. Asked for every
   * CSR, so kept per spec until namespacesChanged() (the Namespace informer calls it on every
   * event, after its cache changed, so the answer is never behind the cache).
   */
  tenantNamespaces(spec: SignerSpec): ReadonlySet<string> {
    const cached = this.tenantsBySpec.get(spec);
    if (cached) return cached;
    const tenants = new Set(spec.policy.tenants.namespaces);
    const selector = spec.policy.tenants.namespaceSelector;
    if (selector) {
      for (const namespace of this.sources.namespaces()) {
        if (namespace.metadata?.name && labelSelectorMatches(selector, namespace.metadata.labels ?? {}))
          tenants.add(namespace.metadata.name);
      }
    }
    this.tenantsBySpec.set(spec, tenants);
    return tenants;
  }

  namespacesChanged(): void {
    this.tenantsBySpec = new WeakMap();
  }

  countIssued(objectName: string): void {
    this.issuedSinceStatus.set(objectName, (this.issuedSinceStatus.get(objectName) ?? 0) + 1);
  }

  countFailed(objectName: string): void {
    this.failedSinceStatus.set(objectName, (this.failedSinceStatus.get(objectName) ?? 0) + 1);
  }

  /**
   * A CSR of this Signer could not be finished for a reason that is not the request's fault (the API
   * server refused the status write, the CA failed to sign). Ready reports it until signingSucceeded.
   */
  reportSigningTrouble(objectName: string, trouble: SignerProblem): void {
    this.signingTrouble.set(objectName, trouble);
  }

  signingSucceeded(objectName: string): void {
    this.signingTrouble.delete(objectName);
  }

  /** What went wrong in the last publication of this Signer's trust bundle (none: all is well). */
  reportPublication(objectName: string, problems: readonly string[]): void {
    if (problems.length > 0) this.publicationProblems.set(objectName, problems.join("; "));
    else this.publicationProblems.delete(objectName);
  }

  /**
   * The status a Signer object should have now, or undefined when what it has is current.
   * Counters add what was counted since its status was last written; `statusWritten` resets them.
   */
  desiredStatus(objectName: string): SignerStatus | undefined {
    const signer = this.byObjectName.get(objectName);
    const object = this.sources.signers().find((candidate) => candidate.metadata?.name === objectName);
    if (!signer || !object) return undefined;
    const current = object.status ?? {};
    const publication = this.publicationProblems.get(objectName);
    // A root waiting for publication waits forever when publication fails: whichever condition
    // says RootNotYetPublished (Ready for a first root, Degraded during a rotation) names that cause.
    const withCause = (problem: SignerProblem | undefined): SignerProblem | undefined =>
      problem?.reason === "RootNotYetPublished" && publication
        ? { ...problem, message: `${problem.message}; publishing the trust bundle fails: ${publication}` }
        : problem;
    const notReady = withCause(signer.problem ?? this.signingTrouble.get(objectName));
    const ready: Omit<SignerCondition, "lastTransitionTime"> = notReady
      ? { type: "Ready", status: "False", reason: notReady.reason, message: notReady.message }
      : {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: `signing with ${signer.authority?.signingCertificate.subject ?? "?"} (${signer.authority?.signingKey.description ?? ""})`,
        };
    const degradedProblem =
      withCause(signer.degraded) ??
      (publication ? { reason: "TrustBundlePublicationFailed", message: publication } : undefined);
    const degraded: Omit<SignerCondition, "lastTransitionTime"> = degradedProblem
      ? { type: "Degraded", status: "True", reason: degradedProblem.reason, message: degradedProblem.message }
      : { type: "Degraded", status: "False", reason: "AsExpected", message: "" };
    const expiring: Omit<SignerCondition, "lastTransitionTime"> = signer.expiring
      ? {
          type: "CertificateAuthorityExpiring",
          status: "True",
          reason: "ExpiresSoon",
          message: signer.expiring,
        }
      : { type: "CertificateAuthorityExpiring", status: "False", reason: "AsExpected", message: "" };
    const conditions = [ready, degraded, expiring].map((condition) => {
      const existing = current.conditions?.find((c) => c.type === condition.type);
      const unchanged =
        existing && existing.status === condition.status && existing.reason === condition.reason;
      return {
        ...condition,
        lastTransitionTime: unchanged ? existing.lastTransitionTime : kubernetesTime(this.now()),
        ...(signer.generation !== undefined ? { observedGeneration: signer.generation } : {}),
      };
    });
    const authority = signer.authority;
    const desired: SignerStatus = {
      ...(signer.generation !== undefined ? { observedGeneration: signer.generation } : {}),
      conditions,
      ...(authority
        ? {
            certificateAuthority: {
              ...summarize(authority.signingCertificate),
              issuer: authority.signingCertificate.issuer,
              roots: authority.roots.map(summarize),
            },
          }
        : {}),
      issuedCount: (current.issuedCount ?? 0) + (this.issuedSinceStatus.get(objectName) ?? 0),
      failedCount: (current.failedCount ?? 0) + (this.failedSinceStatus.get(objectName) ?? 0),
      ...(this.recorded.has(objectName) ? { trustBundle: { roots: this.recorded.get(objectName)! } } : {}),
    };
    const comparable = (status: SignerStatus): string =>
      JSON.stringify({
        ...status,
        conditions: status.conditions?.map(({ lastTransitionTime: _, ...rest }) => rest),
      });
    return comparable(desired) === comparable(current) ? undefined : desired;
  }

  statusWritten(objectName: string): void {
    this.issuedSinceStatus.delete(objectName);
    this.failedSinceStatus.delete(objectName);
  }

  /**
   * One Signer's failure is that Signer's condition, never every tenant's: whatever building it
   * throws (a bug, a library error on odd input) makes it unable to sign, with the reason on Ready.
   */
  private buildSignerIsolated(object: SignerObject): ActiveSigner {
    try {
      return this.buildSigner(object);
    } catch (error) {
      return {
        objectName: object.metadata?.name ?? "",
        generation: object.metadata?.generation,
        spec: undefined,
        authority: undefined,
        degraded: undefined,
        expiring: undefined,
        bundle: undefined,
        problem: { reason: "SignerBuildFailed", message: `could not build this Signer: ${firstLine(error)}` },
      };
    }
  }

  private buildSigner(object: SignerObject): ActiveSigner {
    const objectName = object.metadata?.name ?? "";
    const base = { objectName, generation: object.metadata?.generation };
    let spec: SignerSpec;
    try {
      spec = parseSignerSpec(object.spec, objectName);
    } catch (error) {
      if (!(error instanceof SignerSpecError)) throw error;
      return {
        ...base,
        spec: undefined,
        authority: undefined,
        degraded: undefined,
        expiring: undefined,
        bundle: undefined,
        problem: { reason: "InvalidSpec", message: error.message },
      };
    }
    const now = this.now();
    const recorded = this.recordedRoots(objectName, object.status);
    const selection = this.authorities.select(objectName, spec, recorded, now);
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
    // New material's roots are published before that material may sign (see CertificateAuthoritySelector).
    let bundle: TrustBundle;
    try {
      bundle = computeTrustBundle(
        [...(selection.authority?.roots ?? []), ...(selection.pending?.roots ?? []), ...extraRoots],
        recorded,
        now,
        spec.trustBundle.overlapSeconds,
      );
    } catch (error) {
      // A recorded root in status that is not a certificate: nothing safe to publish or sign under.
      return {
        ...base,
        spec,
        authority: undefined,
        degraded: undefined,
        expiring: undefined,
        bundle: undefined,
        problem: {
          reason: "InvalidTrustBundleStatus",
          message: `status.trustBundle.roots: ${firstLine(error)}`,
        },
      };
    }
    this.recorded.set(objectName, bundle.recorded);
    const authority = selection.authority;
    const warnUntil = now.getTime() + spec.trustBundle.expiryWarningSeconds * 1000;
    const expiringCertificates = authority
      ? [authority.signingCertificate, ...authority.intermediates, authority.anchor].filter(
          (c) => c.notAfter.getTime() < warnUntil,
        )
      : [];
    return {
      ...base,
      spec,
      authority,
      problem: selection.problem,
      degraded: selection.degraded ?? extraProblem,
      bundle,
      expiring: expiringCertificates.length
        ? expiringCertificates.map((c) => `"${c.subject}" expires ${c.notAfter.toISOString()}`).join("; ")
        : undefined,
    };
  }

  /** Recorded roots: what Signer status says, merged with what this process recorded since. */
  private recordedRoots(objectName: string, status: SignerStatus | undefined): RecordedRoot[] {
    const earliest = (a?: string, b?: string): string | undefined =>
      a && b ? (Date.parse(a) <= Date.parse(b) ? a : b) : (a ?? b);
    const merged = new Map<string, RecordedRoot>();
    for (const entry of [...(status?.trustBundle?.roots ?? []), ...(this.recorded.get(objectName) ?? [])]) {
      const existing = merged.get(entry.fingerprintSha256);
      if (!existing) {
        merged.set(entry.fingerprintSha256, { ...entry });
        continue;
      }
      const firstPublished = earliest(existing.firstPublished, entry.firstPublished);
      const retiredAt = earliest(existing.retiredAt, entry.retiredAt);
      merged.set(entry.fingerprintSha256, {
        ...existing,
        ...(firstPublished ? { firstPublished } : {}),
        ...(retiredAt ? { retiredAt } : {}),
      });
    }
    return [...merged.values()];
  }

  /** Records that the current bundle of `objectName` is published everywhere; true when that is news. */
  markPublished(objectName: string): boolean {
    const now = kubernetesTime(this.now());
    let changed = false;
    for (const entry of this.recorded.get(objectName) ?? []) {
      if (!entry.firstPublished && !entry.retiredAt) {
        entry.firstPublished = now;
        changed = true;
      }
    }
    return changed;
  }
}

function summarize(certificate: ParsedCertificate): CertificateSummary {
  return {
    subject: certificate.subject,
    notAfter: kubernetesTime(certificate.notAfter),
    fingerprintSha256: certificate.fingerprintSha256,
  };
}

/**
 * The configured signers, rebuilt from the Signer, Secret and Namespace caches: the index by signer
 * name (one Signer per name: duplicates are refused), the tenant namespaces of each, and what
 * happened since each Signer's status was last written (counts, troubles) so that the status it
 * should have can be computed (signer-status.ts). Building one Signer is signer-builder.ts's job.
 */
import { resolveSignerNameClaims, type SignerNameClaimant } from "./signer-name-claims.js";
import { labelSelectorMatches } from "../policy/signer-spec.js";
import type { SignerObject, SignerSpec, SignerStatus } from "../api/signer.js";
import {
  CertificateAuthoritySelector,
  type CertificateAuthorityParseObserver,
} from "./authority-selector.js";
import type { SecretObject } from "./ca-source.js";
import { RecordedRootsBook } from "./recorded-roots.js";
import { buildActiveSigner, type ActiveSigner, type SignerProblem } from "./signer-builder.js";
import { desiredSignerStatus } from "./signer-status.js";

export type { SecretObject } from "./ca-source.js";
export type { ActiveSigner, SignerProblem } from "./signer-builder.js";
export interface NamespaceObject {
  metadata?: { name?: string; labels?: Record<string, string> };
  status?: { phase?: string };
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
  private readonly recorded = new RecordedRootsBook();
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
      const signer = buildActiveSigner(object, this.authorities, this.recorded, this.now());
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
    const live = new Set(byObjectName.keys());
    this.authorities.retainOnly(live);
    this.recorded.retainOnly(live);
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
    return desiredSignerStatus(signer, object.status ?? {}, {
      publicationProblem: this.publicationProblems.get(objectName),
      signingTrouble: this.signingTrouble.get(objectName),
      issuedSince: this.issuedSinceStatus.get(objectName) ?? 0,
      failedSince: this.failedSinceStatus.get(objectName) ?? 0,
      recordedRoots: this.recorded.get(objectName),
      now: this.now(),
    });
  }

  statusWritten(objectName: string): void {
    this.issuedSinceStatus.delete(objectName);
    this.failedSinceStatus.delete(objectName);
  }

  /** Records that the current bundle of `objectName` is published everywhere; true when that is news. */
  markPublished(objectName: string): boolean {
    return this.recorded.markPublished(objectName, this.now());
  }
}

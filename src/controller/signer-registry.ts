/**
 * The configured signers, rebuilt from the Signer, Secret and Namespace caches: the index by signer
 * name (one Signer per name: duplicates are refused), the tenant namespaces of each, and what
 * happened since each Signer's status was last written (counts in signer-status-counts.ts,
 * troubles in signer-troubles.ts) so that the status it should have can be computed
 * (signer-status.ts). Building one Signer is signer-builder.ts's job.
 */
import { resolveSignerNameClaims, type SignerNameClaimant } from "../policy/signer-name-claims.js";
import { labelSelectorMatches } from "../policy/label-selector.js";
import type { SignerObject, SignerSpec, SignerStatus } from "../api/signer.js";
import {
  CertificateAuthoritySelector,
  type CertificateAuthorityParseObserver,
} from "./authority-selector.js";
import { secretNamespaceOf, type SecretObject } from "./ca-source.js";
import { RecordedRootsBook } from "./recorded-roots.js";
import { SignerStatusCounts } from "./signer-status-counts.js";
import { buildActiveSigner, type ActiveSigner } from "./signer-builder.js";
import type { SignerProblem } from "./signer-problem.js";
import { SignerTroubles } from "./signer-troubles.js";
import {
  desiredSignerStatus,
  problemWithCause,
  signerConditions,
  type ConditionWithoutTime,
} from "./signer-status.js";
import type { SigningKey } from "../pki/signing-key.js";
import type { TokenKeys } from "./token-keys.js";
import type { KeyDecryptions } from "./key-decryptions.js";

export interface NamespaceObject {
  metadata?: { name?: string; labels?: Record<string, string> };
  status?: { phase?: string };
}

export interface SignerSources {
  signers(): SignerObject[];
  /** One Signer by object name (default: looked up in signers()). */
  signer?(objectName: string): SignerObject | undefined;
  /** Secret `namespace/name`, of which the caller reads `dataKeys` (see SecretLookup). */
  secret(namespace: string, name: string, dataKeys: readonly string[]): SecretObject | undefined;
  namespaces(): NamespaceObject[];
  /**
   * The Secrets outside the controller's namespace the Signers read now, as "namespace/name",
   * after every rebuild: the watches of any other can stop.
   */
  tenantSecretsInUse?(keys: ReadonlySet<string>): void;
}

export class SignerRegistry {
  private bySignerName = new Map<string, ActiveSigner>();
  private byObjectName = new Map<string, ActiveSigner>();
  /** Each Signer as built from its object, before duplicate signer names are refused. */
  private built = new Map<string, { signer: ActiveSigner; created: string | Date | undefined }>();
  private readonly counts = new SignerStatusCounts();
  private readonly authorities: CertificateAuthoritySelector;
  /** Roots this process recorded (publication times, retirements), merged with Signer status. */
  private readonly recorded = new RecordedRootsBook();
  /** tenantNamespaces() answers, per parsed spec (a rebuild makes new specs). */
  private tenantsBySpec = new WeakMap<SignerSpec, ReadonlySet<string>>();
  /** What went wrong lately per Signer (publication, signing and approval writes, mesh config). */
  readonly troubles = new SignerTroubles((objectName) => this.byObjectName.has(objectName));

  constructor(
    private readonly sources: SignerSources,
    private readonly controllerNamespace: string,
    private readonly now: () => Date = () => new Date(),
    onCertificateAuthorityParse?: CertificateAuthorityParseObserver,
    /** Open PKCS#11 keys; absent: Signers naming certificateAuthority.pkcs11 cannot sign. */
    private readonly tokenKeys?: TokenKeys,
    /** Encrypted CA key files being decrypted off the event loop (default: polled by recheckAt). */
    keyDecryptions?: KeyDecryptions,
  ) {
    this.authorities = new CertificateAuthoritySelector(
      (namespace, name, dataKeys) => sources.secret(namespace, name, dataKeys),
      controllerNamespace,
      onCertificateAuthorityParse,
      tokenKeys,
      keyDecryptions,
    );
  }

  /**
   * The signer handling `signerName`, when one Signer (and only one) claims it. Its problem is the
   * Ready condition's headline (a root waiting on a failing publication names the failure), so a
   * waiting request's Event gives the same reason as the Signer.
   */
  forSignerName(signerName: string): ActiveSigner | undefined {
    const signer = this.bySignerName.get(signerName);
    if (!signer) return undefined;
    const problem = problemWithCause(signer.problem, this.troubles.publicationProblem(signer.objectName));
    return problem === signer.problem ? signer : { ...signer, problem };
  }

  all(): ActiveSigner[] {
    return [...this.byObjectName.values()];
  }

  /** The Signer object `objectName` as built, or undefined when there is none. */
  forObjectName(objectName: string): ActiveSigner | undefined {
    return this.byObjectName.get(objectName);
  }

  /**
   * Recomputes every signer from the caches. Returns the signer names whose ability to sign
   * changed (became ready or got a new CA), so their pending CSRs can be queued again.
   */
  rebuild(): string[] {
    this.built = new Map();
    for (const object of this.sources.signers()) this.build(object);
    return this.index().nowSigning;
  }

  /**
   * Recomputes Signer `objectName` from the caches (dropping it when its object is gone). Returns
   * the signer names whose ability to sign changed, and the other Signers whose claim on their
   * signer name changed with it (a duplicate that now owns the name, or lost it).
   */
  refresh(objectName: string): { nowSigning: string[]; claimsChanged: string[] } {
    const object = this.sources.signer
      ? this.sources.signer(objectName)
      : this.sources.signers().find((candidate) => candidate.metadata?.name === objectName);
    const before = this.byObjectName;
    this.built = new Map(this.built);
    if (object) this.build(object);
    else this.built.delete(objectName);
    const { nowSigning } = this.index();
    const claimsChanged = [...this.byObjectName].flatMap(([name, signer]) =>
      name !== objectName && before.get(name)?.problem?.reason !== signer.problem?.reason ? [name] : [],
    );
    return { nowSigning, claimsChanged };
  }

  /**
   * Object names of the Signers reading Secret `secretName` in `namespace` (default: the controller
   * namespace): their CA, their PKCS#11 PIN or their key passphrase.
   */
  usingSecret(secretName: string, namespace = this.controllerNamespace): string[] {
    return this.all().flatMap(({ objectName, spec }) =>
      spec &&
      secretNamesOf(spec.certificateAuthority).includes(secretName) &&
      secretNamespaceOf(spec.certificateAuthority, this.controllerNamespace) === namespace
        ? [objectName]
        : [],
    );
  }

  /**
   * Object names of the Signers reading mounted files: a CA folder, a PIN file, a passphrase file
   * (files are not watched: they are polled).
   */
  usingFolders(): string[] {
    return this.all().flatMap(({ objectName, spec }) => {
      const source = spec?.certificateAuthority;
      const pin = source?.pkcs11?.pin;
      return source?.path ||
        (pin && "file" in pin) ||
        (source?.keyPassphrase && "file" in source.keyPassphrase)
        ? [objectName]
        : [];
    });
  }

  /**
   * Signing with this Signer's CA key failed. A token error (the token vanished, the session broke)
   * closes the session and makes the Signer not ready until the token opens again; the problem is
   * returned. Undefined when the error is not the token's.
   */
  signingKeyFailed(objectName: string, key: SigningKey, error: unknown): SignerProblem | undefined {
    return this.tokenKeys?.signingFailed(objectName, key, error);
  }

  /** Object names of the Signers whose tenants include `namespace` now (they publish into it). */
  publishingInto(namespace: string): string[] {
    return this.all().flatMap(({ objectName, spec }) =>
      spec && this.tenantNamespaces(spec).has(namespace) ? [objectName] : [],
    );
  }

  /** Object names of the Signers whose tenants a change of Namespace `name` may change. */
  concerning(namespace: string): string[] {
    return this.all().flatMap(({ objectName, spec }) =>
      spec && (spec.policy.tenants.namespaceSelector || spec.policy.tenants.namespaces.includes(namespace))
        ? [objectName]
        : [],
    );
  }

  private build(object: SignerObject): void {
    const signer = buildActiveSigner(object, this.authorities, this.recorded, this.now());
    this.built.set(signer.objectName, { signer, created: object.metadata?.creationTimestamp });
  }

  /** Refuses duplicate signer names and indexes the rest; forgets Signers that are gone. */
  private index(): { nowSigning: string[] } {
    const previous = this.bySignerName;
    const byObjectName = new Map<string, ActiveSigner>();
    const claims = new Map<string, SignerNameClaimant[]>();
    for (const [name, { signer, created }] of this.built) {
      byObjectName.set(name, signer);
      if (signer.spec)
        claims.set(signer.spec.signerName, [
          ...(claims.get(signer.spec.signerName) ?? []),
          { objectName: name, creationTimestamp: created },
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
    this.counts.retainOnly(live);
    this.troubles.retainOnly(live);
    this.sources.tenantSecretsInUse?.(this.tenantSecrets());
    this.byObjectName = byObjectName;
    this.bySignerName = bySignerName;
    const nowSigning: string[] = [];
    for (const [signerName, signer] of bySignerName) {
      const before = previous.get(signerName);
      if (!signer.problem && (!before || before.problem || before.authority !== signer.authority))
        nowSigning.push(signerName);
    }
    return { nowSigning };
  }

  /** "namespace/name" of every Secret outside the controller's namespace that a Signer reads. */
  private tenantSecrets(): Set<string> {
    const keys = new Set<string>();
    for (const { signer } of this.built.values()) {
      const source = signer.spec?.certificateAuthority;
      const namespace = source && secretNamespaceOf(source, this.controllerNamespace);
      if (source && namespace !== this.controllerNamespace)
        for (const name of secretNamesOf(source)) keys.add(`${namespace}/${name}`);
    }
    return keys;
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
    this.counts.countIssued(objectName);
  }

  countFailed(objectName: string): void {
    this.counts.countFailed(objectName);
  }

  /** The conditions Signer `objectName` should have now (for the condition gauge); undefined when unknown. */
  conditions(objectName: string): ConditionWithoutTime[] | undefined {
    const signer = this.byObjectName.get(objectName);
    return signer && signerConditions(signer, this.troubles.facts(objectName));
  }

  /** metadata.uid of the cached Signer object (Events name it). */
  uid(objectName: string): string | undefined {
    return this.object(objectName)?.metadata?.uid;
  }

  private object(objectName: string): SignerObject | undefined {
    return this.sources.signer
      ? this.sources.signer(objectName)
      : this.sources.signers().find((candidate) => candidate.metadata?.name === objectName);
  }

  /**
   * The status the Signer object has: the cached one, with our last written counts when the cache
   * has not caught up with that write yet. Undefined when the object is not cached.
   */
  currentStatus(objectName: string): SignerStatus | undefined {
    const object = this.object(objectName);
    return object && this.counts.current(objectName, object.status ?? {});
  }

  /**
   * The status a Signer object should have now, or undefined when what it has is current.
   * Counters add what was counted since its status was last written; `statusWritten` resets them.
   */
  desiredStatus(objectName: string): SignerStatus | undefined {
    const signer = this.byObjectName.get(objectName);
    const current = this.currentStatus(objectName);
    if (!signer || !current) return undefined;
    const since = this.counts.since(objectName);
    const desired = desiredSignerStatus(signer, current, {
      ...this.troubles.facts(objectName),
      issuedSince: since.issued,
      failedSince: since.failed,
      recordedRoots: this.recorded.get(objectName),
      now: this.now(),
    });
    if (desired) this.counts.computed(desired, since);
    return desired;
  }

  /**
   * `status` (from desiredStatus) was written. Counts made while it was being written stay counted
   * for the next write.
   */
  statusWritten(objectName: string, status?: SignerStatus): void {
    this.counts.statusWritten(objectName, status);
  }

  markPublished(objectName: string): boolean {
    return this.recorded.markPublished(objectName, this.now());
  }
}

/** The Secrets a certificateAuthority names: the CA's, the PKCS#11 PIN's, the key passphrase's. */
function secretNamesOf(source: SignerSpec["certificateAuthority"]): string[] {
  const pin = source.pkcs11?.pin;
  const passphrase = source.keyPassphrase;
  return [
    ...(source.secretName ? [source.secretName] : []),
    ...(pin && "secret" in pin ? [pin.secret.name] : []),
    ...(passphrase && "secret" in passphrase ? [passphrase.secret.name] : []),
  ];
}

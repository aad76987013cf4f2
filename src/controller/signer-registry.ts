/**
 * The configured signers, rebuilt from the Signer, Secret and Namespace caches whenever any of
 * them changes. Pure bookkeeping plus CA loading: API writes (Signer status) go through the
 * injected writer, so the controller decides when (only while leading).
 */
import { createHash } from "node:crypto";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
  readCertificateAuthorityFolder,
  type CertificateAuthority,
} from "../pki/certificate-authority.js";
import type { ParsedCertificate } from "../pki/certificate.js";
import {
  labelSelectorMatches,
  parseSignerSpec,
  SignerSpecError,
  type SignerSpec,
} from "../policy/signer-spec.js";

export interface SignerObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; uid?: string; generation?: number; resourceVersion?: string };
  spec?: unknown;
  status?: SignerStatus;
}

export interface SignerCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface CertificateSummary {
  subject: string;
  notAfter: string;
  fingerprintSha256: string;
}

export interface SignerStatus {
  observedGeneration?: number;
  conditions?: SignerCondition[];
  certificateAuthority?: CertificateSummary & { issuer: string; roots: CertificateSummary[] };
  issuedCount?: number;
  failedCount?: number;
}

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
  reason: string;
  message: string;
}

/** A Signer as the reconciler uses it. */
export interface ActiveSigner {
  readonly objectName: string;
  readonly uid: string | undefined;
  readonly generation: number | undefined;
  readonly spec: SignerSpec | undefined;
  /** The CA in use: absent until one loads; kept when a later update is broken (see degraded). */
  readonly authority: CertificateAuthority | undefined;
  /** Set when the signer cannot sign at all. */
  readonly problem: SignerProblem | undefined;
  /** Set when a CA update was refused and the previous CA is still used. */
  readonly degraded: SignerProblem | undefined;
}

export interface SignerSources {
  signers(): SignerObject[];
  secret(namespace: string, name: string): SecretObject | undefined;
  namespaces(): NamespaceObject[];
}

interface LoadedAuthority {
  sourceHash: string;
  authority: CertificateAuthority;
}

export class SignerRegistry {
  private bySignerName = new Map<string, ActiveSigner>();
  private byObjectName = new Map<string, ActiveSigner>();
  /** Last CA that loaded per Signer object, by the hash of its source files. */
  private readonly loaded = new Map<string, LoadedAuthority>();
  private readonly issuedSinceStatus = new Map<string, number>();
  private readonly failedSinceStatus = new Map<string, number>();

  constructor(
    private readonly sources: SignerSources,
    private readonly controllerNamespace: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

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
    const claims = new Map<string, string[]>();
    for (const object of this.sources.signers()) {
      const name = object.metadata?.name ?? "";
      const signer = this.buildSigner(object);
      byObjectName.set(name, signer);
      if (signer.spec)
        claims.set(signer.spec.signerName, [...(claims.get(signer.spec.signerName) ?? []), name]);
    }
    const bySignerName = new Map<string, ActiveSigner>();
    for (const [signerName, objectNames] of claims) {
      if (objectNames.length > 1) {
        for (const objectName of objectNames) {
          const signer = byObjectName.get(objectName)!;
          byObjectName.set(objectName, {
            ...signer,
            problem: {
              reason: "DuplicateSignerName",
              message: `spec.signerName ${signerName} is also claimed by Signer ${objectNames.filter((n) => n !== objectName).join(", ")}`,
            },
          });
        }
        continue;
      }
      bySignerName.set(signerName, byObjectName.get(objectNames[0]!)!);
    }
    for (const name of this.loaded.keys()) if (!byObjectName.has(name)) this.loaded.delete(name);
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

  /** Tenant namespaces of a signer: those named plus those its selector matches (not terminating). */
  tenantNamespaces(spec: SignerSpec): Set<string> {
    const tenants = new Set(spec.policy.tenants.namespaces);
    const selector = spec.policy.tenants.namespaceSelector;
    if (selector) {
      for (const namespace of this.sources.namespaces()) {
        if (namespace.metadata?.name && labelSelectorMatches(selector, namespace.metadata.labels ?? {}))
          tenants.add(namespace.metadata.name);
      }
    }
    return tenants;
  }

  countIssued(objectName: string): void {
    this.issuedSinceStatus.set(objectName, (this.issuedSinceStatus.get(objectName) ?? 0) + 1);
  }

  countFailed(objectName: string): void {
    this.failedSinceStatus.set(objectName, (this.failedSinceStatus.get(objectName) ?? 0) + 1);
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
    const ready: Omit<SignerCondition, "lastTransitionTime"> = signer.problem
      ? { type: "Ready", status: "False", reason: signer.problem.reason, message: signer.problem.message }
      : {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: `signing with ${signer.authority?.signingCertificate.subject ?? "?"} (${signer.authority?.signingKey.description ?? ""})`,
        };
    const degraded: Omit<SignerCondition, "lastTransitionTime"> = signer.degraded
      ? { type: "Degraded", status: "True", reason: signer.degraded.reason, message: signer.degraded.message }
      : { type: "Degraded", status: "False", reason: "AsExpected", message: "" };
    const conditions = [ready, degraded].map((condition) => {
      const existing = current.conditions?.find((c) => c.type === condition.type);
      const unchanged =
        existing && existing.status === condition.status && existing.reason === condition.reason;
      return {
        ...condition,
        lastTransitionTime: unchanged
          ? existing.lastTransitionTime
          : this.now()
              .toISOString()
              .replace(/\.\d+Z$/, "Z"),
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

  private buildSigner(object: SignerObject): ActiveSigner {
    const objectName = object.metadata?.name ?? "";
    const base = { objectName, uid: object.metadata?.uid, generation: object.metadata?.generation };
    let spec: SignerSpec;
    try {
      spec = parseSignerSpec(object.spec);
    } catch (error) {
      if (!(error instanceof SignerSpecError)) throw error;
      return {
        ...base,
        spec: undefined,
        authority: undefined,
        degraded: undefined,
        problem: { reason: "InvalidSpec", message: error.message },
      };
    }
    const previous = this.loaded.get(objectName);
    let files: Record<string, Uint8Array | undefined>;
    let sourceName: string;
    try {
      ({ files, sourceName } = this.readSource(spec));
    } catch (error) {
      const problem = { reason: "CertificateAuthorityMissing", message: (error as Error).message };
      return this.withPrevious(base, spec, previous, problem);
    }
    const sourceHash = hashFiles(files);
    if (
      previous &&
      previous.sourceHash === sourceHash &&
      this.now() < previous.authority.signingCertificate.notAfter
    ) {
      return { ...base, spec, authority: previous.authority, problem: undefined, degraded: undefined };
    }
    try {
      const authority = loadCertificateAuthority(files, this.now());
      this.loaded.set(objectName, { sourceHash, authority });
      return { ...base, spec, authority, problem: undefined, degraded: undefined };
    } catch (error) {
      if (!(error instanceof CertificateAuthorityError)) throw error;
      return this.withPrevious(base, spec, previous, {
        reason: `CertificateAuthority${error.reason}`,
        message: `${sourceName}: ${error.message}`,
      });
    }
  }

  /** A broken update never replaces a working CA: keep signing with the previous one while it is valid. */
  private withPrevious(
    base: Pick<ActiveSigner, "objectName" | "uid" | "generation">,
    spec: SignerSpec,
    previous: LoadedAuthority | undefined,
    problem: SignerProblem,
  ): ActiveSigner {
    if (previous && this.now() < previous.authority.signingCertificate.notAfter) {
      return {
        ...base,
        spec,
        authority: previous.authority,
        problem: undefined,
        degraded: {
          reason: problem.reason,
          message: `update refused, still signing with the previous CA: ${problem.message}`,
        },
      };
    }
    return { ...base, spec, authority: undefined, problem, degraded: undefined };
  }

  private readSource(spec: SignerSpec): {
    files: Record<string, Uint8Array | undefined>;
    sourceName: string;
  } {
    const { secretName, path } = spec.certificateAuthority;
    if (secretName) {
      const sourceName = `Secret ${this.controllerNamespace}/${secretName}`;
      const secret = this.sources.secret(this.controllerNamespace, secretName);
      if (!secret) throw new Error(`${sourceName} not found`);
      const files: Record<string, Uint8Array> = {};
      for (const [key, value] of Object.entries(secret.data ?? {})) files[key] = Buffer.from(value, "base64");
      return { files, sourceName };
    }
    const sourceName = `folder ${path}`;
    try {
      return { files: readCertificateAuthorityFolder(path!), sourceName };
    } catch (error) {
      throw new Error(`${sourceName}: ${(error as Error).message}`);
    }
  }
}

function summarize(certificate: ParsedCertificate): CertificateSummary {
  return {
    subject: certificate.subject,
    notAfter: certificate.notAfter.toISOString().replace(/\.\d+Z$/, "Z"),
    fingerprintSha256: certificate.fingerprintSha256,
  };
}

function hashFiles(files: Record<string, Uint8Array | undefined>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort()) {
    const content = files[name];
    if (content === undefined) continue;
    hash.update(name).update("\0").update(content).update("\0");
  }
  return hash.digest("hex");
}

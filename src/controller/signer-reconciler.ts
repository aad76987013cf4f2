/**
 * reconcile(objectName) for one Signer: rebuild it from the caches, publish its trust bundle, write
 * its status, and say when to look again (the next rotation step, a publication hold, an expiry
 * warning). A Signer that no longer exists has its published copies withdrawn. Publication and
 * status writes happen only while this instance leads. The status written is compared with the
 * cached one first, so the watch echo of our own write is a no-op.
 */
import type { ParsedCertificate } from "../pki/certificate.js";
import type { Logger } from "../logger.js";
import type { TrustBundlePublication } from "../bundle/publication.js";
import type { ControllerMetrics } from "./metrics.js";
import type { ReconcileResult } from "./run-worker.js";
import { SignerStatusPacing } from "./signer-status-pacing.js";
import { changesOnlyCounts } from "./signer-status.js";
import type { SignerStatusWriter } from "./signer-status-writer.js";
import type { ActiveSigner } from "./signer-builder.js";
import type { SignerRegistry } from "./signer-registry.js";
import type { EventRecorder } from "../kube/events.js";
import { signerApiGroup, signerApiVersion, type SignerStatus } from "../api/signer.js";
import { signerStatusEvents } from "./signer-events.js";

/** The longest a deadline is waited for in one go (timers take at most ~24.8 days). */
const maximumWaitMs = 24 * 3600_000;

export interface SignerReconcilerHooks {
  isLeader(): boolean;
  now(): Date;
  /** Signer names that became able to sign (or got a new CA): their pending CSRs are queued. */
  signersReady(signerNames: ReadonlySet<string>): void;
  /** Other Signers to reconcile (their claim on a signer name changed with this one). */
  enqueue(objectName: string): void;
}

export class SignerReconciler {
  /** How often each Signer's status may be written (signer-status-pacing.ts). */
  private readonly pacing: SignerStatusPacing;
  /**
   * The status this process last wrote per Signer: what its Events compare with while the cache
   * has not caught up with that write (else each change would be announced twice).
   */
  private readonly lastWritten = new Map<string, SignerStatus>();

  constructor(
    private readonly registry: SignerRegistry,
    private readonly publication: TrustBundlePublication,
    private readonly statusWriter: SignerStatusWriter,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly hooks: SignerReconcilerHooks,
    /** Events on the Signer for what changed it (none in unit tests that leave it out). */
    private readonly events?: EventRecorder,
  ) {
    this.pacing = new SignerStatusPacing(() => hooks.now().getTime());
  }

  async reconcile(objectName: string): Promise<ReconcileResult> {
    const { nowSigning, claimsChanged } = this.registry.refresh(objectName);
    this.afterRebuild(nowSigning);
    for (const other of claimsChanged) this.hooks.enqueue(other);
    if (!this.hooks.isLeader()) {
      this.lastWritten.clear(); // another leader may write meanwhile: compare with the cache again
      return { kind: "done" };
    }
    const signer = this.registry.forObjectName(objectName);
    if (!signer) {
      this.pacing.forget(objectName);
      this.lastWritten.delete(objectName);
      await this.publication.withdraw(objectName);
      return { kind: "done" };
    }
    // A Signer refused its signer name publishes nothing (its copies would fight the owner's): what it
    // published before it lost the name is withdrawn.
    const published =
      signer.problem?.reason === "DuplicateSignerName"
        ? await this.publication.withdraw(objectName).then(() => "skipped" as const)
        : await this.publish(signer);
    this.recordConditions(objectName);
    const writeDueInMs = await this.writeStatusOf(objectName);
    // An incomplete publication (RBAC missing, API errors) is tried again with backoff.
    if (published === "incomplete") return { kind: "retry", reason: "PublicationIncomplete" };
    // New roots now count as published: the rotation gate may let the new material sign.
    if (published === "newly") return { kind: "after", milliseconds: 0 };
    const recheckAt = signer.recheckAt?.getTime();
    const recheckInMs =
      recheckAt === undefined
        ? undefined
        : Math.min(maximumWaitMs, Math.max(1, recheckAt - this.hooks.now().getTime()));
    const nextInMs = Math.min(recheckInMs ?? Infinity, writeDueInMs ?? Infinity);
    return nextInMs === Infinity ? { kind: "done" } : { kind: "after", milliseconds: nextInMs };
  }

  /** Rebuilds every Signer (at start, before the CSR cache needs to know which signer names are ours). */
  rebuildAll(): void {
    this.afterRebuild(this.registry.rebuild());
  }

  private afterRebuild(nowSigning: string[]): void {
    this.recordGauges();
    if (nowSigning.length > 0) {
      this.logger.info("signers ready", { signers: nowSigning });
      this.hooks.signersReady(new Set(nowSigning));
    }
  }

  private async publish(signer: ActiveSigner): Promise<"skipped" | "complete" | "newly" | "incomplete"> {
    const { spec, bundle } = signer;
    if (!spec || !bundle || bundle.certificates.length === 0) return "skipped"; // nothing valid to publish yet
    const result = await this.publication.publish(signer.objectName, {
      signerName: spec.signerName,
      configMap: spec.trustBundle.configMap,
      clusterTrustBundle: spec.trustBundle.clusterTrustBundle,
      bundle,
      tenants: this.registry.tenantNamespaces(spec),
    });
    for (const problem of result.problems)
      this.logger.warn("trust bundle publication problem", { signer: signer.objectName, problem });
    this.registry.troubles.reportPublication(signer.objectName, result.problems);
    if (!result.complete) return "incomplete";
    return this.registry.markPublished(signer.objectName) ? "newly" : "complete";
  }

  /**
   * Writes the Signer's status if it changed and its pace and the status limiter allow; else returns
   * in how many ms the write is due (the reconcile then comes back and writes the status as it is by then).
   */
  private async writeStatusOf(objectName: string): Promise<number | undefined> {
    const status = this.registry.desiredStatus(objectName);
    if (!status) return undefined;
    const current = this.registry.currentStatus(objectName) ?? {};
    const countsOnly = changesOnlyCounts(status, current);
    // Its own pace, then its turn at every Signer's limiter (asked only when its pace allows, so a
    // paced Signer holds no turn): come back rather than hold the one Signer worker.
    const paced = this.pacing.delayMs(objectName, countsOnly);
    if (paced > 0) return paced;
    const turn = Math.ceil(this.statusWriter.waitMs(objectName));
    if (turn > 0) return turn;
    this.pacing.wrote(objectName, countsOnly);
    const before = this.lastWritten.get(objectName) ?? current;
    const outcome = await this.statusWriter.write(objectName, status);
    if (outcome === "ok") {
      this.registry.statusWritten(objectName, status);
      this.lastWritten.set(objectName, status);
      this.announce(objectName, before, status);
    } else this.pacing.forget(objectName); // gone: nothing left to pace
    return undefined;
  }

  /** A log line and an Event on the Signer for each change the status write made (signer-events.ts). */
  private announce(objectName: string, before: SignerStatus, after: SignerStatus): void {
    const uid = this.registry.uid(objectName);
    for (const event of signerStatusEvents(before, after)) {
      const fields = { signer: objectName, reason: event.reason, message: event.message };
      if (event.type === "Warning") this.logger.warn("signer condition changed", fields);
      else this.logger.info("signer changed", fields);
      // Cluster-scoped, like CSRs: the recorder writes its Events to the default namespace.
      this.events?.record(
        {
          apiVersion: `${signerApiGroup}/${signerApiVersion}`,
          kind: "Signer",
          name: objectName,
          ...(uid ? { uid } : {}),
          // By name, not the recorder's default (the object, uid included): one tenant share
          // however often the Signer is deleted and created again, with or without its uid known.
          tenant: `signer:${objectName}`,
        },
        event.type,
        event.reason,
        event.message,
      );
    }
  }

  /** csr_signer_signer_condition of one Signer, after its publication problems are known. */
  private recordConditions(objectName: string): void {
    const signer = this.registry.forObjectName(objectName);
    const signerName = signer?.spec?.signerName ?? objectName;
    for (const condition of this.registry.conditions(objectName) ?? [])
      this.metrics.signerCondition.set(
        { signer: signerName, name: objectName, type: condition.type },
        condition.status === "True" ? 1 : 0,
      );
  }

  /** Rewritten from scratch each time, so retired CA certificates and deleted Signers drop out. */
  private recordGauges(): void {
    this.metrics.signerReady.reset();
    this.metrics.caExpiry.reset();
    this.metrics.signerCondition.reset();
    const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);
    for (const signer of this.registry.all()) {
      const signerName = signer.spec?.signerName ?? signer.objectName;
      this.metrics.signerReady.set({ signer: signerName }, signer.problem ? 0 : 1);
      this.recordConditions(signer.objectName);
      const authority = signer.authority;
      if (!authority) continue;
      const certificates: [string, ParsedCertificate][] = [
        ["signing", authority.signingCertificate],
        ...authority.intermediates.map((c): [string, ParsedCertificate] => ["intermediate", c]),
        ...authority.roots.map((c): [string, ParsedCertificate] => ["root", c]),
      ];
      for (const [role, certificate] of certificates)
        // The fingerprint tells apart certificates with one subject (a renewed root).
        this.metrics.caExpiry.set(
          {
            signer: signerName,
            role,
            subject: certificate.subject,
            fingerprint: certificate.fingerprintSha256,
          },
          seconds(certificate.notAfter),
        );
    }
  }
}

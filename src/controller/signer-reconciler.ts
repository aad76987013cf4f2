/**
 * The Signer side: rebuild the registry from the caches, publish each Signer's trust bundle, and
 * write each Signer's status. Publication and status writes happen only while this instance leads.
 */
import type { ParsedCertificate } from "../pki/certificate.js";
import { describeError } from "../kube/client.js";
import type { Logger } from "../logger.js";
import type { TrustBundlePublication } from "../bundle/publication.js";
import type { ControllerMetrics } from "./metrics.js";
import type { ReconcileResult } from "./run-worker.js";
import type { SignerStatus } from "../api/signer.js";
import type { SignerRegistry } from "./signer-registry.js";

/** Signer queue keys: a full round (rebuild, publish, status), or only the status write. */
export const signersKey = "signers";
export const statusKey = "status";

/** Writes /status of a Signer; "gone" when it no longer exists. */
export type SignerStatusWriter = (objectName: string, status: SignerStatus) => Promise<"ok" | "gone">;

export class SignerReconciler {
  constructor(
    private readonly registry: SignerRegistry,
    private readonly publication: TrustBundlePublication,
    private readonly writeStatus: SignerStatusWriter,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly isLeader: () => boolean,
    /** Called with the signer names that became able to sign (or got a new CA). */
    private readonly onSignersReady: (signerNames: ReadonlySet<string>) => void,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    if (key === statusKey) {
      // Counts and signing troubles only: no rebuild, no publication.
      if (this.isLeader()) await this.writeStatuses();
      return { kind: "done" };
    }
    this.rebuild();
    if (!this.isLeader()) return { kind: "done" };
    const complete = await this.publishTrustBundles();
    await this.writeStatuses();
    // An incomplete publication (RBAC missing, API errors) is tried again with backoff.
    return complete ? { kind: "done" } : { kind: "retry", reason: "PublicationIncomplete" };
  }

  rebuild(): void {
    const changed = this.registry.rebuild();
    // Rewritten from scratch each time, so retired CA certificates and deleted Signers drop out.
    this.metrics.signerReady.reset();
    this.metrics.caExpiry.reset();
    const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);
    for (const signer of this.registry.all()) {
      const signerName = signer.spec?.signerName ?? signer.objectName;
      this.metrics.signerReady.set({ signer: signerName }, signer.problem ? 0 : 1);
      const authority = signer.authority;
      if (!authority) continue;
      const certificates: [string, ParsedCertificate][] = [
        ["signing", authority.signingCertificate],
        ...authority.intermediates.map((c): [string, ParsedCertificate] => ["intermediate", c]),
        ...authority.roots.map((c): [string, ParsedCertificate] => ["root", c]),
      ];
      for (const [role, certificate] of certificates)
        this.metrics.caExpiry.set(
          // The fingerprint tells apart certificates with one subject (a renewed root).
          {
            signer: signerName,
            role,
            subject: certificate.subject,
            fingerprint: certificate.fingerprintSha256,
          },
          seconds(certificate.notAfter),
        );
    }
    if (changed.length > 0) {
      this.logger.info("signers ready", { signers: changed });
      this.onSignersReady(new Set(changed));
    }
  }

  /**
   * Publishes every Signer's bundle. Once all copies of a bundle are written its new roots count
   * as published, which may let new CA material be adopted: then the signers are rebuilt.
   * Returns false when some publication is incomplete.
   */
  private async publishTrustBundles(): Promise<boolean> {
    const live = new Set<string>();
    let newlyPublished = false;
    let allComplete = true;
    for (const signer of this.registry.all()) {
      live.add(signer.objectName);
      const { spec, bundle } = signer;
      if (!spec || !bundle || bundle.certificates.length === 0) continue; // nothing valid to publish yet
      const result = await this.publication.publish(signer.objectName, {
        signerName: spec.signerName,
        configMap: spec.trustBundle.configMap,
        clusterTrustBundle: spec.trustBundle.clusterTrustBundle,
        bundle,
        tenants: this.registry.tenantNamespaces(spec),
      });
      for (const problem of result.problems)
        this.logger.warn("trust bundle publication problem", { signer: signer.objectName, problem });
      this.registry.reportPublication(signer.objectName, result.problems);
      if (!result.complete) allComplete = false;
      else if (this.registry.markPublished(signer.objectName)) newlyPublished = true;
    }
    // Publications of Signers that no longer exist.
    for (const orphan of this.publication.publishers())
      if (!live.has(orphan)) await this.publication.withdraw(orphan);
    if (newlyPublished) this.rebuild();
    return allComplete;
  }

  private async writeStatuses(): Promise<void> {
    let failed = false;
    for (const signer of this.registry.all()) {
      const status = this.registry.desiredStatus(signer.objectName);
      if (!status) continue;
      try {
        if ((await this.writeStatus(signer.objectName, status)) === "ok")
          this.registry.statusWritten(signer.objectName);
      } catch (error) {
        failed = true;
        this.logger.warn("could not write Signer status", {
          signer: signer.objectName,
          error: describeError(error),
        });
      }
    }
    if (failed) throw new Error("some Signer statuses were not written");
  }
}

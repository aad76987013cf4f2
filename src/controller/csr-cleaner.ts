/**
 * Garbage collection of the CSRs our signers and approvers handled, with kube-controller-manager's
 * periods (issued, denied, failed: 1 h; pending: 24 h; expired certificate: at once) plus the
 * approved-but-never-signed ones it forgets. Runs on the leader only; deletes with a uid
 * precondition so a re-created CSR of the same name is never removed by mistake.
 */
import { X509Certificate } from "node:crypto";
import { describeError } from "../kube/client.js";
import type { Logger } from "../logger.js";
import { cleanupReason, type CleanupPeriods } from "../policy/csr-cleanup.js";
import type { CsrObject } from "./csr-object.js";
import type { ControllerMetrics } from "./metrics.js";

export class CsrCleaner {
  /** NotAfter of issued certificates by CSR uid, so a sweep does not re-parse every certificate. */
  private readonly notAfterByUid = new Map<string, Date | undefined>();

  constructor(
    private readonly periods: CleanupPeriods,
    private readonly handles: (signerName: string) => boolean,
    private readonly list: () => CsrObject[],
    private readonly remove: (name: string, uid: string) => Promise<void>,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Deletes what is due; returns how many were deleted. */
  async sweep(): Promise<number> {
    const now = this.now();
    const seen = new Set<string>();
    let deleted = 0;
    for (const csr of this.list()) {
      const { name, uid, creationTimestamp } = csr.metadata ?? {};
      if (!name || !uid || !creationTimestamp || !this.handles(csr.spec?.signerName ?? "")) continue;
      seen.add(uid);
      const reason = cleanupReason(
        {
          created: new Date(creationTimestamp),
          conditions: (csr.status?.conditions ?? []).map((condition) => ({
            type: condition.type,
            status: condition.status,
            ...(condition.lastUpdateTime ? { lastUpdateTime: new Date(condition.lastUpdateTime) } : {}),
            ...(condition.lastTransitionTime
              ? { lastTransitionTime: new Date(condition.lastTransitionTime) }
              : {}),
          })),
          ...this.certificateNotAfter(uid, csr),
        },
        now,
        this.periods,
      );
      if (!reason) continue;
      try {
        await this.remove(name, uid);
        deleted++;
        this.metrics.cleaned.inc({ reason });
        this.logger.info("deleted certificate request", { csr: name, reason });
      } catch (error) {
        // The next sweep tries again; a CSR deleted meanwhile simply disappears from the cache.
        this.logger.warn("could not delete certificate request", {
          csr: name,
          error: describeError(error),
        });
      }
    }
    for (const uid of this.notAfterByUid.keys()) if (!seen.has(uid)) this.notAfterByUid.delete(uid);
    return deleted;
  }

  private certificateNotAfter(uid: string, csr: CsrObject): { certificateNotAfter?: Date } {
    // Cached while foreign (its signer became ours later): issued, expiry unknown.
    if (csr.status?.certificateOmitted) return { certificateNotAfter: new Date(8.64e15) };
    if (!csr.status?.certificate) return {};
    if (!this.notAfterByUid.has(uid)) {
      let notAfter: Date | undefined;
      try {
        notAfter = new X509Certificate(Buffer.from(csr.status.certificate, "base64")).validToDate;
      } catch {
        notAfter = undefined; // unreadable: treated as issued without a known expiry
      }
      this.notAfterByUid.set(uid, notAfter);
    }
    const notAfter = this.notAfterByUid.get(uid);
    return notAfter ? { certificateNotAfter: notAfter } : { certificateNotAfter: new Date(8.64e15) };
  }
}

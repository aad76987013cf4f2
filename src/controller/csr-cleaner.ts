/**
 * Garbage collection of the CSRs our signers and approvers handled, with kube-controller-manager's
 * periods (issued, denied, failed: 1 h; pending: 24 h; expired certificate: at once) plus the
 * approved-but-never-signed ones it forgets. Runs on the leader only; deletes with a uid
 * precondition so a re-created CSR of the same name is never removed by mistake.
 */
import { describeError } from "../kube/client.js";
import { leafNotAfterMs } from "../pki/certificate.js";
import type { Logger } from "../logger.js";
import { cleanupReason, type CleanupPeriods } from "../policy/csr-cleanup.js";
import type { CsrObject } from "./csr-object.js";
import type { ControllerMetrics } from "./metrics.js";

export class CsrCleaner {
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
    let deleted = 0;
    for (const csr of this.list()) {
      const { name, uid, creationTimestamp } = csr.metadata ?? {};
      if (!name || !uid || !creationTimestamp || !this.handles(csr.spec?.signerName ?? "")) continue;
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
          ...certificateNotAfter(csr),
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
    return deleted;
  }
}

/**
 * The NotAfter the clean-up rules read: none without a certificate; the far future for one whose
 * expiry is unknown (a foreign CSR's, cached without it, or an unreadable one): issued, not expired.
 */
function certificateNotAfter(csr: CsrObject): { certificateNotAfter?: Date } {
  const { certificate, certificateOmitted: omitted } = csr.status ?? {};
  if (!certificate && !omitted) return {};
  let notAfterMs: number | undefined;
  if (omitted?.reason === "Ours") notAfterMs = omitted.notAfterMs;
  else if (!omitted) notAfterMs = leafNotAfterMs(certificate!); // a copy not from the cache holds the chain
  return { certificateNotAfter: new Date(notAfterMs ?? 8.64e15) };
}

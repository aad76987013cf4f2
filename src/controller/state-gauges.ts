/**
 * What the scrape-time gauges say, read from the caches (pure, so tests need no controller): how
 * long approved CSRs of our signers have waited for a certificate. Computed at scrape time: nothing
 * on the reconcile path pays for it. (Signer conditions are csr_signer_signer_condition, set by the
 * Signer reconciler.)
 */
import { hasCertificate, type CsrObject } from "./csr-object.js";

export interface ApprovedUnsigned {
  count: number;
  /** Seconds since the oldest such CSR was approved (its Approved condition's time, else creation). */
  oldestSeconds: number;
}

function epochMs(time: string | Date | undefined): number | undefined {
  if (time === undefined) return undefined;
  const ms = time instanceof Date ? time.getTime() : Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Per signer name: approved CSRs with no certificate and no Failed or Denied condition. Every name in
 * `signerNames` gets an entry (zero when none waits), so an alert on the age has a series to read.
 */
export function approvedUnsignedBySigner(
  csrs: Iterable<CsrObject>,
  signerNames: Iterable<string>,
  now: Date,
): Map<string, ApprovedUnsigned> {
  const result = new Map<string, ApprovedUnsigned>();
  for (const name of signerNames) result.set(name, { count: 0, oldestSeconds: 0 });
  for (const csr of csrs) {
    const signerName = csr.spec?.signerName;
    const status = csr.status;
    if (!signerName || !result.has(signerName) || hasCertificate(csr)) continue;
    let approved = false;
    let approvedAt: number | undefined;
    let finished = false;
    for (const condition of status?.conditions ?? []) {
      if (condition.status !== "True") continue;
      if (condition.type === "Failed" || condition.type === "Denied") finished = true;
      if (condition.type !== "Approved") continue;
      approved = true;
      approvedAt =
        epochMs(condition.lastUpdateTime) ??
        epochMs(condition.lastTransitionTime) ??
        epochMs(csr.metadata?.creationTimestamp);
    }
    if (finished || !approved) continue;
    const entry = result.get(signerName)!;
    entry.count += 1;
    // No time at all (never from a real API server): counted, with no age to add.
    if (approvedAt !== undefined)
      entry.oldestSeconds = Math.max(entry.oldestSeconds, (now.getTime() - approvedAt) / 1000);
  }
  return result;
}

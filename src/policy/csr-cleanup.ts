/**
 * When a CSR is deleted: kube-controller-manager's csrcleaner periods, plus approved-but-never-signed.
 * Pure: the caller (controller/csr-cleaner.ts) lists and deletes.
 */
/** Clean-up periods (kube-controller-manager's, plus approved-but-never-signed, which it forgets). */
export interface CleanupPeriods {
  finishedSeconds: number;
  pendingSeconds: number;
  approvedUnsignedSeconds: number;
}

/** How often the clean-up sweeps (kube-controller-manager's csrcleaner runs every minute too). */
export const defaultCleanupIntervalMs = 60_000;

export const defaultCleanupPeriods: CleanupPeriods = {
  finishedSeconds: 3600,
  pendingSeconds: 24 * 3600,
  approvedUnsignedSeconds: 24 * 3600,
};

export interface CleanupFacts {
  created: Date;
  conditions: readonly { type: string; status: string; lastUpdateTime?: Date; lastTransitionTime?: Date }[];
  /** NotAfter of the issued leaf, when there is a certificate. */
  certificateNotAfter?: Date;
}

/** Why (and so whether) a CSR should be deleted now; undefined: keep it. */
export function cleanupReason(
  facts: CleanupFacts,
  now: Date,
  periods: CleanupPeriods,
): "Expired" | "Issued" | "Denied" | "Failed" | "Pending" | "ApprovedUnsigned" | undefined {
  const age = (since: Date | undefined): number =>
    (now.getTime() - (since ?? facts.created).getTime()) / 1000;
  const condition = (type: string) => facts.conditions.find((c) => c.type === type && c.status === "True");
  const changed = (type: string): Date | undefined =>
    condition(type)?.lastUpdateTime ?? condition(type)?.lastTransitionTime;
  if (facts.certificateNotAfter && facts.certificateNotAfter <= now) return "Expired";
  if (condition("Denied")) return age(changed("Denied")) >= periods.finishedSeconds ? "Denied" : undefined;
  if (condition("Failed")) return age(changed("Failed")) >= periods.finishedSeconds ? "Failed" : undefined;
  if (facts.certificateNotAfter)
    return age(changed("Approved")) >= periods.finishedSeconds ? "Issued" : undefined;
  if (condition("Approved"))
    return age(changed("Approved")) >= periods.approvedUnsignedSeconds ? "ApprovedUnsigned" : undefined;
  return age(facts.created) >= periods.pendingSeconds ? "Pending" : undefined;
}

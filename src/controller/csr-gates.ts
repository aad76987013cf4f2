/**
 * Which handler, if any, a CSR goes to next. Pure. The gates run in cert-manager's order, but for
 * the certificate, which settles a CSR whether approved or not: gone -> nothing; not ours -> never
 * touched; Denied or Failed -> settled; certificate set -> done; not yet approved -> our approver
 * decides it, or (a CSR only our signer handles) it waits for someone else's approval; approved
 * for a signer we do not run -> not ours to sign; Signer unable to sign -> wait and retry;
 * otherwise sign.
 */
import { hasCertificate, hasCondition, type CsrObject } from "./csr-object.js";

/** What the handlers say about the CSR's signer name. */
export interface CsrOwnership {
  /** Our Signer for this signer name: whether it exists and can sign now. */
  signer: "none" | "ready" | "not ready";
  /** Whether our approver decides CSRs of this signer name. */
  approving: boolean;
}

export type CsrStep =
  | {
      step: "skip";
      gate:
        "gone" | "not ours" | "denied or failed" | "approved for a signer we do not run" | "certificate set";
    }
  | { step: "decide approval" }
  | { step: "wait for approval" }
  | { step: "wait for signer" }
  | { step: "sign" };

/**
 * Settled: Denied or Failed, or a certificate set (kube-apiserver refuses to take any of these back).
 * nextCsrStep skips such a CSR whatever else it holds, so its events need not enter the work queue:
 * among them the echo of every certificate we write.
 */
export function isSettled(csr: CsrObject): boolean {
  return hasCondition(csr, "Denied") || hasCondition(csr, "Failed") || hasCertificate(csr);
}

export function nextCsrStep(csr: CsrObject | undefined, ownership: CsrOwnership): CsrStep {
  if (!csr) return { step: "skip", gate: "gone" }; // istiod deletes its CSRs once it has the certificate
  if (ownership.signer === "none" && !ownership.approving) return { step: "skip", gate: "not ours" };
  if (hasCondition(csr, "Denied") || hasCondition(csr, "Failed"))
    return { step: "skip", gate: "denied or failed" };
  // Before the approval gate: kube-apiserver takes a certificate on an unapproved CSR from whoever
  // may sign for its signer name, and nothing is left to approve then (as kube-controller-manager's
  // approver sees it).
  if (hasCertificate(csr)) return { step: "skip", gate: "certificate set" };
  if (!hasCondition(csr, "Approved"))
    return ownership.approving ? { step: "decide approval" } : { step: "wait for approval" };
  // kubelet CSRs: we approve, kube-controller-manager signs.
  if (ownership.signer === "none") return { step: "skip", gate: "approved for a signer we do not run" };
  return ownership.signer === "ready" ? { step: "sign" } : { step: "wait for signer" };
}

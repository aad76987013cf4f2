import type { SignerConditionReason } from "../api/reasons.js";

/** Why a signer cannot sign right now; every reason is transient from a CSR's point of view. */
export interface SignerProblem {
  reason: SignerConditionReason;
  message: string;
}

import type { CertificateRequestRejectionReason } from "../api/reasons.js";

/**
 * A certificate request refused for what it is (not for who asked). `reason` is a CamelCase
 * word for conditions and metrics; `message` names the rule and never echoes key material.
 */
export class CertificateRequestError extends Error {
  constructor(
    readonly reason: CertificateRequestRejectionReason,
    message: string,
  ) {
    super(message);
    this.name = "CertificateRequestError";
  }
}

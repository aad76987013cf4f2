/**
 * The Signer object as the API serves it and the status the controller writes, and the
 * Namespace fields Signers read.
 */
import type { RecordedRoot } from "../bundle/trust-bundle.js";

export interface SignerObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
  };
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
  trustBundle?: { roots: RecordedRoot[] };
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

/** What the controller is configured with (the CLI builds it from flags; tests pass their own). */
import type { KubeConfig } from "@kubernetes/client-node";
import type { EventRecorder } from "../kube/events.js";
import type { defaultLeaderElectionTimings } from "../kube/leader-election.js";
import type { Logger } from "../logger.js";
import type { IssuanceEnvironment } from "../pki/issuance.js";
import type { CleanupPeriods } from "../policy/csr-cleanup.js";
import type { ApprovalSettings } from "./approver.js";
import type { MeshConfigMapRef } from "./istio-mesh-config-sync.js";
import type { BuildLabels } from "./metrics.js";
import type { TokenKeyBackend, TokenKeyTimings } from "./token-keys.js";

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Where CA Secrets and the leader Lease live. */
  namespace: string;
  workers: number;
  leaderElection: boolean;
  leaseName?: string;
  identity?: string;
  leaseTimings?: typeof defaultLeaderElectionTimings;
  /** host:port for /metrics, and for /healthz + /readyz; empty: no server. */
  metricsAddress?: string;
  probeAddress?: string;
  /**
   * /metrics over HTTPS behind TokenReview and SubjectAccessReview (default true); false: plain HTTP,
   * anyone may read. The serving certificate is tls.crt and tls.key in metricsCertDir (reloaded when
   * they change), else a self-signed one made at start.
   */
  metricsSecure?: boolean;
  metricsCertDir?: string;
  /** How often metricsCertDir is re-read besides on file events (default 10 s). */
  metricsCertPollMs?: number;
  /** How often mounted CA folders, PIN and passphrase files are re-read (Secrets are watched). */
  caFolderPollMs?: number;
  resyncMs?: number;
  watchdogMs?: number;
  logger: Logger;
  environment?: IssuanceEnvironment;
  /** Uniform in [0, 1): where a pod certificate's beginRefreshAt falls in its refresh band (tests pin it). */
  podCertificateRandom?: () => number;
  events?: EventRecorder;
  /** Approval automation for kubelet certificates (tenant Signers opt in through spec.approval). */
  approval?: ApprovalSettings;
  /** /healthz fails when one work item or list call has run longer than this (default 10 min). */
  stallAfterMs?: number;
  /** How long a CSR of ours may wait for approval before it gets a WaitingApproval Event (default 10 s). */
  waitingApprovalGraceMs?: number;
  /** CSR clean-up; kube-controller-manager's periods by default, every minute. false: off. */
  cleanup?: (CleanupPeriods & { intervalMs: number }) | false;
  /** Istio mesh ConfigMaps whose meshConfig caCertificates are kept in sync (none by default). */
  istioMeshConfigs?: readonly MeshConfigMapRef[];
  /** How often those are re-checked besides after Signer changes (default 60 s). */
  istioMeshConfigResyncMs?: number;
  /** How a Signer's PKCS#11 key is opened (default: src/pki/pkcs11) and how failures are retried. */
  tokenKeys?: { backend?: TokenKeyBackend; timings?: TokenKeyTimings };
  /** The version and commit csr_signer_build_info reports (default: package.json's, commit "unknown"). */
  build?: BuildLabels;
}

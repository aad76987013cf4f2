/**
 * The CSR side wired to the API: the approver and the signer handlers behind one reconciler, and
 * the clean-up of handled CSRs.
 */
import type { KubeApi } from "../kube/api-client.js";
import { csrUrl, kubernetesApprovalApi, kubernetesCsrApi } from "../kube/csr-api-binding.js";
import type { EventRecorder } from "../kube/events.js";
import type { IssuanceEnvironment } from "../pki/issuance.js";
import { defaultCleanupIntervalMs, defaultCleanupPeriods } from "../policy/csr-cleanup.js";
import { CsrApprover } from "./approver.js";
import type { ControllerOptions } from "./controller-options.js";
import { CsrCleaner } from "./csr-cleaner.js";
import type { CsrFirstSeen } from "./csr-first-seen.js";
import type { WrittenCertificates } from "./written-certificates.js";
import type { CsrObject } from "./csr-object.js";
import { CsrReconciler } from "./csr-reconciler.js";
import type { ControllerMetrics } from "./metrics.js";
import type { NodeAddressIndex } from "./node-address-index.js";
import type { SignerRegistry } from "./signer-registry.js";

export interface CsrHandlers {
  reconciler: CsrReconciler;
  /** Absent when clean-up is off. */
  cleaner: { sweep(): Promise<number>; intervalMs: number } | undefined;
}

export function buildCsrHandlers(
  api: KubeApi,
  options: ControllerOptions,
  shared: {
    registry: SignerRegistry;
    csrs: { get(name: string): CsrObject | undefined; list(): CsrObject[] };
    nodeAddresses: NodeAddressIndex;
    events: EventRecorder;
    metrics: ControllerMetrics;
    environment: IssuanceEnvironment;
    firstSeen: CsrFirstSeen;
    /** Told of each certificate before its write is sent (the CSR cache's transform takes them). */
    writtenCertificates: WrittenCertificates;
    /** Asked right before each CSR status write is sent (leader election); absent: always. */
    stillLeading?: () => boolean;
  },
): CsrHandlers {
  const { registry, csrs, events, metrics, environment } = shared;
  const { logger } = options;
  const now = (): Date => environment.now();
  const approver = new CsrApprover(
    options.approval ?? {},
    registry,
    shared.nodeAddresses,
    kubernetesApprovalApi(api),
    events,
    metrics,
    logger,
    now,
  );
  const reconciler = new CsrReconciler(
    registry,
    csrs,
    kubernetesCsrApi(api, shared.stillLeading),
    events,
    metrics,
    logger,
    environment,
    approver,
    options.waitingApprovalGraceMs,
    shared.firstSeen,
    shared.writtenCertificates,
  );
  if (options.cleanup === false) return { reconciler, cleaner: undefined };
  const cleanup = options.cleanup ?? { ...defaultCleanupPeriods, intervalMs: defaultCleanupIntervalMs };
  const cleaner = new CsrCleaner(
    cleanup,
    (signerName) => registry.forSignerName(signerName) !== undefined || approver.handles(signerName),
    () => csrs.list(),
    async (name, uid) => {
      await api.delete(csrUrl(name), { preconditions: { uid } });
    },
    metrics,
    logger,
    now,
  );
  return { reconciler, cleaner: { sweep: () => cleaner.sweep(), intervalMs: cleanup.intervalMs } };
}

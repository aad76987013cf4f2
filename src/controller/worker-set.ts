/**
 * The worker set: `workers` CSR workers and as many PodCertificateRequest workers (both only while
 * this instance leads), and one Signer worker. A request's reconcile nudges its Signer's key, so
 * counts and troubles reach the Signer's status.
 */
import type { Logger } from "../logger.js";
import type { ControllerCollaborators } from "./collaborators.js";
import { lookAgainSoon, runWorker, type ReconcileResult } from "./run-worker.js";

type WorkerParts = Pick<
  ControllerCollaborators,
  | "metrics"
  | "progress"
  | "leadership"
  | "queues"
  | "registry"
  | "informers"
  | "csrReconciler"
  | "podCertificateReconciler"
  | "signerReconciler"
>;

/** Counts and troubles reach the Signer's status in one write per 2 s at most (addAfter coalesces). */
const signerStatusCoalesceMs = 2000;

/** Starts the workers; each loop resolves once its queue shuts down. */
export function startWorkerSet(
  parts: WorkerParts,
  options: { workers: number; logger: Logger },
): Promise<void>[] {
  const { metrics, progress, leadership, queues, signerReconciler } = parts;
  const loops: Promise<void>[] = [];
  const common = { progress, logger: options.logger };
  const csrMetrics = { controller: "certificatesigningrequest", recorder: metrics };
  const beforeEach = (): Promise<void> => leadership.wait();
  for (let i = 0; i < options.workers; i++)
    loops.push(
      runWorker(queues.csrs, (name) => reconcileCsr(parts, name), {
        ...common,
        name: "csr",
        metrics: csrMetrics,
        beforeEach,
        // Every delayed add of a CSR key is a deadline its reconcile derives afresh from the cache
        // (a retry, the end of an approval grace period, for which waitForApproval answers "after"
        // while it stands), so the reconcile's answer replaces it.
        takingDropsDelayed: true,
      }),
    );
  const podCertificateMetrics = { controller: "podcertificaterequest", recorder: metrics };
  for (let i = 0; i < options.workers; i++)
    loops.push(
      runWorker(queues.podCertificateRequests, (key) => reconcilePodCertificateRequest(parts, key), {
        ...common,
        name: "podcertificaterequest",
        metrics: podCertificateMetrics,
        beforeEach,
      }),
    );
  loops.push(
    runWorker(queues.signers, (name) => signerReconciler.reconcile(name), {
      ...common,
      name: "signer",
    }),
  );
  return loops;
}

async function reconcileCsr(parts: WorkerParts, name: string): Promise<ReconcileResult> {
  if (!parts.leadership.isLeader) return lookAgainSoon;
  const signer = parts.registry.forSignerName(parts.informers.csrs.get(name)?.spec?.signerName ?? "");
  try {
    return await parts.csrReconciler.reconcile(name);
  } finally {
    if (signer) parts.queues.signers.addAfter(signer.objectName, signerStatusCoalesceMs);
  }
}

async function reconcilePodCertificateRequest(parts: WorkerParts, key: string): Promise<ReconcileResult> {
  if (!parts.leadership.isLeader) return lookAgainSoon;
  const [namespace = "", name = ""] = key.split("/", 2);
  const pcr = parts.informers.podCertificateRequests.get(name, namespace);
  const signer = parts.podCertificateReconciler.signerFor(pcr?.spec?.signerName ?? "");
  try {
    return await parts.podCertificateReconciler.reconcile(key);
  } finally {
    if (signer) parts.queues.signers.addAfter(signer.objectName, signerStatusCoalesceMs);
  }
}

/**
 * One worker loop over a work queue, as sample-controller's processNextWorkItem: take a key,
 * reconcile it, act on the result (forget, back off, or come back later), mark it done. A thrown
 * error is a transient failure: logged, counted and retried with backoff.
 */
import { describeError } from "../kube/client.js";
import type { Logger } from "../logger.js";
import type { ControllerMetrics } from "./metrics.js";
import type { ProgressMonitor } from "./progress-monitor.js";
import type { WorkQueue } from "./work-queue.js";

/** What the worker does next with the key. */
export type ReconcileResult =
  | { kind: "done" }
  /** Transient trouble: back off (per key, exponentially) and try again. */
  | { kind: "retry"; reason: string }
  /** Nothing wrong; look again after `milliseconds` (a deadline, a grace period). */
  | { kind: "after"; milliseconds: number };

export interface WorkerOptions {
  /** What the worker reconciles ("csr", "signer"): names its current item in /healthz and logs. */
  name: string;
  progress: ProgressMonitor;
  logger: Logger;
  /** controller-runtime's reconcile metrics under this controller label; absent: not counted. */
  metrics?: { controller: string; recorder: ControllerMetrics };
  /** Awaited before taking each key (a follower waits for the lease here). */
  beforeEach?: () => Promise<void>;
  /**
   * Taking a key drops its pending delayed add (a grace period's end, a retry): for queues whose
   * reconcile reads everything afresh and answers "after" or "retry" for every deadline still
   * standing, so the reconcile's result replaces it (the CSR queue). A delayed add made while the
   * reconcile runs (an event meanwhile) stands. A CSR signed 5 ms after its creation then costs no
   * reconcile when its WaitingApproval grace period would have ended.
   */
  takingDropsDelayed?: boolean;
}

/**
 * Not leading at the moment a key was taken or a write was to go out (the lease lost, or a renewal
 * late): look again in a second. A late renewal that succeeds brings no takeover to requeue the key.
 */
export const lookAgainSoon: ReconcileResult = { kind: "after", milliseconds: 1000 };

/** Runs until the queue shuts down. */
export async function runWorker(
  queue: WorkQueue,
  reconcile: (key: string) => Promise<ReconcileResult>,
  options: WorkerOptions,
): Promise<void> {
  const { name, logger } = options;
  // Made once per runWorker call, not per key: the progress entry and the label sets.
  const progress = options.progress.watchWorker(name);
  const metrics = options.metrics && {
    recorder: options.metrics.recorder,
    controller: { controller: options.metrics.controller },
    success: { controller: options.metrics.controller, result: "success" },
    requeue: { controller: options.metrics.controller, result: "requeue" },
  };
  try {
    for (;;) {
      await options.beforeEach?.();
      const key = await queue.get();
      if (key === undefined) return;
      if (options.takingDropsDelayed) queue.dropDelayed(key);
      const started = Date.now();
      let result: ReconcileResult;
      progress.begin(key);
      try {
        result = await reconcile(key);
      } catch (error) {
        metrics?.recorder.reconcileErrors.inc(metrics.controller);
        logger.error(`${name} reconcile failed`, { [name]: key, error: describeError(error) });
        result = { kind: "retry", reason: "Error" };
      } finally {
        progress.end();
      }
      if (metrics) {
        metrics.recorder.reconcileTime.observe(metrics.controller, (Date.now() - started) / 1000);
        metrics.recorder.reconcileTotal.inc(result.kind === "done" ? metrics.success : metrics.requeue);
      }
      if (result.kind === "retry") queue.addRateLimited(key);
      else {
        queue.forget(key);
        if (result.kind === "after") queue.addAfter(key, result.milliseconds);
      }
      queue.done(key, started);
    }
  } finally {
    progress.close();
  }
}

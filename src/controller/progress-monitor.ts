/**
 * What /healthz answers: whether this process can still make progress, so that a restart would
 * help. It would when a worker has been stuck on one item for too long (an API call that never
 * returns, a Signer round that never ends) or a cache has hung inside one list call. It would not
 * when the API server is down or refuses us: calls then fail and are retried, which /readyz
 * reports, and restarting would only add load. A blocked event loop cannot answer /healthz at all,
 * which the probe's timeout already treats as a failure.
 */
import type { Clock } from "../api/clock.js";

/** Something else whose progress is watched (a cache's list call); worker loops use watchWorker(). */
export interface ProgressSource {
  readonly name: string;
  /** When its current step began (ms since the epoch), or undefined when it is between steps. */
  busySince(): number | undefined;
}

/**
 * One worker loop's progress, made once per loop: begin() and end() around each key write two
 * fields, so a key costs no Map entry, key string or extra async frame (ProgressMonitor.track's
 * cost about 15 of the 1,470 µs a certificate took under the profiler, BENCHMARKS.md ninth pass).
 */
export class WorkerProgress {
  /** The key of the current step, or undefined between steps. */
  private key: string | undefined;
  private since = 0;

  constructor(
    readonly worker: string,
    private readonly now: Clock["now"],
    private readonly onClose: (step: WorkerProgress) => void,
  ) {}

  begin(key: string): void {
    this.key = key;
    this.since = this.now();
  }

  end(): void {
    this.key = undefined;
  }

  /** The worker loop is over: the monitor forgets it. */
  close(): void {
    this.key = undefined;
    this.onClose(this);
  }

  /** `[what, since]` of the current step, or undefined between steps. */
  current(): [string, number] | undefined {
    return this.key === undefined ? undefined : [`worker ${this.worker} ${this.key}`, this.since];
  }
}

export class ProgressMonitor {
  private readonly sources: ProgressSource[] = [];
  private readonly workers = new Set<WorkerProgress>();

  constructor(
    /** A single step longer than this means no progress. */
    private readonly stallAfterMs: number,
    private readonly now: Clock["now"] = Date.now,
  ) {}

  watch(source: ProgressSource): void {
    this.sources.push(source);
  }

  /** Watches a worker loop until close(); its current key shows as "worker <name> <key>". */
  watchWorker(name: string): WorkerProgress {
    const step = new WorkerProgress(name, this.now, (closed) => this.workers.delete(closed));
    this.workers.add(step);
    return step;
  }

  /** Why no progress is being made; empty when all is well. */
  problems(): string[] {
    const now = this.now();
    const steps: [string, number | undefined][] = [];
    for (const step of this.workers) {
      const current = step.current();
      if (current) steps.push(current);
    }
    for (const source of this.sources) steps.push([source.name, source.busySince()]);
    const problems: string[] = [];
    for (const [name, since] of steps) {
      if (since !== undefined && now - since > this.stallAfterMs)
        problems.push(
          `${name} stuck in one step for ${Math.round((now - since) / 1000)}s (limit ${Math.round(this.stallAfterMs / 1000)}s)`,
        );
    }
    return problems;
  }
}

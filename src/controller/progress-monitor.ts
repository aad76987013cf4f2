/**
 * What /healthz answers: whether this process can still make progress, so that a restart would
 * help. It would when a worker has been stuck on one item for too long (an API call that never
 * returns, a Signer round that never ends) or a cache has hung inside one list call. It would not
 * when the API server is down or refuses us: calls then fail and are retried, which /readyz
 * reports, and restarting would only add load. A blocked event loop cannot answer /healthz at all,
 * which the probe's timeout already treats as a failure.
 */
import type { Clock } from "../api/clock.js";

/** Something whose progress is watched: a worker loop (watchWorker), or a cache's list call (watch). */
export interface ProgressSource {
  readonly name: string;
  /** When its current step began (ms since the epoch), or undefined when it is between steps. */
  busySince(): number | undefined;
}

/**
 * One worker loop's progress, made once per loop: begin() and end() around each key write two
 * fields, so a key costs no Map entry, key string or extra async frame (ProgressMonitor.track's
 * cost about 18 of the 1,467 µs a certificate took under the profiler, BENCHMARKS.md ninth pass).
 * Its name, built only when /healthz asks, says the key it is on.
 */
export class WorkerProgress implements ProgressSource {
  /** The key of the current step, or undefined between steps. */
  private key: string | undefined;
  private since = 0;

  constructor(
    private readonly worker: string,
    private readonly now: Clock["now"],
    private readonly onClose: (closed: WorkerProgress) => void,
  ) {}

  get name(): string {
    return `worker ${this.worker} ${this.key ?? ""}`;
  }

  busySince(): number | undefined {
    return this.key === undefined ? undefined : this.since;
  }

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
}

export class ProgressMonitor {
  private readonly workers = new Set<WorkerProgress>();
  private readonly sources: ProgressSource[] = [];

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
    const worker = new WorkerProgress(name, this.now, (closed) => this.workers.delete(closed));
    this.workers.add(worker);
    return worker;
  }

  /** Why no progress is being made; empty when all is well. */
  problems(): string[] {
    const now = this.now();
    const problems: string[] = [];
    for (const source of [...this.workers, ...this.sources]) {
      const since = source.busySince();
      if (since !== undefined && now - since > this.stallAfterMs)
        problems.push(
          `${source.name} stuck in one step for ${Math.round((now - since) / 1000)}s (limit ${Math.round(this.stallAfterMs / 1000)}s)`,
        );
    }
    return problems;
  }
}

/**
 * What /healthz answers: whether this process can still make progress, so that a restart would
 * help. It would when a worker has been stuck on one item for too long (an API call that never
 * returns, a Signer round that never ends) or a cache has hung inside one list call. It would not
 * when the API server is down or refuses us: calls then fail and are retried, which /readyz
 * reports, and restarting would only add load. A blocked event loop cannot answer /healthz at all,
 * which the probe's timeout already treats as a failure.
 */
import type { Clock } from "../api/clock.js";

/** Something whose progress is watched: a worker's current item, or a cache's list call. */
export interface ProgressSource {
  readonly name: string;
  /** When its current step began (ms since the epoch), or undefined when it is between steps. */
  busySince(): number | undefined;
}

export class ProgressMonitor {
  private readonly sources: ProgressSource[] = [];
  private readonly workingSince = new Map<string, number>();

  constructor(
    /** A single step longer than this means no progress. */
    private readonly stallAfterMs: number,
    private readonly now: Clock["now"] = Date.now,
  ) {}

  watch(source: ProgressSource): void {
    this.sources.push(source);
  }

  /** Runs `work` as `worker`'s current step. */
  async track<T>(worker: string, work: () => Promise<T>): Promise<T> {
    this.workingSince.set(worker, this.now());
    try {
      return await work();
    } finally {
      this.workingSince.delete(worker);
    }
  }

  /** Why no progress is being made; empty when all is well. */
  problems(): string[] {
    const now = this.now();
    const steps: [string, number | undefined][] = [
      ...[...this.workingSince].map(([worker, since]): [string, number] => [`worker ${worker}`, since]),
      ...this.sources.map((source): [string, number | undefined] => [source.name, source.busySince()]),
    ];
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

/**
 * A keyed work queue with client-go's guarantees: a key waiting is queued once however often it
 * is added (de-duplication); a key being processed is never handed to a second worker (it is
 * re-queued when its processing ends if it was added meanwhile); failures back off per key
 * exponentially, combined with an overall token bucket.
 */
import { TokenBucket } from "../kube/token-bucket.js";
import { systemClock, type Clock } from "../api/clock.js";

export interface WorkQueueMetrics {
  depth(value: number): void;
  added(): void;
  retried(): void;
  queued(waitSeconds: number): void;
  worked(seconds: number): void;
}

export interface RateLimits {
  /** First retry delay, doubled per consecutive failure of the same key. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Overall retries per second and burst (a token bucket), as client-go's default 10/100. */
  ratePerSecond: number;
  burst: number;
}

const defaultRateLimits: RateLimits = {
  baseDelayMs: 5,
  maxDelayMs: 1000_000,
  ratePerSecond: 10,
  burst: 100,
};

/** Past this many retry shares, the idle (full) buckets are dropped when a new share comes. */
const maxRetryShares = 1000;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  /** Keys being processed, and since when (clock ms): workqueue_unfinished_work_seconds reads them. */
  private readonly processing = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { cancel(): void; at: number }>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  /** The overall retry limit, one token bucket per share (see retryShareOf). */
  private readonly retryBuckets = new Map<string, TokenBucket>();
  private shuttingDown = false;

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly limits: RateLimits = defaultRateLimits,
    private readonly metrics?: WorkQueueMetrics,
    /**
     * The share a key's retries count against (a tenant's signer name): each share has its own
     * overall retry limit, so retries flooded by one tenant (a broken CA and a stream of approved
     * CSRs) never hold back another's. Absent: one limit for all keys, as client-go's.
     */
    private readonly retryShareOf: (key: string) => string = () => "",
  ) {}

  get length(): number {
    return this.queue.length;
  }

  /** Queues `key` now unless it is already waiting. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.added();
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return; // re-queued by done()
    this.push(key);
  }

  /** Queues `key` after `milliseconds`; an earlier pending delay for the key wins. */
  addAfter(key: string, milliseconds: number): void {
    if (this.shuttingDown) return;
    if (milliseconds <= 0) return this.add(key);
    const at = this.clock.now() + milliseconds;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, milliseconds);
    this.delayed.set(key, { cancel: timer.cancel, at });
  }

  /** Queues `key` after its backoff: per-key exponential, and never faster than the token bucket. */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.metrics?.retried();
    const perKey = Math.min(this.limits.baseDelayMs * 2 ** failures, this.limits.maxDelayMs);
    this.addAfter(key, Math.max(perKey, this.retryBucket(key).reserve()));
  }

  /** Drops the delayed add of `key` pending, if any (a deadline that no longer stands). */
  dropDelayed(key: string): void {
    this.delayed.get(key)?.cancel();
    this.delayed.delete(key);
  }

  /**
   * The retry bucket of `key`'s share. Full buckets (which act as new ones) are dropped once there
   * are many, so the map is bounded by the shares retrying at once.
   */
  private retryBucket(key: string): TokenBucket {
    const share = this.retryShareOf(key);
    let bucket = this.retryBuckets.get(share);
    if (bucket) return bucket;
    if (this.retryBuckets.size >= maxRetryShares)
      for (const [name, idle] of this.retryBuckets) if (idle.isFull()) this.retryBuckets.delete(name);
    bucket = new TokenBucket(this.limits.ratePerSecond, this.limits.burst, () => this.clock.now());
    this.retryBuckets.set(share, bucket);
    return bucket;
  }

  /** Clears the failure count of `key` (after a success or a permanent outcome). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How long, in seconds, each key now being processed has been (at scrape time, never per item). */
  processingSeconds(): number[] {
    const now = this.clock.now();
    return [...this.processing.values()].map((since) => (now - since) / 1000);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process; undefined once the queue shuts down. */
  async get(): Promise<string | undefined> {
    if (this.queue.length > 0) return this.take();
    if (this.shuttingDown) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile it is queued again now. */
  done(key: string, startedAt: number): void {
    this.processing.delete(key);
    this.metrics?.worked((this.clock.now() - startedAt) / 1000);
    if (this.dirty.has(key)) this.push(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const timer of this.delayed.values()) timer.cancel();
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.queue.push(key);
      waiter(this.take());
      return;
    }
    this.queue.push(key);
    this.metrics?.depth(this.queue.length);
  }

  private take(): string {
    const key = this.queue.shift()!;
    this.dirty.delete(key);
    this.processing.set(key, this.clock.now());
    this.metrics?.depth(this.queue.length);
    this.metrics?.queued((this.clock.now() - (this.addedAt.get(key) ?? this.clock.now())) / 1000);
    this.addedAt.delete(key);
    return key;
  }
}

/**
 * A token bucket, as client-go's flowcontrol: `ratePerSecond` tokens a second, at most `burst`
 * saved up. Shared by the API client limiter, the Lease's own limiter, the work queue's overall retry
 * limit and the Event recorder's budget.
 */
import type { Clock } from "../api/clock.js";

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: Clock["now"] = Date.now,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  /** Takes a token if one is saved up (true); else takes nothing (false): for dropping, not waiting. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** How many milliseconds until a token is saved up (0: one is), taking nothing. */
  availableInMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.ratePerSecond) * 1000;
  }

  /** Whether it is full: then it acts as a new one would, and can be dropped and made again. */
  isFull(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }

  /** Takes a token; returns how many milliseconds to wait before using it (0: one was saved up). */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.ratePerSecond) * 1000;
  }

  /** Takes a token and waits until it is due (at once when one is saved up): a client rate limit. */
  async take(): Promise<void> {
    const waitMs = this.reserve();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerSecond);
    this.at = now;
  }
}

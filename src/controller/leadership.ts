/**
 * Whether this instance leads, and a wait for it: CSR workers wait here while another replica
 * leads. Without leader election this instance always leads.
 */
import { systemClock, type Clock } from "../api/clock.js";
import type { LeaderElector } from "../kube/leader-election.js";

export class Leadership {
  private readonly waiters: (() => void)[] = [];

  /** How many workers are waiting now (for tests: a long wait must not pile up entries). */
  get waiting(): number {
    return this.waiters.length;
  }
  private released = false;
  /** The elector's last report (onChange): it holds the lease. */
  private reportedLeading = false;

  constructor(
    private readonly elector: Pick<LeaderElector, "isLeader"> | undefined,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Leads at this moment: false also while a late lease renewal is in flight (the renew deadline passed). */
  get isLeader(): boolean {
    return this.elector?.isLeader ?? true;
  }

  /**
   * Holds the lease as the elector last reported it (acquired, not lost since): what decides
   * whether requests are queued. Unlike isLeader it stays true while a late renewal is in flight,
   * which ends without a report when it succeeds, so nothing that arrives meanwhile is dropped.
   */
  get holdsLease(): boolean {
    return this.elector === undefined || this.reportedLeading;
  }

  /** Resolves once this instance leads, or once release() is called (shutting down). */
  async wait(): Promise<void> {
    while (!this.released && !this.isLeader) {
      await new Promise<void>((resolve) => {
        // Re-checked every second (the renew deadline can pass without an event); a waiter that
        // times out leaves the list, so a follower waiting for days holds nothing.
        const timer = this.clock.setTimeout(() => {
          const index = this.waiters.indexOf(wake);
          if (index >= 0) this.waiters.splice(index, 1);
          resolve();
        }, 1000);
        const wake = (): void => {
          timer.cancel();
          resolve();
        };
        this.waiters.push(wake);
      });
    }
  }

  /** The lease was acquired: waiters go on at once. */
  acquired(): void {
    this.reportedLeading = true;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** The lease was lost (or released). */
  lost(): void {
    this.reportedLeading = false;
  }

  release(): void {
    this.released = true;
    this.wakeWaiters();
  }
}

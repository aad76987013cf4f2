/**
 * Whether this instance leads, and a wait for it: CSR workers wait here while another replica
 * leads. Without leader election this instance always leads.
 */
import type { LeaderElector } from "../kube/leader-election.js";

export class Leadership {
  private readonly waiters: (() => void)[] = [];
  private released = false;

  constructor(private readonly elector: LeaderElector | undefined) {}

  get isLeader(): boolean {
    return this.elector?.isLeader ?? true;
  }

  /** Resolves once this instance leads, or once release() is called (shutting down). */
  async wait(): Promise<void> {
    while (!this.released && !this.isLeader) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1000).unref(); // re-check: the renew deadline can pass without an event
      });
    }
  }

  /** The lease was acquired: waiters go on at once. */
  acquired(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  release(): void {
    this.released = true;
    this.acquired();
  }
}

/**
 * The issued and failed counts of each Signer's status: what was counted since its status was last
 * written, and what this process last wrote (the cache may not show that write yet). Counts only
 * grow and only this controller writes them, so the larger of the cache and our last write is
 * current; counts made while a write is in flight stay counted for the next one.
 */
import type { SignerStatus } from "../api/signer.js";

interface Counts {
  issued: number;
  failed: number;
}

export class SignerStatusCounts {
  private readonly issuedSince = new Map<string, number>();
  private readonly failedSince = new Map<string, number>();
  /** The counts since the last write that each desired status includes. */
  private readonly includedIn = new WeakMap<SignerStatus, Counts>();
  /** Counts in the last status this process wrote. */
  private readonly written = new Map<string, Counts>();

  countIssued(objectName: string): void {
    this.issuedSince.set(objectName, (this.issuedSince.get(objectName) ?? 0) + 1);
  }

  countFailed(objectName: string): void {
    this.failedSince.set(objectName, (this.failedSince.get(objectName) ?? 0) + 1);
  }

  /** What was counted since the Signer's status was last written. */
  since(objectName: string): Counts {
    return { issued: this.issuedSince.get(objectName) ?? 0, failed: this.failedSince.get(objectName) ?? 0 };
  }

  /** `desired` was computed with `since`: statusWritten(desired) subtracts exactly that. */
  computed(desired: SignerStatus, since: Counts): void {
    this.includedIn.set(desired, since);
  }

  /** The cached status with our last written counts where the cache has not caught up with them. */
  current(objectName: string, cached: SignerStatus): SignerStatus {
    const written = this.written.get(objectName);
    return written
      ? {
          ...cached,
          issuedCount: Math.max(cached.issuedCount ?? 0, written.issued),
          failedCount: Math.max(cached.failedCount ?? 0, written.failed),
        }
      : cached;
  }

  /** `status` (computed from these counts) was written; without one, the counts start afresh. */
  statusWritten(objectName: string, status?: SignerStatus): void {
    const included = status && this.includedIn.get(status);
    if (!status || !included) {
      this.issuedSince.delete(objectName);
      this.failedSince.delete(objectName);
      return;
    }
    this.written.set(objectName, { issued: status.issuedCount ?? 0, failed: status.failedCount ?? 0 });
    for (const [counts, sent] of [
      [this.issuedSince, included.issued],
      [this.failedSince, included.failed],
    ] as const) {
      const left = (counts.get(objectName) ?? 0) - sent;
      if (left > 0) counts.set(objectName, left);
      else counts.delete(objectName);
    }
  }

  /** Forgets the Signers not in `live` (deleted). */
  retainOnly(live: ReadonlySet<string>): void {
    for (const counts of [this.written, this.issuedSince, this.failedSince])
      for (const name of counts.keys()) if (!live.has(name)) counts.delete(name);
  }
}

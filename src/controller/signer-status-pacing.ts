/**
 * How often one Signer's status may be written. Count-only changes wait for `countWriteIntervalMs`
 * since the last write (statusWriteDelayMs). Every other change (conditions, CA details, roots)
 * takes a token of the Signer's own bucket: `statusChangeBurst` at once, then one per
 * `statusChangeRefillMs`. A tenant whose CA Secret is in its own namespace decides how often that
 * Secret changes; each rewrite would otherwise be a status write through the limiter every Signer's
 * status writes share (signer-status-writer.ts), plus Events. A change that has to wait is not lost:
 * the reconcile comes back when the token is there and writes the status as it is then, so quick
 * changes coalesce and the last one is always written.
 */
import { TokenBucket } from "../kube/token-bucket.js";
import { statusWriteDelayMs } from "./signer-status.js";

/**
 * Status changes one Signer writes at once: more than a root rotation's steps (CA loaded, root
 * published, rotated, old root retired) and a condition going and coming back, so what an operator
 * does shows at once.
 */
export const statusChangeBurst = 10;
/** Then one change per this long: a tenant rewriting its Secret in a loop costs 0.2 writes/s. */
export const statusChangeRefillMs = 5_000;

interface SignerPace {
  lastWriteAt: number | undefined;
  changes: TokenBucket;
}

export class SignerStatusPacing {
  private readonly signers = new Map<string, SignerPace>();

  constructor(private readonly now: () => number) {}

  /**
   * Milliseconds to wait before writing a change of the Signer's status (0: write now, then
   * `wrote`); `countsOnly`: the change is to issuedCount/failedCount alone (changesOnlyCounts).
   */
  delayMs(objectName: string, countsOnly: boolean): number {
    const pace = this.signers.get(objectName);
    if (countsOnly) return statusWriteDelayMs(countsOnly, pace?.lastWriteAt, this.now());
    return Math.ceil(pace?.changes.availableInMs() ?? 0);
  }

  /** Records a write that delayMs allowed (`countsOnly` as given to it). */
  wrote(objectName: string, countsOnly: boolean): void {
    const pace = this.signers.get(objectName) ?? {
      lastWriteAt: undefined,
      changes: new TokenBucket(1000 / statusChangeRefillMs, statusChangeBurst, this.now),
    };
    this.signers.set(objectName, pace);
    pace.lastWriteAt = this.now();
    if (!countsOnly) pace.changes.tryTake();
  }

  /**
   * The Signer is gone. A Signer deleted and created again under its name starts with a full
   * bucket: only a cluster admin creates Signers, so that is no tenant's loop.
   */
  forget(objectName: string): void {
    this.signers.delete(objectName);
  }
}

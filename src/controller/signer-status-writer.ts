/** Signer status writes: a merge patch of /status. */
import { signerApiGroup, signerApiVersion, signerPlural, type SignerStatus } from "../api/signer.js";
import { patchContentType, type KubeApi } from "../kube/api-client.js";
import { apiErrorCode } from "../kube/client.js";
import { TokenBucket } from "../kube/token-bucket.js";

/**
 * Signer status writes go through a limiter of their own, as the Lease's calls and Events do, not
 * the client limit every certificate write shares: under a burst at the limit a status write (the
 * issued count, a condition) neither takes a certificate's turn nor waits behind the whole backlog.
 * SignerStatusPacing already bounds each Signer's writes; this bounds all of them together. The
 * Signer reconciler asks `waitMs` first and comes back at its turn rather than wait: its one worker also
 * loads CAs, publishes bundles and withdraws deleted Signers, which must not queue behind the
 * limiter when more Signers are busy than it lets write (the hostile-tenant review).
 */
export const signerStatusWritesPerSecond = 5;
export const signerStatusWriteBurst = 10;

export interface SignerStatusWriter {
  /**
   * Milliseconds until `objectName`'s write may go out without waiting for the limiter (0: now). A
   * Signer that must wait gets a turn of its own, kept until it writes (StatusWriteTurns).
   */
  waitMs(objectName: string): number;
  /** Writes /status of a Signer; "gone" when it no longer exists. */
  write(objectName: string, status: SignerStatus): Promise<"ok" | "gone">;
}

/**
 * Turns at the limiter for Signers that must wait: each gets its own time, one refill after the last
 * one handed out, and keeps it when it asks again (first come, first served). Without turns, every
 * waiting Signer was told the same time, all came back together, one took the token and the rest
 * came back again, each reconcile (bundle publication included) about five times a second (the
 * hostile-tenant review of 077f4c9). A turn not taken within a minute of its time is forgotten, so
 * a Signer deleted while waiting holds nothing.
 */
export class StatusWriteTurns {
  private readonly turns = new Map<string, number>();
  private lastTurnAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly limiter: TokenBucket,
    private readonly ratePerSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Milliseconds until `objectName` may write (0: its turn has come, or a token is saved up and no
   * other Signer's turn is still ahead). A turn more than one refill past its time was not used when
   * it came (the Signer had nothing to write then): it no longer holds a token, and a new one is given.
   */
  waitMs(objectName: string): number {
    const now = this.now();
    const refillMs = 1000 / this.ratePerSecond;
    const turn = this.turns.get(objectName);
    if (turn !== undefined && turn >= now - refillMs) return Math.max(0, turn - now);
    this.turns.delete(objectName);
    const available = this.limiter.availableInMs();
    // A newcomer does not take the token planned for a turn still ahead: it queues behind it.
    if (available === 0 && this.lastTurnAt <= now) return 0;
    for (const [name, at] of this.turns) if (at < now - 60_000) this.turns.delete(name);
    const at = Math.max(now + available, this.lastTurnAt + refillMs);
    this.turns.set(objectName, at);
    this.lastTurnAt = at;
    return at - now;
  }

  /** `objectName` is writing: its turn, if it had one, is used. */
  taken(objectName: string): void {
    this.turns.delete(objectName);
  }
}

/** The writer with its own limiter (signerStatusWritesPerSecond), on `api`'s connection. */
export function rateLimitedSignerStatusWriter(
  api: KubeApi,
  limiter = new TokenBucket(signerStatusWritesPerSecond, signerStatusWriteBurst),
): SignerStatusWriter {
  const limited = api.withOwnRateLimiter(limiter);
  const turns = new StatusWriteTurns(limiter, signerStatusWritesPerSecond);
  return {
    waitMs: (objectName) => turns.waitMs(objectName),
    write: async (name, status) => {
      turns.taken(name);
      try {
        await limited.patchDiscardingResponse(
          `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}/${name}/status`,
          patchContentType.merge,
          { status },
        );
        return "ok";
      } catch (error) {
        if (apiErrorCode(error) === 404) return "gone"; // deleted meanwhile
        throw error;
      }
    },
  };
}

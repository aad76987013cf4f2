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
 * Signer reconciler asks `waitMs` first and comes back later rather than wait: its one worker also
 * loads CAs, publishes bundles and withdraws deleted Signers, which must not queue behind the
 * limiter when more Signers are busy than it lets write (the hostile-tenant review).
 */
export const signerStatusWritesPerSecond = 5;
export const signerStatusWriteBurst = 10;

export interface SignerStatusWriter {
  /** Milliseconds until a write would go out without waiting for the limiter (0: at once). */
  waitMs(): number;
  /** Writes /status of a Signer; "gone" when it no longer exists. */
  write(objectName: string, status: SignerStatus): Promise<"ok" | "gone">;
}

/** The writer with its own limiter (signerStatusWritesPerSecond), on `api`'s connection. */
export function rateLimitedSignerStatusWriter(
  api: KubeApi,
  limiter = new TokenBucket(signerStatusWritesPerSecond, signerStatusWriteBurst),
): SignerStatusWriter {
  const limited = api.withOwnRateLimiter(limiter);
  return {
    waitMs: () => limiter.availableInMs(),
    write: async (name, status) => {
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

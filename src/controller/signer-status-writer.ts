/** Signer status writes: a merge patch of /status. */
import { signerApiGroup, signerApiVersion, signerPlural, type SignerStatus } from "../api/signer.js";
import { patchContentType, type KubeApi } from "../kube/api-client.js";
import { apiErrorCode } from "../kube/client.js";
import { TokenBucket } from "../kube/token-bucket.js";

/**
 * Signer status writes wait on a limiter of their own, as the Lease's calls and Events do, not on
 * the client limit every certificate write shares: under a burst at the limit a status write (the
 * issued count, a condition) neither takes a certificate's turn nor waits behind the whole backlog.
 * SignerStatusPacing already bounds each Signer's writes; this bounds all of them together.
 */
export const signerStatusWritesPerSecond = 5;
export const signerStatusWriteBurst = 10;

/** The writer with its own limiter (signerStatusWritesPerSecond), on `api`'s connection. */
export function rateLimitedSignerStatusWriter(api: KubeApi): SignerStatusWriter {
  return kubernetesSignerStatusWriter(
    api.withOwnRateLimiter(new TokenBucket(signerStatusWritesPerSecond, signerStatusWriteBurst)),
  );
}

/** Writes /status of a Signer; "gone" when it no longer exists. */
export type SignerStatusWriter = (objectName: string, status: SignerStatus) => Promise<"ok" | "gone">;

export function kubernetesSignerStatusWriter(api: KubeApi): SignerStatusWriter {
  return async (name, status) => {
    try {
      await api.patchDiscardingResponse(
        `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}/${name}/status`,
        patchContentType.merge,
        { status },
      );
      return "ok";
    } catch (error) {
      if (apiErrorCode(error) === 404) return "gone"; // deleted meanwhile
      throw error;
    }
  };
}

/** Signer status writes: a merge patch of /status. */
import { signerApiGroup, signerApiVersion, signerPlural, type SignerStatus } from "../api/signer.js";
import { patchContentType, type KubeApi } from "../kube/api-client.js";
import { apiErrorCode } from "../kube/client.js";

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

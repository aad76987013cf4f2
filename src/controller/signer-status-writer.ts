/** Signer status writes bound to client-node (merge patch of /status). */
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { signerApiGroup, signerApiVersion, signerPlural, type SignerStatus } from "../api/signer.js";
import { apiErrorCode, mergePatch } from "../kube/client.js";

/** Writes /status of a Signer; "gone" when it no longer exists. */
export type SignerStatusWriter = (objectName: string, status: SignerStatus) => Promise<"ok" | "gone">;

export function kubernetesSignerStatusWriter(customObjects: CustomObjectsApi): SignerStatusWriter {
  return async (name, status) => {
    const target = { group: signerApiGroup, version: signerApiVersion, plural: signerPlural, name };
    try {
      await customObjects.patchClusterCustomObjectStatus({ ...target, body: { status } }, mergePatch);
      return "ok";
    } catch (error) {
      if (apiErrorCode(error) === 404) return "gone"; // deleted meanwhile
      throw error;
    }
  };
}

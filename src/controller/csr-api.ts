/** The API access the CSR handlers need; src/kube/csr-api.ts binds it to the API server, unit tests to stand-ins. */
import type { JsonPatchOperation } from "./condition-patch.js";
import type { CsrObject } from "./csr-object.js";

export interface CsrApi {
  /** Reads the CSR from the API server (not the cache); undefined when it is gone. */
  read(name: string): Promise<CsrObject | undefined>;
  /** Merge-patches status with the resourceVersion as precondition. */
  patchStatus(
    name: string,
    resourceVersion: string,
    status: Record<string, unknown>,
  ): Promise<"ok" | "conflict" | "gone" | "invalid">;
  /** Applies a JSON patch to /status (appendConditionPatch: resourceVersion precondition included). */
  patchStatusJson(
    name: string,
    patch: readonly JsonPatchOperation[],
  ): Promise<"ok" | "conflict" | "gone" | "invalid">;
}

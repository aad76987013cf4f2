/** The API access the PodCertificateRequest reconciler needs; src/kube/pod-certificate-api-binding.ts binds it. */
import type { PodCertificateRequestObject } from "./pod-certificate-object.js";

/** What became of one status write. */
export type PodCertificateWriteOutcome = "ok" | "conflict" | "gone" | "not sent";

export interface PodCertificateApi {
  /** Reads the request from the API server (not the cache); undefined when it is gone. */
  read(namespace: string, name: string): Promise<PodCertificateRequestObject | undefined>;
  /**
   * Merge-patches status with the resourceVersion as precondition; "not sent" when the lease was
   * lost first. Throws on anything but success, 404 and 409 (a refusal such as 403 or 422 is
   * reported by the caller and retried).
   */
  patchStatus(
    namespace: string,
    name: string,
    resourceVersion: string,
    status: Record<string, unknown>,
  ): Promise<PodCertificateWriteOutcome>;
}

/**
 * The CSR reconciler's and approver's API access (CsrApi, ApprovalApi of controller/csr-api.ts) bound to
 * KubeApi: reads, status and approval patches, and SubjectAccessReviews.
 */
import type { ApprovalApi, CsrApi } from "../controller/csr-api.js";
import { replacedStatus, type CsrObject } from "../controller/csr-object.js";
import { patchContentType, WriteNotSentError, type KubeApi, type PatchContentType } from "./api-client.js";
import { apiErrorCode } from "./client.js";
import { subjectAccessAllowed } from "./subject-access-review.js";

export const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/**
 * The reconciler's API access: reads, and PUTs or patches of /status (a merge patch carries the resourceVersion
 * read). `stillLeading` is asked right before a status patch is sent (after the client's rate limiter):
 * a replica that lost its lease meanwhile (frozen, starved) drops the write ("not sent").
 */
export function kubernetesCsrApi(api: KubeApi, stillLeading?: () => boolean): CsrApi {
  const unlessLeaseLost = async <T>(write: () => Promise<T>): Promise<T | "not sent"> => {
    try {
      return await write();
    } catch (error) {
      if (error instanceof WriteNotSentError) return "not sent";
      throw error;
    }
  };
  return {
    read: (name) => api.getIfExists<CsrObject>(csrUrl(name)),
    patchStatus: (name, resourceVersion, status) =>
      unlessLeaseLost(() =>
        patchCsr(
          api,
          name,
          "status",
          patchContentType.merge,
          { metadata: { resourceVersion }, status },
          stillLeading,
        ),
      ),
    replaceStatus: (csr, status) =>
      unlessLeaseLost(() =>
        writeOutcome(
          api.replaceDiscardingResponse(
            csrUrl(csr.metadata?.name ?? "", "status"),
            replacedStatus(csr, status),
            stillLeading,
          ),
        ),
      ),
    patchStatusJson: (name, patch) =>
      unlessLeaseLost(() => patchCsr(api, name, "status", patchContentType.json, patch, stillLeading)),
  };
}

/** The approver's API access: /approval patches and SubjectAccessReviews. */
export function kubernetesApprovalApi(api: KubeApi): ApprovalApi {
  return {
    addApprovalCondition: (name, patch) => patchCsr(api, name, "approval", patchContentType.json, patch),
    subjectAccessReview: (question) => subjectAccessAllowed(api, question, { resource: question }),
  };
}

/** A CSR's path, or its subresource's; the name encoded (kube-apiserver allows "?" and "#" in it). */
export function csrUrl(name: string, subresource?: "status" | "approval"): string {
  return `${csrPath}/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ""}`;
}

/**
 * One patch of a CSR subresource. The API server's echo of the whole CSR (which may carry megabytes
 * of spec.request) is discarded unparsed.
 */
function patchCsr(
  api: KubeApi,
  name: string,
  subresource: "status" | "approval",
  contentType: PatchContentType,
  body: unknown,
  sendOnlyIf?: () => boolean,
): Promise<"ok" | ReturnType<typeof failedWriteOutcome>> {
  return writeOutcome(api.patchDiscardingResponse(csrUrl(name, subresource), contentType, body, sendOnlyIf));
}

/** "ok" for a write the API server took, else what its refusal means (failedWriteOutcome). */
async function writeOutcome(write: Promise<void>): Promise<"ok" | ReturnType<typeof failedWriteOutcome>> {
  try {
    await write;
    return "ok";
  } catch (error) {
    return failedWriteOutcome(error);
  }
}

/** What a refused status or approval write means to a reconciler; anything else is rethrown (transient). */
function failedWriteOutcome(error: unknown): "gone" | "conflict" | "invalid" {
  const code = apiErrorCode(error);
  if (code === 404) return "gone";
  if (code === 409) return "conflict";
  if (code === 422) return "invalid";
  throw error;
}

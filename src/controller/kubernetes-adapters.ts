/**
 * The reconcilers' API access bound to client-node (moved unchanged out of controller.ts; the
 * kube client work replaces it).
 */
import type { AuthorizationV1Api, CertificatesV1Api, KubeConfig } from "@kubernetes/client-node";
import { apiErrorCode, jsonPatch, mergePatch } from "../kube/client.js";
import { patchContentType, patchDiscardingResponse } from "../kube/raw-json.js";
import type { ApprovalApi } from "./approver.js";
import type { CsrApi, CsrObject } from "./csr-reconciler.js";

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/**
 * The reconciler's API access bound to client-node: reads, and merge patches with a resourceVersion
 * precondition. With `kubeConfig`, status patches discard the response unread (it echoes the whole
 * CSR, spec.request included, which may be megabytes).
 */
export function kubernetesCsrApi(certificates: CertificatesV1Api, kubeConfig?: KubeConfig): CsrApi {
  return {
    read: async (name) => {
      try {
        return (await certificates.readCertificateSigningRequest({ name })) as CsrObject;
      } catch (error) {
        if (apiErrorCode(error) === 404) return undefined;
        throw error;
      }
    },
    patchStatus: (name, resourceVersion, status) =>
      patchCsr(certificates, kubeConfig, name, "status", patchContentType.merge, {
        metadata: { resourceVersion },
        status,
      }),
    patchStatusJson: (name, patch) =>
      patchCsr(certificates, kubeConfig, name, "status", patchContentType.json, patch),
  };
}

/**
 * One patch of a CSR subresource. With `kubeConfig` the API server's echo of the whole CSR (which
 * may carry megabytes of spec.request) is discarded unread; without it, client-node parses it.
 */
async function patchCsr(
  certificates: CertificatesV1Api,
  kubeConfig: KubeConfig | undefined,
  name: string,
  subresource: "status" | "approval",
  contentType: (typeof patchContentType)[keyof typeof patchContentType],
  body: unknown,
): Promise<"ok" | ReturnType<typeof failedWriteOutcome>> {
  try {
    if (kubeConfig)
      await patchDiscardingResponse(kubeConfig, `${csrPath}/${name}/${subresource}`, contentType, body);
    else {
      const options = contentType === patchContentType.merge ? mergePatch : jsonPatch;
      const request = { name, body: body as object };
      if (subresource === "status") await certificates.patchCertificateSigningRequestStatus(request, options);
      else await certificates.patchCertificateSigningRequestApproval(request, options);
    }
    return "ok";
  } catch (error) {
    return failedWriteOutcome(error);
  }
}

export function kubernetesApprovalApi(
  certificates: CertificatesV1Api,
  authorization: AuthorizationV1Api,
  kubeConfig?: KubeConfig,
): ApprovalApi {
  return {
    addApprovalCondition: (name, patch) =>
      patchCsr(certificates, kubeConfig, name, "approval", patchContentType.json, patch),
    subjectAccessReview: async (question) => {
      const review = await authorization.createSubjectAccessReview({
        body: {
          spec: {
            user: question.user,
            groups: question.groups,
            ...(question.uid ? { uid: question.uid } : {}),
            ...(question.extra ? { extra: question.extra } : {}),
            resourceAttributes: {
              group: question.group,
              resource: question.resource,
              verb: question.verb,
              ...(question.subresource ? { subresource: question.subresource } : {}),
              ...(question.name ? { name: question.name } : {}),
              ...(question.namespace ? { namespace: question.namespace } : {}),
            },
          },
        },
      });
      return review.status?.allowed === true;
    },
  };
}

/** What a refused status or approval write means to a reconciler; anything else is rethrown (transient). */
function failedWriteOutcome(error: unknown): "gone" | "conflict" | "invalid" {
  const code = apiErrorCode(error);
  if (code === 404) return "gone";
  if (code === 409) return "conflict";
  if (code === 422) return "invalid";
  throw error;
}

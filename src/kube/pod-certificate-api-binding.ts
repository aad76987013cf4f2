/**
 * PodCertificateRequest access bound to KubeApi: discovery, reads, and merge patches of /status
 * carrying the resourceVersion read (the API allows one status write: Issued, Denied or Failed).
 */
import type { PodCertificateApi } from "../controller/pod-certificate-api.js";
import type { PodCertificateRequestObject } from "../controller/pod-certificate-object.js";
import { patchContentType, WriteNotSentError, type KubeApi } from "./api-client.js";
import { apiErrorCode } from "./client.js";

const certificatesBetaPath = "/apis/certificates.k8s.io/v1beta1";

/** Whether the API serves PodCertificateRequests (feature gate PodCertificateRequest and the v1beta1 API on). */
export async function podCertificateRequestsServed(api: KubeApi): Promise<boolean> {
  const resources = await api.getIfExists<{ resources?: { name: string }[] }>(certificatesBetaPath);
  return (resources?.resources ?? []).some((resource) => resource.name === "podcertificaterequests");
}

function requestPath(namespace: string, name: string): string {
  return `/apis/certificates.k8s.io/v1beta1/namespaces/${encodeURIComponent(namespace)}/podcertificaterequests/${encodeURIComponent(name)}`;
}

/**
 * `stillLeading` is asked right before a status patch is sent (after the client's rate limiter), as
 * for CSRs (kubernetesCsrApi): a replica that lost its lease meanwhile (frozen, starved) drops the
 * write ("not sent").
 */
export function kubernetesPodCertificateApi(api: KubeApi, stillLeading?: () => boolean): PodCertificateApi {
  return {
    read: (namespace, name) => api.getIfExists<PodCertificateRequestObject>(requestPath(namespace, name)),
    patchStatus: async (namespace, name, resourceVersion, status) => {
      try {
        await api.patchDiscardingResponse(
          `${requestPath(namespace, name)}/status`,
          patchContentType.merge,
          { metadata: { resourceVersion }, status },
          stillLeading,
        );
        return "ok";
      } catch (error) {
        if (error instanceof WriteNotSentError) return "not sent";
        const code = apiErrorCode(error);
        if (code === 404) return "gone";
        if (code === 409) return "conflict";
        throw error; // 403 (RBAC, sign verb), 422 (a rule we broke) and the rest: the caller reports it
      }
    },
  };
}

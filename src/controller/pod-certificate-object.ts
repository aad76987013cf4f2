/**
 * A PodCertificateRequest (certificates.k8s.io/v1beta1, namespaced) as the controller reads it, and
 * what its cache keeps. The API bounds every field (key fields 10 KiB each, the chain 100 KiB), but
 * the controller watches all namespaces: the cache keeps the identity fields (short, validated
 * names and UIDs), the key fields only for undecided requests of our Signers, the keys (never the values) of
 * spec.unverifiedUserAnnotations, and of status only each condition's type and status (the gate
 * "already decided"). A request cached while it was not ours is read once more when it becomes ours.
 */
import type { EventTarget } from "../kube/events.js";

export const podCertificateRequestsPath = "/apis/certificates.k8s.io/v1beta1/podcertificaterequests";

export interface PodCertificateRequestCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface PodCertificateRequestObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
  };
  spec?: {
    signerName?: string;
    podName?: string;
    podUID?: string;
    serviceAccountName?: string;
    serviceAccountUID?: string;
    nodeName?: string;
    nodeUID?: string;
    maxExpirationSeconds?: number;
    /** Base64 (JSON []byte); the cache keeps the three key fields only for our requests. */
    pkixPublicKey?: string | null;
    proofOfPossession?: string | null;
    stubPKCS10Request?: string | null;
    unverifiedUserAnnotations?: Record<string, string>;
    /** Cache only: the key fields were dropped (not ours when cached). */
    keyOmitted?: true;
    /** Cache only: the first keys of unverifiedUserAnnotations (values are never kept). */
    userAnnotationKeys?: string[];
  };
  status?: {
    conditions?: PodCertificateRequestCondition[];
    certificateChain?: string;
    notBefore?: string;
    notAfter?: string;
    beginRefreshAt?: string;
  };
}

/** Annotation keys kept per cached request: any key at all is a refusal, the first few name it. */
const cachedAnnotationKeys = 5;

/** The decided states: a request with one of these is never touched again (the API makes status immutable). */
const podCertificateTerminalConditions = ["Issued", "Denied", "Failed"] as const;

export function isDecided(pcr: PodCertificateRequestObject): boolean {
  return (pcr.status?.conditions ?? []).some(
    (condition) =>
      condition.status === "True" &&
      (podCertificateTerminalConditions as readonly string[]).includes(condition.type),
  );
}

/** The queue key: namespace/name. */
export function podCertificateRequestKey(pcr: PodCertificateRequestObject): string | undefined {
  const { name, namespace } = pcr.metadata ?? {};
  return name && namespace ? `${namespace}/${name}` : undefined;
}

/** The spec.unverifiedUserAnnotations keys, from a full object or a cached one. */
export function userAnnotationKeys(spec: PodCertificateRequestObject["spec"]): string[] {
  return spec?.userAnnotationKeys ?? Object.keys(spec?.unverifiedUserAnnotations ?? {});
}

export function cachedPodCertificateRequest(
  pcr: PodCertificateRequestObject,
  ours: (signerName: string) => boolean,
): PodCertificateRequestObject {
  const { metadata, spec, status } = pcr;
  const isOurs = ours(spec?.signerName ?? "");
  const annotationKeys = Object.keys(spec?.unverifiedUserAnnotations ?? {}).slice(0, cachedAnnotationKeys);
  const copy = <K extends keyof NonNullable<PodCertificateRequestObject["spec"]>>(
    field: K,
  ): Partial<NonNullable<PodCertificateRequestObject["spec"]>> =>
    spec?.[field] !== undefined ? { [field]: spec[field] } : {};
  return {
    metadata: {
      ...(metadata?.name !== undefined ? { name: metadata.name } : {}),
      ...(metadata?.namespace !== undefined ? { namespace: metadata.namespace } : {}),
      ...(metadata?.uid !== undefined ? { uid: metadata.uid } : {}),
      ...(metadata?.resourceVersion !== undefined ? { resourceVersion: metadata.resourceVersion } : {}),
      ...(metadata?.creationTimestamp !== undefined ? { creationTimestamp: metadata.creationTimestamp } : {}),
    },
    spec: {
      ...copy("signerName"),
      ...copy("podName"),
      ...copy("podUID"),
      ...copy("serviceAccountName"),
      ...copy("serviceAccountUID"),
      ...copy("nodeName"),
      ...copy("nodeUID"),
      ...copy("maxExpirationSeconds"),
      // A decided request is never signed again: its key fields are dead weight.
      ...(isOurs && !isDecided(pcr)
        ? { ...copy("pkixPublicKey"), ...copy("proofOfPossession"), ...copy("stubPKCS10Request") }
        : { keyOmitted: true as const }),
      ...(annotationKeys.length > 0 ? { userAnnotationKeys: annotationKeys } : {}),
    },
    ...(status?.conditions
      ? { status: { conditions: status.conditions.map(({ type, status }) => ({ type, status })) } }
      : {}),
  };
}

export function podCertificateEventTarget(pcr: PodCertificateRequestObject): EventTarget {
  return {
    apiVersion: "certificates.k8s.io/v1beta1",
    kind: "PodCertificateRequest",
    name: pcr.metadata?.name ?? "",
    ...(pcr.metadata?.uid ? { uid: pcr.metadata.uid } : {}),
    ...(pcr.metadata?.namespace
      ? { namespace: pcr.metadata.namespace, tenant: `namespace:${pcr.metadata.namespace}` }
      : {}),
  };
}

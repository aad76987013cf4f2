/**
 * SubjectAccessReviews: may this user do this? Asked by the approver (create on a CSR's
 * signer, approve on signers) and by the metrics server (get on the non-resource URL /metrics).
 */
import type { KubeApi } from "./api-client.js";

const subjectAccessReviewPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/** Who asks: the user as the API server authenticated it (a CSR's spec, a TokenReview's status). */
export interface ReviewedSubject {
  user: string;
  uid?: string | undefined;
  groups?: readonly string[] | undefined;
  extra?: Readonly<Record<string, readonly string[]>> | undefined;
}

/** An API resource verb; subresource, name and namespace only when given. */
export interface ResourceAccess {
  group: string;
  resource: string;
  verb: string;
  subresource?: string | undefined;
  name?: string | undefined;
  namespace?: string | undefined;
}

/** A verb on a URL path outside the API resources (/metrics). */
export interface NonResourceAccess {
  path: string;
  verb: string;
}

export type ReviewedAccess = { resource: ResourceAccess } | { nonResource: NonResourceAccess };

/** The SubjectAccessReview object asking whether `subject` may do `access`; only the named fields are copied. */
export function subjectAccessReviewBody(subject: ReviewedSubject, access: ReviewedAccess): object {
  return {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: subject.user,
      ...(subject.uid ? { uid: subject.uid } : {}),
      groups: subject.groups ?? [],
      ...(subject.extra ? { extra: subject.extra } : {}),
      ...("resource" in access
        ? {
            resourceAttributes: {
              group: access.resource.group,
              resource: access.resource.resource,
              verb: access.resource.verb,
              ...(access.resource.subresource ? { subresource: access.resource.subresource } : {}),
              ...(access.resource.name ? { name: access.resource.name } : {}),
              ...(access.resource.namespace ? { namespace: access.resource.namespace } : {}),
            },
          }
        : { nonResourceAttributes: { path: access.nonResource.path, verb: access.nonResource.verb } }),
    },
  };
}

/** Creates the review and answers whether the API server's authorizer allowed it. */
export async function subjectAccessAllowed(
  api: KubeApi,
  subject: ReviewedSubject,
  access: ReviewedAccess,
): Promise<boolean> {
  const review = await api.create<{ status?: { allowed?: boolean } }>(
    subjectAccessReviewPath,
    subjectAccessReviewBody(subject, access),
  );
  return review.status?.allowed === true;
}

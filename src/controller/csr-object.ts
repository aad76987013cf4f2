/**
 * A CertificateSigningRequest as the controller reads it (from the cache, cut: csr-cache.ts) and
 * writes it: the one builder of the conditions the handlers add, and the Event target.
 */
import { parseServiceAccountUsername } from "../policy/signing-policy.js";
import type { EventTarget } from "../kube/events.js";
import { kubernetesTime } from "../kube/time.js";

/** Left in place of a spec.request the cache does not hold. */
export interface OmittedRequest {
  /**
   * NotOurs: no signer or approver of ours handled its signer name when it arrived. Settled: it had
   * a certificate or a Denied or Failed condition (nothing reads the request of such a CSR).
   */
  reason: "NotOurs" | "TooLarge" | "Settled";
  /** The request's size in bytes (decoded), for the RequestTooLarge message. */
  bytes: number;
}

/**
 * Left in place of a status.certificate the cache does not hold: a foreign CSR's (nothing read), or
 * one of ours reduced to its leaf's NotAfter, the clean-up's one question of it (undefined when
 * unreadable). Nothing reads the chain of a CSR once it has one.
 */
export type OmittedCertificate = { reason: "NotOurs" } | { reason: "Ours"; notAfterMs: number | undefined };

export interface CsrCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string | Date;
  lastTransitionTime?: string | Date;
}

/** The parts of a CSR we read; objects from list and from watch differ in typing (Date vs string). */
export interface CsrObject {
  metadata?: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
    generateName?: string;
    /**
     * Set by the cache (csr-cache.ts) when the CSR had no metadata or status fields beyond what a PUT
     * of /status from the cached copy sends back or kube-apiserver keeps (no labels, annotations,
     * finalizers, owner references, deletion in progress, or fields it does not know).
     */
    onlyKeptFields?: true;
  };
  spec?: {
    signerName?: string;
    request?: string;
    /** Set by the cache (csr-cache.ts) when it does not hold spec.request. */
    requestOmitted?: OmittedRequest;
    usages?: string[];
    username?: string;
    groups?: string[];
    uid?: string;
    extra?: Record<string, string[]>;
    expirationSeconds?: number;
  };
  status?: {
    conditions?: CsrCondition[];
    certificate?: string;
    /** Set by the cache (csr-cache.ts) when it does not hold status.certificate. */
    certificateOmitted?: OmittedCertificate;
  };
}

/**
 * Whether a PUT of /status built from this cached copy (replacedStatus) changes nothing but what it
 * sets. kube-apiserver takes an update's metadata as sent (labels, annotations, finalizers and owner
 * references left out would be removed; managedFields left out are kept), resets spec from the
 * stored object, and keeps the stored Approved and Denied conditions in place of the ones sent (so
 * the cache's cut messages are never written back); any other condition would be written as cached.
 * So: our cached copy (onlyKeptFields) with its request, Approved conditions only, no certificate yet.
 */
export function statusReplaceable(csr: CsrObject): boolean {
  return (
    csr.metadata?.onlyKeptFields === true &&
    csr.spec?.requestOmitted === undefined &&
    csr.status?.certificate === undefined &&
    csr.status?.certificateOmitted === undefined &&
    (csr.status?.conditions ?? []).every((condition) => condition.type === "Approved")
  );
}

/**
 * The body of a PUT of /status that sets `status` over `csr` (statusReplaceable says when it is
 * safe): the stored conditions, `status`'s fields, and the resourceVersion read as precondition, as
 * kube-controller-manager's signer writes (UpdateStatus). kube-apiserver spent about a tenth less on
 * it on average than on the merge patch it replaces (within the rounds' spread, BENCHMARKS.md): it
 * need not apply a patch to the stored object.
 */
export function replacedStatus(csr: CsrObject, status: Record<string, unknown>): Record<string, unknown> {
  const { name, uid, resourceVersion, generateName } = csr.metadata ?? {};
  // The spec as cached (request included: statusReplaceable asks for it). kube-apiserver resets spec
  // from the stored object, but a mutating admission webhook sees the object as sent.
  const { requestOmitted: _omitted, ...spec } = csr.spec ?? {};
  return {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    metadata: { name, uid, resourceVersion, ...(generateName !== undefined ? { generateName } : {}) },
    spec,
    status: { ...(csr.status?.conditions ? { conditions: csr.status.conditions } : {}), ...status },
  };
}

/** Whether the CSR has a certificate: set, or held by the cache as certificateOmitted. */
export function hasCertificate(csr: CsrObject): boolean {
  return Boolean(csr.status?.certificate || csr.status?.certificateOmitted);
}

export function hasCondition(csr: CsrObject, type: string): boolean {
  return (
    csr.status?.conditions?.some((condition) => condition.type === type && condition.status === "True") ??
    false
  );
}

/** Conditions this controller adds: Approved or Denied (approver), Failed (signer). */
export type OwnConditionType = "Approved" | "Denied" | "Failed";

/** A condition as we write it: status True, the message cut to what the API server accepts, both times now. */
export function ownCondition(
  type: OwnConditionType,
  reason: string,
  message: string,
  now: Date,
): CsrCondition {
  const time = kubernetesTime(now);
  return {
    type,
    status: "True",
    reason,
    message: message.slice(0, 1024),
    lastUpdateTime: time,
    lastTransitionTime: time,
  };
}

export function eventTarget(csr: CsrObject): EventTarget {
  const requester = requesterKey(csr.spec?.username);
  const tenant = tenantOf(csr.spec?.signerName, requester);
  return {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    name: csr.metadata?.name ?? "",
    ...(csr.metadata?.uid ? { uid: csr.metadata.uid } : {}),
    ...(tenant ? { tenant } : {}),
    ...(requester ? { requester } : {}),
  };
}

/**
 * Whose Event share a CSR's Events take from (events.ts): its requester, with every service account
 * of a namespace as one (whoever can create one there can create many), per signer name. The signer
 * name keeps apart tenants that one requester serves: istiod files every workload's CSR under its
 * own service account, but each tenant's under that tenant's signer, so a busy or hostile tenant
 * spends only its own share; a requester flooding one signer leaves that signer's other requesters
 * theirs. The requester alone (requesterKey) is held besides to a number of queue slots, so one
 * sending to many signer names cannot fill the queue with a fresh share from each.
 */
export function requesterTenant(
  signerName: string | undefined,
  username: string | undefined,
): string | undefined {
  return tenantOf(signerName, requesterKey(username));
}

function tenantOf(signerName: string | undefined, requester: string | undefined): string | undefined {
  return requester === undefined ? undefined : `${signerName ?? ""} ${requester}`;
}

/** The requester, whatever the signer name: a service account's namespace, else the username. */
export function requesterKey(username: string | undefined): string | undefined {
  if (!username) return undefined;
  const serviceAccount = parseServiceAccountUsername(username);
  return serviceAccount ? `namespace:${serviceAccount.namespace}` : `user:${username}`;
}

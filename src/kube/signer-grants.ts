/**
 * The RBAC rule the controller lacks when the API server refuses one of the signer verbs (approve,
 * sign, attest) with 403: spelled out whole, so an operator can paste it into the ClusterRole
 * instead of guessing from "forbidden"; and the other cause of a 403, a restarting API server.
 * Also the one place the "<domain>/*" resource name of a signer name is built.
 */

export type SignerVerb = "approve" | "sign" | "attest";

/**
 * "RBAC missing, or the API server's authorizer still starting after a restart (then a retry
 * passes): the controller needs verb sign on certificates.k8s.io signers/example.com/foo; add to its
 * ClusterRole: {apiGroups: [certificates.k8s.io], resources: [signers], resourceNames:
 * [example.com/foo], verbs: [sign]} (or "example.com/*" in resourceNames for every signer name of
 * that domain)". A restarted kube-apiserver answers 403 for about a second before its RBAC
 * authorizer has loaded the roles (seen in the soak): the hint must not claim the grant is missing.
 */
/** Every RBAC hint's opening: a 403 right after a kube-apiserver restart passes on retry (seen in the soak). */
const missingOrStartingAuthorizer =
  "RBAC missing, or the API server's authorizer still starting after a restart (then a retry passes): ";

export function missingSignerGrant(verb: SignerVerb, signerName: string): string {
  return (
    missingOrStartingAuthorizer +
    `the controller needs verb ${verb} on certificates.k8s.io signers/${signerName}; ` +
    `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ["signers"], ` +
    `resourceNames: ["${signerName}"], verbs: ["${verb}"]}` +
    domainForm(signerName)
  );
}

/**
 * The hint for a 403 on the status write itself (RBAC on certificatesigningrequests/status, not the
 * signer name's sign verb): the certificate goes out as a PUT (update) or a merge patch (patch).
 */
export function missingCsrStatusGrant(): string {
  return (
    missingOrStartingAuthorizer +
    `the controller needs verbs update and patch on certificates.k8s.io certificatesigningrequests/status; ` +
    `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ` +
    `["certificatesigningrequests/status"], verbs: ["update", "patch"]}`
  );
}

/**
 * "<domain>/*", the resource name that grants a signer verb on every signer name of the domain: the
 * API server checks it after the exact name (IsAuthorizedForSignerName), taking the domain as the
 * part before the first "/".
 */
export function signerDomainWildcard(signerName: string): string {
  return `${signerName.split("/")[0]}/*`;
}

/** One rule for the whole domain covers later Signers too (the API server honours "<domain>/*"). */
function domainForm(signerName: string): string {
  return signerName.indexOf("/") > 0
    ? ` (or "${signerDomainWildcard(signerName)}" in resourceNames for every signer name of that domain)`
    : "";
}

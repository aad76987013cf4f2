/**
 * The RBAC rule the controller lacks when the API server refuses one of the signer verbs (approve,
 * sign, attest) with 403: spelled out whole, so an operator can paste it into the ClusterRole
 * instead of guessing from "forbidden".
 */

export type SignerVerb = "approve" | "sign" | "attest";

/**
 * "the controller needs verb sign on certificates.k8s.io signers/example.com/foo; add to its
 * ClusterRole: {apiGroups: [certificates.k8s.io], resources: [signers], resourceNames:
 * [example.com/foo], verbs: [sign]} (or "example.com/*" in resourceNames for every signer name of
 * that domain)".
 */
export function missingSignerGrant(verb: SignerVerb, signerName: string): string {
  return (
    `the controller needs verb ${verb} on certificates.k8s.io signers/${signerName}; ` +
    `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ["signers"], ` +
    `resourceNames: ["${signerName}"], verbs: ["${verb}"]}` +
    domainForm(signerName)
  );
}

/** One rule for the whole domain covers later Signers too (the API server honours "<domain>/*"). */
function domainForm(signerName: string): string {
  const slash = signerName.indexOf("/");
  return slash > 0
    ? ` (or "${signerName.slice(0, slash)}/*" in resourceNames for every signer name of that domain)`
    : "";
}

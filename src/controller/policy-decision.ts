/**
 * The one policy decision both CSR handlers take: the approver before approving a tenant CSR, the
 * signer before issuing. Both ask the same question the same way, so nothing is approved that
 * the signer would then refuse.
 */
import type { CertificateRequest } from "../pki/certificate-request.js";
import { evaluateSigningRequest, type SigningDecision } from "../policy/signing-policy.js";
import type { SignerSpec } from "../api/signer.js";
import type { CsrObject } from "./csr-object.js";

export function decideByPolicy(
  spec: SignerSpec,
  csr: CsrObject,
  request: CertificateRequest,
  tenantNamespaces: ReadonlySet<string>,
): SigningDecision {
  return evaluateSigningRequest(
    spec,
    {
      requester: { username: csr.spec?.username ?? "", groups: csr.spec?.groups ?? [] },
      request,
      usages: csr.spec?.usages ?? [],
      ...(csr.spec?.expirationSeconds !== undefined ? { expirationSeconds: csr.spec.expirationSeconds } : {}),
    },
    { tenantNamespaces },
  );
}

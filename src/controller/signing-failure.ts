/**
 * What a failed issuance means for the Signer, shared by the CSR and PodCertificateRequest paths:
 * a token error (the token vanished, its session broke) makes the Signer not ready until the token
 * opens again; a CA error (the chain expires too soon) is transient trouble; anything else is a bug
 * and is rethrown.
 */
import { CertificateAuthorityError } from "../pki/certificate-authority.js";
import type { ActiveSigner } from "./signer-builder.js";
import type { SignerProblem } from "./signer-problem.js";
import type { SignerRegistry } from "./signer-registry.js";

export function issuanceFailure(
  registry: SignerRegistry,
  signer: ActiveSigner,
  error: unknown,
): SignerProblem {
  const tokenProblem = registry.signingKeyFailed(signer.objectName, signer.authority!.signingKey, error);
  if (tokenProblem) return tokenProblem;
  if (!(error instanceof CertificateAuthorityError)) throw error;
  return { reason: `CertificateAuthority${error.reason}`, message: error.message };
}

/**
 * The SignerNotReady Event of a request whose Signer cannot sign. It names only the reason: the
 * Signer's message can name its module path, token and key labels, PIN file or Secret names, and
 * a PodCertificateRequest's Events are readable by its namespace's tenant. The Signer's Ready
 * condition carries the message.
 */
export function signerNotReadyMessage(signer: ActiveSigner, problem: SignerProblem): string {
  return `Signer ${signer.objectName} cannot sign: ${problem.reason} (its Ready condition says why)`;
}

/**
 * The token keys of Signers through src/pki/pkcs11. That layer loads pkcs11js on first use, so a
 * controller whose Signers keep their keys in files never loads the native binding, and a module
 * that fails to load is the problem of the Signers naming it (Pkcs11ModuleLoadFailed).
 */
import type { Pkcs11KeySource } from "../api/signer.js";
import { buildCertificateRequest } from "../pki/certificate-request-builder.js";
import { openPkcs11SigningKey, Pkcs11Error } from "../pki/pkcs11/index.js";
import type { ClosableSigningKey, Pkcs11KeyReason, TokenKeyBackend } from "./token-keys.js";

export const pkcs11TokenKeyBackend: TokenKeyBackend = {
  open(
    source: Pkcs11KeySource,
    pin: string,
    options: { refusedPinRetryMs: number },
  ): Promise<ClosableSigningKey> {
    return openPkcs11SigningKey(
      {
        modulePath: source.module,
        ...(source.tokenLabel !== undefined ? { tokenLabel: source.tokenLabel } : { slotId: source.slot! }),
        ...(source.keyLabel !== undefined
          ? { keyLabel: source.keyLabel }
          : { keyId: new Uint8Array(Buffer.from(source.keyId!, "hex")) }),
      },
      pin,
      options,
    );
  },
  certificateRequest: buildCertificateRequest,
  reasonOf(error: unknown): Pkcs11KeyReason | undefined {
    // Every Pkcs11FailureReason is one of the Signer's token reasons (src/api/reasons.ts).
    return error instanceof Pkcs11Error ? (error.reason satisfies Pkcs11KeyReason) : undefined;
  },
};

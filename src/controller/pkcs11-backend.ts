/**
 * The token keys of Signers through src/pki/pkcs11 (pkcs11js). Loaded on first use, so a controller
 * whose Signers keep their keys in files never loads the native binding, and a binding that fails to
 * load is the problem of the Signers that name a token (Pkcs11ModuleLoadFailed), not the process's.
 */
import type { Pkcs11KeySource } from "../api/signer.js";
import { pkcs11KeyReasons } from "../api/reasons.js";
import type { SigningKey } from "../pki/signing-key.js";
import type { DistinguishedName } from "../pki/names.js";
import type { ClosableSigningKey, Pkcs11KeyReason, TokenKeyBackend } from "./token-keys.js";

type Pkcs11Module = typeof import("../pki/pkcs11/index.js");

let loading: Promise<Pkcs11Module> | undefined;

class BindingLoadError extends Error {
  readonly reason = "Pkcs11ModuleLoadFailed";
}

async function binding(): Promise<Pkcs11Module> {
  loading ??= import("../pki/pkcs11/index.js").catch((error: unknown) => {
    loading = undefined; // tried again on the next open
    throw new BindingLoadError(
      `the PKCS#11 binding (pkcs11js) cannot be loaded: ${(error as Error).message}`,
    );
  });
  return loading;
}

export const pkcs11TokenKeyBackend: TokenKeyBackend = {
  async open(source: Pkcs11KeySource, pin: string): Promise<ClosableSigningKey> {
    const { openPkcs11SigningKey } = await binding();
    return openPkcs11SigningKey(
      {
        modulePath: source.module,
        ...(source.tokenLabel !== undefined ? { tokenLabel: source.tokenLabel } : { slotId: source.slot! }),
        ...(source.keyLabel !== undefined
          ? { keyLabel: source.keyLabel }
          : { keyId: new Uint8Array(Buffer.from(source.keyId!, "hex")) }),
      },
      pin,
    );
  },
  async certificateRequest(key: SigningKey, subject: DistinguishedName): Promise<Uint8Array> {
    const { buildCertificateRequest } = await import("../pki/certificate-request-builder.js");
    return buildCertificateRequest(key, subject);
  },
  reasonOf(error: unknown): Pkcs11KeyReason | undefined {
    const reason = (error as { reason?: unknown } | undefined)?.reason;
    return pkcs11KeyReasons.find((known) => known === reason);
  },
};

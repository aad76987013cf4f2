import { Pkcs11Error } from "./errors.js";
import { describeToken, type Pkcs11Binding, type Template } from "./module.js";

/** Where a CA key lives in a PKCS#11 token. */
export interface Pkcs11KeyLocation {
  /** The PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly modulePath: string;
  /** The token's label; exactly one of tokenLabel and slotId. */
  readonly tokenLabel?: string;
  readonly slotId?: number;
  /** The key's CKA_LABEL and/or CKA_ID; at least one. */
  readonly keyLabel?: string;
  readonly keyId?: Uint8Array;
}

export function describeKey(location: Pkcs11KeyLocation): string {
  const names = [
    location.keyLabel !== undefined ? `label "${location.keyLabel}"` : undefined,
    location.keyId !== undefined ? `id ${Buffer.from(location.keyId).toString("hex")}` : undefined,
  ].filter((name) => name !== undefined);
  return `key ${names.join(", ")} in ${describeToken(location)} of PKCS#11 module ${location.modulePath}`;
}

export function checkLocation(location: Pkcs11KeyLocation): void {
  if ((location.tokenLabel === undefined) === (location.slotId === undefined)) {
    throw new Pkcs11Error(
      "Pkcs11TokenNotFound",
      "name the PKCS#11 token by exactly one of its label or slot id",
    );
  }
  if (location.keyLabel === undefined && location.keyId === undefined) {
    throw new Pkcs11Error(
      "Pkcs11KeyNotFound",
      "name the PKCS#11 key by its label (CKA_LABEL), its id (CKA_ID) or both",
    );
  }
}

export function namingTemplate(pkcs11: Pkcs11Binding, location: Pkcs11KeyLocation): Template {
  const template: Template = [];
  if (location.keyLabel !== undefined) template.push({ type: pkcs11.CKA_LABEL, value: location.keyLabel });
  if (location.keyId !== undefined)
    template.push({ type: pkcs11.CKA_ID, value: Buffer.from(location.keyId) });
  return template;
}

import type { KeyObject } from "node:crypto";
import type { CertificateAuthorityKeyType } from "../offline-ca.js";
import { describeCause, Pkcs11Error, returnValueName } from "./errors.js";
import { ecPublicKey, keyPairGeneration, rsaPublicKey } from "./key-attributes.js";
import { namingTemplate, type Pkcs11KeyLocation } from "./key-location.js";
import { describeToken, tokenUnavailable, type Handle, type Pkcs11Module, type Template } from "./module.js";
import type { KeyProtection } from "./worker-protocol.js";

function findObjects(module: Pkcs11Module, session: Handle, template: Template): Handle[] {
  const library = module.library;
  library.C_FindObjectsInit(session, template);
  try {
    return library.C_FindObjects(session, 2);
  } finally {
    library.C_FindObjectsFinal(session);
  }
}

/** A session on the token, logged in. Maps failures to the reasons an operator can act on. */
export function openSession(
  module: Pkcs11Module,
  location: Pkcs11KeyLocation,
  pin: string,
  what: string,
): { slot: Handle; session: Handle } {
  let slot: Handle | undefined;
  try {
    slot = module.findSlot(location);
  } catch (error) {
    throw tokenUnavailable(what, error);
  }
  if (slot === undefined) {
    throw new Pkcs11Error(
      "Pkcs11TokenNotFound",
      `${what}: PKCS#11 module ${location.modulePath} has no ${describeToken(location)} present`,
    );
  }
  let session: Handle;
  try {
    session = module.library.C_OpenSession(
      slot,
      module.binding.CKF_SERIAL_SESSION | module.binding.CKF_RW_SESSION,
    );
  } catch (error) {
    throw tokenUnavailable(what, error);
  }
  try {
    module.login(slot, session, pin, what);
  } catch (error) {
    closeQuietly(module, session);
    throw error;
  }
  return { slot, session };
}

export function closeQuietly(module: Pkcs11Module, session: Handle): void {
  try {
    module.library.C_CloseSession(session);
  } catch {
    // A session of a vanished token or a re-initialised library is already gone.
  }
}

export interface KeyObjects {
  privateKey: Handle;
  publicKey: KeyObject;
  protection: KeyProtection;
}

/** CKA_SENSITIVE and CKA_EXTRACTABLE of the private key (a token that will not say: the worst). */
function readProtection(module: Pkcs11Module, session: Handle, privateKey: Handle): KeyProtection {
  const pkcs11 = module.binding;
  const flag = (type: number, unknown: boolean): boolean => {
    try {
      const [attribute] = module.library.C_GetAttributeValue(session, privateKey, [{ type }]);
      const value = attribute?.value;
      return value instanceof Buffer ? value.length > 0 && value[0] !== 0 : Boolean(value);
    } catch {
      // The token does not disclose the attribute: assume the weaker protection.
      return unknown;
    }
  };
  return { sensitive: flag(pkcs11.CKA_SENSITIVE, false), extractable: flag(pkcs11.CKA_EXTRACTABLE, true) };
}

/** Finds the private key and reads its public half (the public key object, or RSA's own attributes). */
export function findKey(
  module: Pkcs11Module,
  session: Handle,
  location: Pkcs11KeyLocation,
  what: string,
): KeyObjects {
  const pkcs11 = module.binding;
  const library = module.library;
  const naming = namingTemplate(pkcs11, location);
  let privateKeys: Handle[];
  let publicKeys: Handle[];
  try {
    privateKeys = findObjects(module, session, [
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
      ...naming,
    ]);
    publicKeys = findObjects(module, session, [
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY },
      ...naming,
    ]);
  } catch (error) {
    throw tokenUnavailable(what, error);
  }
  if (privateKeys.length === 0)
    throw new Pkcs11Error("Pkcs11KeyNotFound", `${what}: no such private key in the token`);
  if (privateKeys.length > 1) {
    throw new Pkcs11Error(
      "Pkcs11KeyNotFound",
      `${what}: more than one private key matches; name it by label and id`,
    );
  }
  const privateKey = privateKeys[0]!;
  try {
    const [keyType] = library.C_GetAttributeValue(session, privateKey, [{ type: pkcs11.CKA_KEY_TYPE }]);
    const type = keyType!.value instanceof Buffer ? keyType!.value.readUInt32LE(0) : Number(keyType!.value);
    if (type === pkcs11.CKK_EC) {
      if (publicKeys.length !== 1) {
        throw new Pkcs11Error(
          "Pkcs11KeyNotFound",
          `${what}: the EC private key needs exactly one public key object with the same label/id`,
        );
      }
      const [params, point] = library.C_GetAttributeValue(session, publicKeys[0]!, [
        { type: pkcs11.CKA_EC_PARAMS },
        { type: pkcs11.CKA_EC_POINT },
      ]);
      return {
        privateKey,
        publicKey: ecPublicKey(params!.value as Buffer, point!.value as Buffer, what),
        protection: readProtection(module, session, privateKey),
      };
    }
    if (type === pkcs11.CKK_RSA) {
      // RSA private key objects carry the modulus and public exponent themselves.
      const [modulus, exponent] = library.C_GetAttributeValue(session, privateKey, [
        { type: pkcs11.CKA_MODULUS },
        { type: pkcs11.CKA_PUBLIC_EXPONENT },
      ]);
      return {
        privateKey,
        publicKey: rsaPublicKey(modulus!.value as Buffer, exponent!.value as Buffer, what),
        protection: readProtection(module, session, privateKey),
      };
    }
    throw new Pkcs11Error(
      "Pkcs11KeyUnsupported",
      `${what}: the key is neither RSA nor EC (CKA_KEY_TYPE ${type})`,
    );
  } catch (error) {
    if (error instanceof Pkcs11Error) throw error;
    throw tokenUnavailable(what, error);
  }
}

export function generateInToken(
  module: Pkcs11Module,
  location: Pkcs11KeyLocation,
  pin: string,
  keyType: CertificateAuthorityKeyType,
  what: string,
): void {
  const pkcs11 = module.binding;
  const { session } = openSession(module, location, pin, what);
  try {
    const naming = namingTemplate(pkcs11, location);
    const existing = findObjects(module, session, naming);
    if (existing.length > 0) {
      throw new Pkcs11Error(
        "Pkcs11KeyUnsupported",
        `${what}: the token already holds an object with this label/id; choose another`,
      );
    }
    const generation = keyPairGeneration(pkcs11, keyType, naming);
    module.library.C_GenerateKeyPair(
      session,
      { mechanism: generation.mechanism },
      generation.publicTemplate,
      generation.privateTemplate,
    );
  } catch (error) {
    if (error instanceof Pkcs11Error) throw error;
    throw new Pkcs11Error(
      returnValueName(error) === "CKR_MECHANISM_INVALID" ? "Pkcs11KeyUnsupported" : "Pkcs11TokenUnavailable",
      `${what}: generating a ${keyType} key pair failed (${describeCause(error, pin)})`,
    );
  } finally {
    closeQuietly(module, session);
  }
}

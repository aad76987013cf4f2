import { verify } from "node:crypto";
import type { CertificateAuthorityKeyType } from "../offline-ca.js";
import { signatureProfileFor } from "../signing-key.js";
import { Pkcs11Error } from "./errors.js";
import { checkLocation, describeKey, type Pkcs11KeyLocation } from "./key-location.js";
import { loadModule, type Pkcs11Module } from "./module.js";
import { closeQuietly, findKey, generateInToken, openSession } from "./token-objects.js";
import { TokenSigningKey, type Pkcs11SigningKey } from "./token-signing-key.js";

/** Checks that the private key signs for the public key read beside it (a mismatched pair is a misconfiguration). */
async function checkPair(key: TokenSigningKey, what: string): Promise<void> {
  const probe = Buffer.from("csr-signer PKCS#11 key pair check");
  const signature = await key.sign(probe);
  const hash = signatureProfileFor(key.publicKey).hash;
  if (!verify(hash, probe, key.publicKey, signature)) {
    throw new Pkcs11Error(
      "Pkcs11KeyUnsupported",
      `${what}: the public key object does not match the private key`,
    );
  }
}

async function openOnce(
  module: Pkcs11Module,
  location: Pkcs11KeyLocation,
  pin: string,
  what: string,
): Promise<TokenSigningKey> {
  const key = await module.use(() => {
    const { slot, session } = openSession(module, location, pin, what);
    try {
      return new TokenSigningKey(
        module,
        location,
        pin,
        what,
        slot,
        session,
        findKey(module, session, location, what),
      );
    } catch (error) {
      closeQuietly(module, session);
      throw error;
    }
  });
  try {
    await checkPair(key, what);
  } catch (error) {
    await key.close();
    throw error;
  }
  return key;
}

/**
 * Failures that a token removed or re-initialised since the library was initialised would explain.
 * Not a missing key: objects made on a token since (by another process, the vendor's tools) are
 * seen without re-initialising, so a mistyped key label never re-initialises a shared library.
 * A missing token does, once per open: the controller's backoff bounds how often, and the keys of
 * other tokens reopen their sessions by themselves, waiting only for the C_Finalize + C_Initialize.
 */
const staleLibrarySymptoms = new Set(["Pkcs11TokenNotFound", "Pkcs11TokenUnavailable"]);

/**
 * Opens the CA key at `location`, logging in with `pin`. A token that is not found is looked for
 * again after re-initialising the library once (a token replaced while the process ran). Rejects
 * with a Pkcs11Error whose reason says what to fix.
 */
export async function openPkcs11SigningKey(
  location: Pkcs11KeyLocation,
  pin: string,
): Promise<Pkcs11SigningKey> {
  checkLocation(location);
  const what = describeKey(location);
  const module = await loadModule(location.modulePath);
  const generation = module.generation;
  try {
    return await openOnce(module, location, pin, what);
  } catch (error) {
    if (!(error instanceof Pkcs11Error) || !staleLibrarySymptoms.has(error.reason)) throw error;
    if (module.generation === generation) await module.reinitialize();
    return openOnce(module, location, pin, what);
  }
}

/**
 * Generates a CA key pair inside the token: the private key sensitive, never extractable, kept on
 * the token, only for signing. Refuses when a key with that label/id exists already.
 */
export async function generatePkcs11KeyPair(
  location: Pkcs11KeyLocation,
  pin: string,
  keyType: CertificateAuthorityKeyType,
): Promise<Pkcs11SigningKey> {
  checkLocation(location);
  const what = describeKey(location);
  const module = await loadModule(location.modulePath);
  try {
    await module.use(() => generateInToken(module, location, pin, keyType, what));
  } catch (error) {
    if (!(error instanceof Pkcs11Error) || error.reason !== "Pkcs11TokenNotFound") throw error;
    // Perhaps a token initialised after the library was: look again once.
    await module.reinitialize();
    await module.use(() => generateInToken(module, location, pin, keyType, what));
  }
  return openOnce(module, location, pin, what);
}

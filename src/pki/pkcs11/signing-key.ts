import { createHash, verify, type KeyObject } from "node:crypto";
import type { CertificateAuthorityKeyType } from "../offline-ca.js";
import { signatureProfileFor, type SigningKey } from "../signing-key.js";
import { ecdsaSignatureToDer } from "./ecdsa-signature.js";
import { describeCause, isRequestRefusal, Pkcs11Error, returnValueName } from "./errors.js";
import { ecPublicKey, keyPairGeneration, rsaPublicKey } from "./key-attributes.js";
import {
  describeToken,
  loadModule,
  tokenUnavailable,
  type Handle,
  type Pkcs11Binding,
  type Pkcs11Module,
  type Template,
} from "./module.js";

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

/** A CA key in a PKCS#11 token. `close()` ends its sessions; a closed key no longer signs. */
export interface Pkcs11SigningKey extends SigningKey {
  close(): Promise<void>;
}

/** Sessions a key keeps for concurrent signing: libuv's thread pool (4 by default) runs no more at once. */
const maxSessionsPerKey = 4;
/** Signatures are at most this long (RSA-4096 is 512 bytes; ECDSA P-521 132). */
const maxSignatureBytes = 1024;

function describeKey(location: Pkcs11KeyLocation): string {
  const names = [
    location.keyLabel !== undefined ? `label "${location.keyLabel}"` : undefined,
    location.keyId !== undefined ? `id ${Buffer.from(location.keyId).toString("hex")}` : undefined,
  ].filter((name) => name !== undefined);
  return `key ${names.join(", ")} in ${describeToken(location)} of PKCS#11 module ${location.modulePath}`;
}

function checkLocation(location: Pkcs11KeyLocation): void {
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

function namingTemplate(pkcs11: Pkcs11Binding, location: Pkcs11KeyLocation): Template {
  const template: Template = [];
  if (location.keyLabel !== undefined) template.push({ type: pkcs11.CKA_LABEL, value: location.keyLabel });
  if (location.keyId !== undefined)
    template.push({ type: pkcs11.CKA_ID, value: Buffer.from(location.keyId) });
  return template;
}

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
function openSession(
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

function closeQuietly(module: Pkcs11Module, session: Handle): void {
  try {
    module.library.C_CloseSession(session);
  } catch {
    // A session of a vanished token or a re-initialised library is already gone.
  }
}

interface KeyObjects {
  privateKey: Handle;
  publicKey: KeyObject;
}

/** Finds the private key and reads its public half (the public key object, or RSA's own attributes). */
function findKey(
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
      return { privateKey, publicKey: ecPublicKey(params!.value as Buffer, point!.value as Buffer, what) };
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

class TokenSigningKey implements Pkcs11SigningKey {
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: Uint8Array;
  readonly description: string;
  readonly #module: Pkcs11Module;
  readonly #location: Pkcs11KeyLocation;
  /** Kept to reopen sessions after the library was re-initialised for another token's sake. */
  readonly #pin: string;
  readonly #what: string;
  readonly #hash: "sha256" | "sha384" | "sha512";
  readonly #isEc: boolean;
  readonly #publicKeyDer: Buffer;
  #slot: Handle;
  #privateKey: Handle;
  #generation: number;
  #idle: Handle[] = [];
  #sessions = 0;
  #waiting: (() => void)[] = [];
  #closed = false;

  constructor(
    module: Pkcs11Module,
    location: Pkcs11KeyLocation,
    pin: string,
    what: string,
    slot: Handle,
    session: Handle,
    objects: KeyObjects,
  ) {
    this.#module = module;
    this.#location = location;
    this.#pin = pin;
    this.#what = what;
    this.#slot = slot;
    this.#privateKey = objects.privateKey;
    this.#generation = module.generation;
    this.#idle.push(session);
    this.#sessions = 1;
    this.publicKey = objects.publicKey;
    this.#publicKeyDer = objects.publicKey.export({ format: "der", type: "spki" });
    const profile = signatureProfileFor(objects.publicKey);
    this.#hash = profile.hash;
    this.#isEc = objects.publicKey.asymmetricKeyType === "ec";
    this.signatureAlgorithm = profile.algorithmIdentifier;
    this.description = `${profile.description} (PKCS#11)`;
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new Pkcs11Error("Pkcs11TokenUnavailable", `${this.#what}: the key was closed`);
    return this.#module.use(async () => {
      if (this.#generation !== this.#module.generation) this.#reopen();
      const session = await this.#acquire();
      let healthy = false;
      try {
        const signature = await this.#signWith(session, data).catch((error: unknown) => {
          if (!loggedOutSymptoms.has(returnValueName(error) ?? "")) throw error;
          // The token logged out (another key on it closed the last session, or logged in with
          // another PIN), which also invalidates private object handles: log in again with this
          // key's PIN, find the key again and sign once more.
          this.#findAgain(session);
          return this.#signWith(session, data);
        });
        healthy = true;
        return signature;
      } catch (error) {
        if (error instanceof Pkcs11Error) throw error;
        if (isRequestRefusal(error)) {
          healthy = true;
          throw new Pkcs11Error(
            "Pkcs11SigningFailed",
            `${this.#what}: the token refused to sign (${describeCause(error, this.#pin)})`,
          );
        }
        throw tokenUnavailable(this.#what, error, this.#pin);
      } finally {
        this.#release(session, healthy);
      }
    });
  }

  async #signWith(session: Handle, data: Uint8Array): Promise<Uint8Array> {
    const pkcs11 = this.#module.binding;
    const library = this.#module.library;
    const output = Buffer.alloc(maxSignatureBytes);
    if (this.#isEc) {
      // CKM_ECDSA signs a digest we compute: CKM_ECDSA_SHA256/384 are missing from many tokens (SoftHSM 2.6).
      library.C_SignInit(session, { mechanism: pkcs11.CKM_ECDSA }, this.#privateKey);
      const digest = createHash(this.#hash).update(data).digest();
      return ecdsaSignatureToDer(await library.C_SignAsync(session, digest, output));
    }
    library.C_SignInit(session, { mechanism: pkcs11.CKM_SHA256_RSA_PKCS }, this.#privateKey);
    return new Uint8Array(await library.C_SignAsync(session, Buffer.from(data), output));
  }

  /** After the library was re-initialised: a new session, logged in, and the same key found again. */
  #reopen(): void {
    this.#idle = [];
    this.#sessions = 0;
    const generation = this.#module.generation;
    let opened: { slot: Handle; session: Handle };
    try {
      opened = openSession(this.#module, this.#location, this.#pin, this.#what);
    } catch (error) {
      throw asTokenUnavailable(error, this.#what);
    }
    this.#slot = opened.slot;
    try {
      this.#findAgain(opened.session);
    } catch (error) {
      closeQuietly(this.#module, opened.session);
      throw error;
    }
    this.#idle.push(opened.session);
    this.#sessions = 1;
    this.#generation = generation;
  }

  /** Logs in through `session` and finds the private key again, which must be the same key. */
  #findAgain(session: Handle): void {
    try {
      this.#module.login(this.#slot, session, this.#pin, this.#what);
      const objects = findKey(this.#module, session, this.#location, this.#what);
      if (!objects.publicKey.export({ format: "der", type: "spki" }).equals(this.#publicKeyDer)) {
        throw new Pkcs11Error(
          "Pkcs11TokenUnavailable",
          `${this.#what}: the token now holds a different key under this name`,
        );
      }
      this.#privateKey = objects.privateKey;
    } catch (error) {
      throw asTokenUnavailable(error, this.#what);
    }
  }

  async #acquire(): Promise<Handle> {
    for (;;) {
      const idle = this.#idle.pop();
      if (idle !== undefined) return idle;
      if (this.#sessions < maxSessionsPerKey) {
        this.#sessions++;
        try {
          return this.#module.library.C_OpenSession(this.#slot, this.#module.binding.CKF_SERIAL_SESSION);
        } catch (error) {
          this.#sessions--;
          throw tokenUnavailable(this.#what, error);
        }
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #release(session: Handle, healthy: boolean): void {
    if (healthy && !this.#closed) {
      this.#idle.push(session);
    } else {
      // A failed session may be broken (a half-finished operation, a vanished token): drop it.
      this.#sessions--;
      closeQuietly(this.#module, session);
    }
    this.#waiting.shift()?.();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#module.use(() => {
      if (this.#generation !== this.#module.generation) return; // sessions of an earlier initialisation are gone
      for (const session of this.#idle) closeQuietly(this.#module, session);
      this.#sessions -= this.#idle.length;
      this.#idle = [];
      // Closing a token's last session logs it out; the next key on it logs in again.
      if (this.#sessions === 0) this.#module.forgetLogin(this.#slot);
    });
    for (const wake of this.#waiting.splice(0)) wake();
  }

  toJSON(): object {
    return { description: this.description };
  }
}

/** Return values of a sign on a token that logged out since the key was opened. */
const loggedOutSymptoms = new Set([
  "CKR_USER_NOT_LOGGED_IN",
  "CKR_OBJECT_HANDLE_INVALID",
  "CKR_KEY_HANDLE_INVALID",
]);

/** A key that was working and no longer is: whatever the cause, the token is unavailable to it. */
function asTokenUnavailable(error: unknown, what: string): Pkcs11Error {
  if (error instanceof Pkcs11Error) {
    return error.reason === "Pkcs11TokenUnavailable"
      ? error
      : new Pkcs11Error("Pkcs11TokenUnavailable", error.message);
  }
  return tokenUnavailable(what, error);
}

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

async function generateInToken(
  module: Pkcs11Module,
  location: Pkcs11KeyLocation,
  pin: string,
  keyType: CertificateAuthorityKeyType,
  what: string,
): Promise<void> {
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
    await module.library.C_GenerateKeyPairAsync(
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

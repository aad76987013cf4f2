import { createHash, type KeyObject } from "node:crypto";
import { signatureProfileFor, type SigningKey } from "../signing-key.js";
import { ecdsaSignatureToDer } from "./ecdsa-signature.js";
import { describeCause, isRequestRefusal, Pkcs11Error, returnValueName } from "./errors.js";
import type { Pkcs11KeyLocation } from "./key-location.js";
import { tokenUnavailable, type Handle, type Pkcs11Module } from "./module.js";
import { closeQuietly, findKey, openSession, type KeyObjects } from "./token-objects.js";

/** A CA key in a PKCS#11 token. `close()` ends its sessions; a closed key no longer signs. */
export interface Pkcs11SigningKey extends SigningKey {
  close(): Promise<void>;
}

/** Sessions a key keeps for concurrent signing: libuv's thread pool (4 by default) runs no more at once. */
const maxSessionsPerKey = 4;
/** Signatures are at most this long (RSA-4096 is 512 bytes; ECDSA P-521 132). */
const maxSignatureBytes = 1024;

export class TokenSigningKey implements Pkcs11SigningKey {
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

/**
 * An open CA key as its module's worker holds it: one logged-in session and the private key's
 * handle. Calls are synchronous and one at a time (the worker's thread waits for the token), so
 * one session per key is all a key can use.
 */
import { createHash } from "node:crypto";
import { signatureProfileFor } from "../signing-key.js";
import { ecdsaSignatureToDer } from "./ecdsa-signature.js";
import { describeCause, isRequestRefusal, Pkcs11Error, returnValueName } from "./errors.js";
import type { Pkcs11KeyLocation } from "./key-location.js";
import { tokenUnavailable, type Handle, type Pkcs11Module } from "./module.js";
import { closeQuietly, findKey, openSession, type KeyObjects } from "./token-objects.js";

/** Signatures are at most this long (RSA-4096 is 512 bytes; ECDSA P-521 132). */
const maxSignatureBytes = 1024;

export class TokenKeySession {
  readonly objects: KeyObjects;
  readonly #module: Pkcs11Module;
  readonly #location: Pkcs11KeyLocation;
  /** Kept to reopen the session after the library was re-initialised for another token's sake. */
  readonly #pin: string;
  readonly #what: string;
  readonly #hash: "sha256" | "sha384" | "sha512";
  readonly #isEc: boolean;
  readonly #publicKeyDer: Buffer;
  #slot: Handle;
  #session: Handle | undefined;
  #privateKey: Handle;
  #generation: number;

  private constructor(
    module: Pkcs11Module,
    location: Pkcs11KeyLocation,
    pin: string,
    what: string,
    opened: { slot: Handle; session: Handle },
    objects: KeyObjects,
  ) {
    this.#module = module;
    this.#location = location;
    this.#pin = pin;
    this.#what = what;
    this.#slot = opened.slot;
    this.#session = opened.session;
    this.objects = objects;
    this.#privateKey = objects.privateKey;
    this.#generation = module.generation;
    this.#publicKeyDer = objects.publicKey.export({ format: "der", type: "spki" });
    this.#hash = signatureProfileFor(objects.publicKey).hash;
    this.#isEc = objects.publicKey.asymmetricKeyType === "ec";
  }

  /** Opens a session on the token, logs in and finds the key. */
  static open(module: Pkcs11Module, location: Pkcs11KeyLocation, pin: string, what: string): TokenKeySession {
    const opened = openSession(module, location, pin, what);
    try {
      return new TokenKeySession(
        module,
        location,
        pin,
        what,
        opened,
        findKey(module, opened.session, location, what),
      );
    } catch (error) {
      closeQuietly(module, opened.session);
      throw error;
    }
  }

  sign(data: Uint8Array): Uint8Array {
    if (this.#generation !== this.#module.generation || this.#session === undefined) this.#reopen();
    const session = this.#session!;
    try {
      try {
        return this.#signWith(session, data);
      } catch (error) {
        if (!loggedOutSymptoms.has(returnValueName(error) ?? "")) throw error;
        // The token logged out (another key on it closed the last session, or logged in with
        // another PIN), which also invalidates private object handles: log in again with this
        // key's PIN, find the key again and sign once more.
        this.#findAgain(session);
        return this.#signWith(session, data);
      }
    } catch (error) {
      if (error instanceof Pkcs11Error) throw error;
      if (isRequestRefusal(error)) {
        throw new Pkcs11Error(
          "Pkcs11SigningFailed",
          `${this.#what}: the token refused to sign (${describeCause(error, this.#pin)})`,
        );
      }
      // The session may be broken (a half-finished operation, a vanished token): drop it.
      closeQuietly(this.#module, session);
      this.#session = undefined;
      throw tokenUnavailable(this.#what, error, this.#pin);
    }
  }

  #signWith(session: Handle, data: Uint8Array): Uint8Array {
    const pkcs11 = this.#module.binding;
    const library = this.#module.library;
    const output = Buffer.alloc(maxSignatureBytes);
    if (this.#isEc) {
      // CKM_ECDSA signs a digest we compute: CKM_ECDSA_SHA256/384 are missing from many tokens (SoftHSM 2.6).
      library.C_SignInit(session, { mechanism: pkcs11.CKM_ECDSA }, this.#privateKey);
      const digest = createHash(this.#hash).update(data).digest();
      return ecdsaSignatureToDer(library.C_Sign(session, digest, output));
    }
    library.C_SignInit(session, { mechanism: pkcs11.CKM_SHA256_RSA_PKCS }, this.#privateKey);
    return new Uint8Array(library.C_Sign(session, Buffer.from(data), output));
  }

  /** After the library was re-initialised or the session dropped: a new session, logged in, the same key. */
  #reopen(): void {
    if (this.#session !== undefined && this.#generation === this.#module.generation) {
      closeQuietly(this.#module, this.#session);
    }
    this.#session = undefined;
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
    this.#session = opened.session;
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

  /**
   * Ends the session. `lastOnToken`: no other key of this worker uses the token, whose login
   * ended with its last session.
   */
  close(lastOnToken: boolean): void {
    if (this.#session !== undefined && this.#generation === this.#module.generation) {
      closeQuietly(this.#module, this.#session);
    }
    this.#session = undefined;
    if (lastOnToken) this.#module.forgetLogin(this.#slot);
  }

  get slotKey(): string {
    return this.#slot.toString("hex");
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

/**
 * One PKCS#11 library, as its worker thread (worker-entry.ts) holds it. Every call here is
 * synchronous: the worker's thread is the one that waits for the token, never the main thread's
 * event loop nor libuv's thread pool (see module-worker.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type * as Pkcs11Binding from "pkcs11js";
import { describeCause, isPinRefusal, Pkcs11Error, returnValueName } from "./errors.js";

export type Pkcs11Binding = typeof Pkcs11Binding;
export type Handle = Buffer;
export type Template = Pkcs11Binding.Template;

/** Where a token is: by label (what operators know) or by slot number. */
export interface TokenSelector {
  readonly tokenLabel?: string;
  readonly slotId?: number;
}

export function describeToken(token: TokenSelector): string {
  return token.tokenLabel !== undefined ? `token "${token.tokenLabel}"` : `slot ${token.slotId}`;
}

/**
 * The library, initialised. Cryptoki allows one C_Initialize per library per process: a worker
 * that replaces a stuck one finds the library initialised already and uses it as it is.
 *
 * A token that is removed or re-initialised while the process runs is only seen again after
 * C_Finalize + C_Initialize (SoftHSM, like most libraries, reads its slots at initialisation).
 * `reinitialize()` does that and bumps `generation`, which tells the keys of other tokens to reopen
 * their sessions instead of failing. It is rate-limited by its caller (worker-entry.ts): every
 * re-initialisation makes every key of the module log in again.
 */
export class Pkcs11Module {
  readonly path: string;
  readonly binding: Pkcs11Binding;
  readonly library: Pkcs11Binding.PKCS11;
  #generation = 0;
  #lastReinitialization = -Infinity;
  /** Tokens whose absence re-initialised the library already. */
  readonly #reinitializedFor = new Set<string>();
  /**
   * The PIN each slot is logged in with, and its SHA-256 (login state is per token, for all
   * sessions of the process). Kept to log back in after another key's refused PIN.
   */
  readonly #logins = new Map<string, { pin: string; digest: Buffer }>();

  private constructor(path: string, binding: Pkcs11Binding, library: Pkcs11Binding.PKCS11) {
    this.path = path;
    this.binding = binding;
    this.library = library;
  }

  get generation(): number {
    return this.#generation;
  }

  static load(path: string, pkcs11: Pkcs11Binding): Pkcs11Module {
    const library = new pkcs11.PKCS11();
    try {
      library.load(path);
    } catch (error) {
      throw new Pkcs11Error(
        "Pkcs11ModuleLoadFailed",
        `PKCS#11 module ${path} could not be loaded: ${describeCause(error)}`,
      );
    }
    const module = new Pkcs11Module(path, pkcs11, library);
    module.#initialize();
    return module;
  }

  #initialize(): void {
    try {
      // OS locking: a worker replacing a stuck one calls in while the stuck call still runs.
      this.library.C_Initialize({ flags: this.binding.CKF_OS_LOCKING_OK });
    } catch (error) {
      // Already initialised (an earlier worker of this process, another user of the library): usable as it is.
      if (returnValueName(error) === "CKR_CRYPTOKI_ALREADY_INITIALIZED") return;
      throw new Pkcs11Error(
        "Pkcs11ModuleLoadFailed",
        `PKCS#11 module ${this.path} failed to initialise: ${describeCause(error)}`,
      );
    }
  }

  /**
   * Whether a missing `token` may re-initialise the library now: when no re-initialisation ran in
   * the last `intervalMs`, or when this token never caused one (a token just made elsewhere is seen
   * at its first open; a misspelt or lost one re-initialises the module at most once per interval).
   */
  mayReinitialize(token: TokenSelector, intervalMs: number, now = performance.now()): boolean {
    return now - this.#lastReinitialization >= intervalMs || !this.#reinitializedFor.has(selectorKey(token));
  }
  /** C_Finalize + C_Initialize, so removed or new tokens are seen. Every session ends. */
  reinitialize(token: TokenSelector): void {
    this.#lastReinitialization = performance.now();
    this.#reinitializedFor.add(selectorKey(token));
    // Bounded: forgetting old tokens only lets them re-initialise once more.
    if (this.#reinitializedFor.size > 256) this.#reinitializedFor.clear();
    try {
      this.library.C_Finalize();
    } catch {
      // Finalising a library whose state is already broken may fail; initialising again is the cure.
    }
    this.#logins.clear();
    this.#generation++;
    this.#initialize();
  }

  /** The slot holding the token, or undefined when no such token is present. */
  findSlot(token: TokenSelector): Handle | undefined {
    const slots = this.library.C_GetSlotList(true);
    for (const slot of slots) {
      if (token.slotId !== undefined) {
        if (slotNumber(slot) === token.slotId) return slot;
        continue;
      }
      let label: string;
      try {
        label = this.library.C_GetTokenInfo(slot).label.trim();
      } catch {
        // A token removed since initialisation (SoftHSM: CKR_GENERAL_ERROR) is not the one sought.
        continue;
      }
      if (label === token.tokenLabel) return slot;
    }
    return undefined;
  }

  /**
   * Logs the token in as the user through `session`. Login state is per token, shared by every
   * session of the process, so a key opened on a token that is logged in already gets
   * CKR_USER_ALREADY_LOGGED_IN (taken as success) when its PIN is the one that logged in (a digest
   * is compared). With a different PIN the token is logged out and the new PIN tried; should it be
   * refused, the previous PIN logs back in before this returns, so the keys using the token never
   * see it logged out (the worker runs one call at a time: no signature runs in between). A rotated
   * PIN that is right takes over the login.
   */
  login(slot: Handle, session: Handle, pin: string, what: string): void {
    const key = slot.toString("hex");
    const digest = createHash("sha256").update(pin, "utf8").digest();
    const current = this.#logins.get(key);
    if (current !== undefined && !timingSafeEqual(current.digest, digest)) {
      try {
        this.library.C_Logout(session);
      } catch {
        // Not logged in after all (every session closed, or the token was reset): nothing to undo.
      }
      this.#logins.delete(key);
      try {
        this.#loginAs(session, pin, what);
      } catch (error) {
        this.#restore(key, session, current);
        throw error;
      }
      this.#logins.set(key, { pin, digest });
      return;
    }
    try {
      this.library.C_Login(session, this.binding.CKU_USER, pin);
    } catch (error) {
      if (returnValueName(error) !== "CKR_USER_ALREADY_LOGGED_IN") throw refusal(error, pin, what);
      if (current === undefined) {
        // Logged in by something this worker did not track (an earlier worker, another library
        // user): the PIN was not checked. Log out and in again so that it is.
        try {
          this.library.C_Logout(session);
        } catch {
          // Logged out meanwhile: the login below is all that is needed.
        }
        this.#loginAs(session, pin, what);
      }
    }
    this.#logins.set(key, { pin, digest });
  }

  #loginAs(session: Handle, pin: string, what: string): void {
    try {
      this.library.C_Login(session, this.binding.CKU_USER, pin);
    } catch (error) {
      throw refusal(error, pin, what);
    }
  }

  /** Logs the token back in with the PIN the open keys use, after another PIN was refused. */
  #restore(key: string, session: Handle, previous: { pin: string; digest: Buffer }): void {
    try {
      this.library.C_Login(session, this.binding.CKU_USER, previous.pin);
      this.#logins.set(key, previous);
    } catch {
      // The previous PIN no longer works either (rotated on the token): its keys find out when
      // they next sign, and reopen with the PIN their Signer has then.
    }
  }

  /** Forgets a slot's login, after the token logged out (its last session closed). */
  forgetLogin(slot: Handle): void {
    this.#logins.delete(slot.toString("hex"));
  }
}

function refusal(error: unknown, pin: string, what: string): Pkcs11Error {
  if (isPinRefusal(error)) {
    return new Pkcs11Error(
      "Pkcs11PinIncorrect",
      `${what}: the PIN was refused (${describeCause(error, pin)}); check the PIN file or Secret`,
    );
  }
  return tokenUnavailable(what, error, pin);
}

function selectorKey(token: TokenSelector): string {
  return token.tokenLabel !== undefined ? `label:${token.tokenLabel}` : `slot:${token.slotId}`;
}

export function tokenUnavailable(what: string, error: unknown, pin?: string): Pkcs11Error {
  return new Pkcs11Error(
    "Pkcs11TokenUnavailable",
    `${what}: the token is unavailable (${describeCause(error, pin)})`,
  );
}

/** A slot handle (CK_SLOT_ID, a native unsigned long in a Buffer) as a number. */
function slotNumber(slot: Handle): number {
  return slot.length >= 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
}

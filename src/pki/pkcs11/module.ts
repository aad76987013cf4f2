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

let binding: Promise<Pkcs11Binding> | undefined;

/** pkcs11js, loaded on first use only: a controller without PKCS#11 keys never loads the native module. */
async function loadBinding(): Promise<Pkcs11Binding> {
  binding ??= import("pkcs11js").then((module) => (module.default ?? module) as Pkcs11Binding);
  return binding;
}

/**
 * One PKCS#11 library in this process. Cryptoki allows one C_Initialize per library per process,
 * so modules are cached by path and shared by every key (and Signer) that names it.
 *
 * A token that is removed or re-initialised while the process runs is only seen again after
 * C_Finalize + C_Initialize (SoftHSM, like most libraries, reads its slots at initialisation).
 * `reinitialize()` does that once no operation is running (every call goes through `use()`), and
 * bumps `generation`, which tells the keys of other tokens to reopen their sessions instead of
 * failing: one Signer's lost token never breaks another's signing.
 */
export class Pkcs11Module {
  readonly path: string;
  readonly binding: Pkcs11Binding;
  readonly library: Pkcs11Binding.PKCS11;
  #generation = 0;
  #running = 0;
  #drained: (() => void) | undefined;
  #exclusive: Promise<void> | undefined;
  /** SHA-256 of the PIN each slot is logged in with (login state is per token, for all sessions). */
  readonly #loginDigests = new Map<string, Buffer>();

  private constructor(path: string, binding: Pkcs11Binding, library: Pkcs11Binding.PKCS11) {
    this.path = path;
    this.binding = binding;
    this.library = library;
  }

  get generation(): number {
    return this.#generation;
  }

  static async load(path: string, pkcs11: Pkcs11Binding): Promise<Pkcs11Module> {
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
      // OS locking: pkcs11js runs the asynchronous calls on libuv's thread pool, so calls overlap.
      this.library.C_Initialize({ flags: this.binding.CKF_OS_LOCKING_OK });
    } catch (error) {
      // Already initialised by another user of the library in this process: usable as it is.
      if (returnValueName(error) === "CKR_CRYPTOKI_ALREADY_INITIALIZED") return;
      throw new Pkcs11Error(
        "Pkcs11ModuleLoadFailed",
        `PKCS#11 module ${this.path} failed to initialise: ${describeCause(error)}`,
      );
    }
  }

  /** Runs `operation` while no re-initialisation can start (it waits for a running one to end). */
  async use<T>(operation: () => Promise<T> | T): Promise<T> {
    while (this.#exclusive) await this.#exclusive;
    this.#running++;
    try {
      return await operation();
    } finally {
      this.#running--;
      if (this.#running === 0) this.#drained?.();
    }
  }

  /** C_Finalize + C_Initialize once running operations end, so removed or new tokens are seen. */
  async reinitialize(): Promise<void> {
    while (this.#exclusive) await this.#exclusive;
    let release!: () => void;
    this.#exclusive = new Promise((resolve) => (release = resolve));
    try {
      if (this.#running > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      try {
        this.library.C_Finalize();
      } catch {
        // Finalising a library whose state is already broken may fail; initialising again is the cure.
      }
      this.#loginDigests.clear();
      this.#generation++;
      this.#initialize();
    } finally {
      this.#exclusive = undefined;
      release();
    }
  }

  /** The slot holding the token, or undefined when no such token is present. */
  findSlot(token: TokenSelector): Handle | undefined {
    const slots = this.library.C_GetSlotList(true);
    for (const slot of slots) {
      if (token.slotId !== undefined) {
        if (slotNumber(slot) === token.slotId) return slot;
        continue;
      }
      const info = this.library.C_GetTokenInfo(slot);
      if (info.label.trim() === token.tokenLabel) return slot;
    }
    return undefined;
  }

  /**
   * Logs the token in as the user through `session`. Login state is per token, shared by every
   * session of this process, so a key opened on a token that is logged in already gets
   * CKR_USER_ALREADY_LOGGED_IN (taken as success) when its PIN is the one that logged in (a digest
   * is compared); with a different PIN the token is logged out first, so a wrong PIN is always
   * refused and a rotated PIN takes effect (the other keys on the token log in again with theirs
   * when they next sign).
   */
  login(slot: Handle, session: Handle, pin: string, what: string): void {
    const key = slot.toString("hex");
    const digest = createHash("sha256").update(pin, "utf8").digest();
    const current = this.#loginDigests.get(key);
    if (current !== undefined && !timingSafeEqual(current, digest)) {
      try {
        this.library.C_Logout(session);
      } catch {
        // Not logged in after all (every session closed, or the token was reset): nothing to undo.
      }
      this.#loginDigests.delete(key);
    }
    try {
      this.library.C_Login(session, this.binding.CKU_USER, pin);
    } catch (error) {
      if (returnValueName(error) !== "CKR_USER_ALREADY_LOGGED_IN") {
        if (isPinRefusal(error)) {
          throw new Pkcs11Error(
            "Pkcs11PinIncorrect",
            `${what}: the PIN was refused (${describeCause(error, pin)}); check the PIN file or Secret`,
          );
        }
        throw tokenUnavailable(what, error, pin);
      }
      if (current === undefined) {
        // Logged in by something this process did not track (another library user): the PIN
        // was not checked. Log out and in again so that it is.
        try {
          this.library.C_Logout(session);
          this.library.C_Login(session, this.binding.CKU_USER, pin);
        } catch (relogin) {
          if (isPinRefusal(relogin)) {
            throw new Pkcs11Error(
              "Pkcs11PinIncorrect",
              `${what}: the PIN was refused (${describeCause(relogin, pin)})`,
            );
          }
          throw tokenUnavailable(what, relogin, pin);
        }
      }
    }
    this.#loginDigests.set(key, digest);
  }

  /** Forgets a slot's login, after the token logged out (its last session closed). */
  forgetLogin(slot: Handle): void {
    this.#loginDigests.delete(slot.toString("hex"));
  }
}

export function tokenUnavailable(what: string, error: unknown, pin?: string): Pkcs11Error {
  return new Pkcs11Error(
    "Pkcs11TokenUnavailable",
    `${what}: the token is unavailable (${describeCause(error, pin)})`,
  );
}

/** A slot handle (CK_SLOT_ID, a native unsigned long in a Buffer) as a number. */
export function slotNumber(slot: Handle): number {
  return slot.length >= 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
}

const modules = new Map<string, Promise<Pkcs11Module>>();

/** The module at `path`, loaded and initialised once per process; a failed load is retried next time. */
export async function loadModule(path: string): Promise<Pkcs11Module> {
  let module = modules.get(path);
  if (module === undefined) {
    module = loadBinding().then(
      (pkcs11) => Pkcs11Module.load(path, pkcs11),
      (error: unknown) => {
        throw new Pkcs11Error(
          "Pkcs11ModuleLoadFailed",
          `the PKCS#11 binding (pkcs11js) could not be loaded for module ${path}: ${describeCause(error)}`,
        );
      },
    );
    modules.set(path, module);
    module.catch(() => modules.delete(path));
  }
  return module;
}

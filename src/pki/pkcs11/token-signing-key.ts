/**
 * A CA key in a PKCS#11 token, as callers on the main thread use it: every call goes to its
 * module's worker (module-worker.ts) with a time limit, so signing never blocks the event loop.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { signatureProfileFor, type SigningKey } from "../signing-key.js";
import { Pkcs11Error } from "./errors.js";
import { StaleWorkerError, type ModuleWorker } from "./module-worker.js";
import type { Pkcs11KeyLocation } from "./key-location.js";
import type { KeyProtection, OpenedKey, WorkerSettings } from "./worker-protocol.js";

/** A CA key in a PKCS#11 token. `close()` ends its session; a closed key no longer signs. */
export interface Pkcs11SigningKey extends SigningKey {
  /** How the token guards the private key (a key made by `generatePkcs11KeyPair` is sensitive, not extractable). */
  readonly protection: KeyProtection;
  close(): Promise<void>;
}

/** Time limits and retry policy of a key's calls (signing-key.ts has the defaults). */
export interface KeyCallSettings extends WorkerSettings {
  readonly callTimeoutMs: number;
}

export class TokenSigningKey implements Pkcs11SigningKey {
  readonly publicKey: KeyObject;
  readonly signatureAlgorithm: Uint8Array;
  readonly description: string;
  readonly protection: KeyProtection;
  readonly #worker: ModuleWorker;
  readonly #location: Pkcs11KeyLocation;
  /** Kept to open the key again in a worker that replaced a stuck one. */
  readonly #pin: string;
  readonly #what: string;
  readonly #settings: KeyCallSettings;
  readonly #publicKeyDer: Buffer;
  #key: number;
  #epoch: number;
  #reopening: Promise<void> | undefined;
  #closed = false;

  constructor(
    worker: ModuleWorker,
    location: Pkcs11KeyLocation,
    pin: string,
    what: string,
    settings: KeyCallSettings,
    opened: OpenedKey,
    epoch: number,
  ) {
    this.#worker = worker;
    this.#location = location;
    this.#pin = pin;
    this.#what = what;
    this.#settings = settings;
    this.#key = opened.key;
    this.#epoch = epoch;
    this.#publicKeyDer = Buffer.from(opened.publicKeyDer);
    this.publicKey = createPublicKey({ key: this.#publicKeyDer, format: "der", type: "spki" });
    this.protection = opened.protection;
    const profile = signatureProfileFor(this.publicKey);
    this.signatureAlgorithm = profile.algorithmIdentifier;
    this.description = `${profile.description} (PKCS#11)`;
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw this.#closedError();
      if (this.#epoch !== this.#worker.epoch) await this.#reopen();
      try {
        return await this.#worker.call<Uint8Array>(
          // A copy of just these bytes: posting a view (of Node's Buffer pool, say) clones its whole ArrayBuffer.
          { op: "sign", key: this.#key, data: new Uint8Array(data) },
          {
            timeoutMs: this.#settings.callTimeoutMs,
            what: this.#what,
            epoch: this.#epoch,
            stillWanted: () => !this.#closed,
          },
        );
      } catch (error) {
        // The worker was replaced while this waited its turn (another key's call hung): once more.
        if (error instanceof StaleWorkerError && attempt === 0) continue;
        if (error instanceof StaleWorkerError) throw this.#unavailable("its worker keeps being replaced");
        throw error;
      }
    }
  }

  /** Opens the key again in the module's current worker; it must be the same key. */
  async #reopen(): Promise<void> {
    this.#reopening ??= (async () => {
      const epoch = this.#worker.epoch;
      const opened = await this.#worker.call<OpenedKey>(
        { op: "open", location: this.#location, pin: this.#pin, settings: this.#settings },
        { timeoutMs: this.#settings.callTimeoutMs, what: this.#what },
      );
      if (!Buffer.from(opened.publicKeyDer).equals(this.#publicKeyDer)) {
        void this.#worker.call({ op: "close", key: opened.key }, { timeoutMs: this.#settings.callTimeoutMs, what: this.#what }).catch(() => undefined); // prettier-ignore
        throw this.#unavailable("the token now holds a different key under this name");
      }
      this.#key = opened.key;
      this.#epoch = epoch;
    })()
      .catch((error: unknown) => {
        throw error instanceof Pkcs11Error && error.reason !== "Pkcs11Timeout"
          ? new Pkcs11Error("Pkcs11TokenUnavailable", error.message)
          : error;
      })
      .finally(() => (this.#reopening = undefined));
    return this.#reopening;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#epoch !== this.#worker.epoch) return; // its worker, and session, are gone
    await this.#worker
      .call(
        { op: "close", key: this.#key },
        { timeoutMs: this.#settings.callTimeoutMs, what: this.#what, epoch: this.#epoch },
      )
      .catch((error: unknown) => {
        // A replaced worker took the session with it; a failed close leaves nothing to retry.
        if (!(error instanceof StaleWorkerError) && !(error instanceof Pkcs11Error)) throw error;
      });
  }

  #closedError(): Pkcs11Error {
    return new Pkcs11Error("Pkcs11TokenUnavailable", `${this.#what}: the key was closed`);
  }

  #unavailable(why: string): Pkcs11Error {
    return new Pkcs11Error("Pkcs11TokenUnavailable", `${this.#what}: ${why}`);
  }

  toJSON(): object {
    return { description: this.description };
  }
}

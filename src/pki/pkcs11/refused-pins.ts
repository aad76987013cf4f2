/**
 * PINs a token refused, remembered per module and token as SHA-256 digests, so that the same
 * wrong PIN is not sent again (by another Signer, or a retry) until it changes or `retryMs` passes:
 * HSMs lock the user out after a few bad logins (a Luna partition after 3, CloudHSM's crypto
 * users likewise), which would stop every tenant of the token.
 */
import { createHash } from "node:crypto";
import type { Pkcs11KeyLocation } from "./key-location.js";

export class RefusedPins {
  /** Token (module and label or slot) → PIN digest → when it was refused (ms, performance.now()). */
  readonly #refused = new Map<string, Map<string, number>>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** When `pin` was refused for the token in the last `retryMs`, else undefined. */
  refusedAt(location: Pkcs11KeyLocation, pin: string, retryMs: number): number | undefined {
    const at = this.#refused.get(tokenOf(location))?.get(digest(pin));
    return at !== undefined && this.now() - at < retryMs ? at : undefined;
  }

  remember(location: Pkcs11KeyLocation, pin: string): void {
    const token = tokenOf(location);
    const pins = this.#refused.get(token) ?? new Map<string, number>();
    pins.set(digest(pin), this.now());
    // A bound: nobody needs more than the last few wrong PINs of one token remembered.
    if (pins.size > 16) pins.delete(pins.keys().next().value!);
    this.#refused.set(token, pins);
  }

  forget(location: Pkcs11KeyLocation, pin: string): void {
    this.#refused.get(tokenOf(location))?.delete(digest(pin));
  }
}

function tokenOf(location: Pkcs11KeyLocation): string {
  return JSON.stringify([location.modulePath, location.tokenLabel ?? null, location.slotId ?? null]);
}

function digest(pin: string): string {
  return createHash("sha256").update(pin, "utf8").digest("hex");
}

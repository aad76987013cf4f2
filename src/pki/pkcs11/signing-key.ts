import { verify } from "node:crypto";
import type { CertificateAuthorityKeyType } from "../offline-ca.js";
import { signatureProfileFor } from "../signing-key.js";
import { Pkcs11Error } from "./errors.js";
import { checkLocation, describeKey, type Pkcs11KeyLocation } from "./key-location.js";
import { moduleWorker } from "./module-worker.js";
import { RefusedPins } from "./refused-pins.js";
import { TokenSigningKey, type KeyCallSettings, type Pkcs11SigningKey } from "./token-signing-key.js";
import type { OpenedKey } from "./worker-protocol.js";

/** Limits on how long, and how often, a token is asked. Every field has a default. */
export interface Pkcs11Options {
  /** The longest a call to the module (open, sign, close) may take before Pkcs11Timeout. Default 10 s. */
  readonly callTimeoutMs?: number;
  /** The longest generating a key pair may take. Default 120 s (RSA-4096 in a slow token). */
  readonly generateTimeoutMs?: number;
  /**
   * A PIN the token refused is not sent to it again for this long, unless it changes (HSMs lock
   * the user after a few bad logins). Default 5 minutes, as the controller's incorrectPinRetryMs.
   */
  readonly refusedPinRetryMs?: number;
  /**
   * A missing token re-initialises its module (C_Finalize + C_Initialize: SoftHSM and most
   * libraries see tokens added since only then) at most this often; every other key of the module
   * must log in again afterwards. Default 10 s.
   */
  readonly reinitializeIntervalMs?: number;
}

const defaults = {
  callTimeoutMs: 10_000,
  generateTimeoutMs: 120_000,
  refusedPinRetryMs: 300_000,
  reinitializeIntervalMs: 10_000,
} satisfies Required<Pkcs11Options>;

const refusedPins = new RefusedPins();

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

/**
 * Sends an open or generate to the module's worker, unless the same PIN was refused for this token
 * lately; remembers a refusal.
 */
async function openInWorker(
  location: Pkcs11KeyLocation,
  pin: string,
  options: Required<Pkcs11Options>,
  keyType: CertificateAuthorityKeyType | undefined,
): Promise<TokenSigningKey> {
  checkLocation(location);
  const what = describeKey(location);
  const refusedAt = refusedPins.refusedAt(location, pin, options.refusedPinRetryMs);
  if (refusedAt !== undefined) {
    const ago = Math.round((performance.now() - refusedAt) / 1000);
    throw new Pkcs11Error(
      "Pkcs11PinIncorrect",
      `${what}: this PIN was refused ${ago} s ago and is not sent to the token again for ${options.refusedPinRetryMs / 1000} s unless it changes (HSMs lock users out after a few bad logins); check the PIN file or Secret`,
    );
  }
  const worker = moduleWorker(location.modulePath);
  const settings: KeyCallSettings = {
    callTimeoutMs: options.callTimeoutMs,
    reinitializeIntervalMs: options.reinitializeIntervalMs,
  };
  const epoch = worker.epoch;
  let opened: OpenedKey;
  try {
    opened = await worker.call<OpenedKey>(
      keyType === undefined
        ? { op: "open", location, pin, settings }
        : { op: "generate", location, pin, keyType, settings },
      { timeoutMs: keyType === undefined ? options.callTimeoutMs : options.generateTimeoutMs, what },
    );
  } catch (error) {
    if (error instanceof Pkcs11Error && error.reason === "Pkcs11PinIncorrect")
      refusedPins.remember(location, pin);
    throw error;
  }
  refusedPins.forget(location, pin);
  // Opened in the worker that was current when the call was sent (calls run in order).
  const key = new TokenSigningKey(worker, location, pin, what, settings, opened, epoch);
  try {
    await checkPair(key, what);
  } catch (error) {
    await key.close();
    throw error;
  }
  return key;
}

/**
 * Opens the CA key at `location`, logging in with `pin`. A token that is not found is looked for
 * again after re-initialising the library (a token replaced while the process ran), at most once
 * per `reinitializeIntervalMs`. Rejects with a Pkcs11Error whose reason says what to fix.
 */
export async function openPkcs11SigningKey(
  location: Pkcs11KeyLocation,
  pin: string,
  options: Pkcs11Options = {},
): Promise<Pkcs11SigningKey> {
  return openInWorker(location, pin, { ...defaults, ...options }, undefined);
}

/**
 * Generates a CA key pair inside the token: the private key sensitive, never extractable, kept on
 * the token, only for signing. Refuses when a key with that label/id exists already.
 */
export async function generatePkcs11KeyPair(
  location: Pkcs11KeyLocation,
  pin: string,
  keyType: CertificateAuthorityKeyType,
  options: Pkcs11Options = {},
): Promise<Pkcs11SigningKey> {
  return openInWorker(location, pin, { ...defaults, ...options }, keyType);
}

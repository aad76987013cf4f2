import { SigningKeyError } from "../signing-key.js";

/**
 * Why a PKCS#11 key cannot be used, in CamelCase: the Signer's Ready=False reason, verbatim.
 * Pkcs11TokenUnavailable and Pkcs11SigningFailed come from a key that was working; the others from
 * opening one. Pkcs11Timeout from either: the module did not answer within the call's time limit
 * (a hung or unreachable HSM); its worker thread was replaced.
 */
export type Pkcs11FailureReason =
  | "Pkcs11ModuleLoadFailed"
  | "Pkcs11TokenNotFound"
  | "Pkcs11PinIncorrect"
  | "Pkcs11KeyNotFound"
  | "Pkcs11KeyUnsupported"
  | "Pkcs11TokenUnavailable"
  | "Pkcs11SigningFailed"
  | "Pkcs11Timeout";

/** A PKCS#11 failure. Messages name the module, token and key, never the PIN. */
export class Pkcs11Error extends SigningKeyError {
  readonly reason: Pkcs11FailureReason;

  constructor(reason: Pkcs11FailureReason, message: string) {
    super(message);
    this.name = "Pkcs11Error";
    this.reason = reason;
  }
}

/** The CKR_ name pkcs11js puts in its Pkcs11Error's message (e.g. "CKR_PIN_INCORRECT"), if any. */
export function returnValueName(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = /\bCKR_[A-Z_]+\b/.exec(error.message);
  return match?.[0];
}

/**
 * What a binding error says, for a message: the CKR_ name when there is one, else the native
 * message (a dlopen or argument error), dropped entirely should it ever contain `secret`.
 */
export function describeCause(error: unknown, secret?: string): string {
  const name = returnValueName(error);
  if (name !== undefined) return name;
  const message = error instanceof Error ? error.message.split("\n")[0]!.trim() : String(error);
  if (secret && message.includes(secret)) return "an error whose message is withheld";
  return message;
}

/** Return values that mean the PIN was refused (including a locked or expired PIN). */
const pinRefusals = new Set([
  "CKR_PIN_INCORRECT",
  "CKR_PIN_INVALID",
  "CKR_PIN_LEN_RANGE",
  "CKR_PIN_LOCKED",
  "CKR_PIN_EXPIRED",
]);

export function isPinRefusal(error: unknown): boolean {
  return pinRefusals.has(returnValueName(error) ?? "");
}

/**
 * Return values of a signing operation that are about the request, not the token: everything
 * else (a session, object or slot that vanished, a device error, the library not initialised) is
 * taken as the token being unavailable, which the caller recovers from by opening the key again.
 */
const requestRefusals = new Set([
  "CKR_MECHANISM_INVALID",
  "CKR_MECHANISM_PARAM_INVALID",
  "CKR_DATA_INVALID",
  "CKR_DATA_LEN_RANGE",
  "CKR_KEY_TYPE_INCONSISTENT",
  "CKR_KEY_FUNCTION_NOT_PERMITTED",
  "CKR_KEY_SIZE_RANGE",
  "CKR_ARGUMENTS_BAD",
  "CKR_BUFFER_TOO_SMALL",
]);

export function isRequestRefusal(error: unknown): boolean {
  return requestRefusals.has(returnValueName(error) ?? "");
}

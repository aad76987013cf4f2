import type { PublicKeyDescription } from "./request-key.js";

/** Which public keys a signer accepts; the default is RSA 2048-8192, ECDSA P-256 and P-384. */
export interface KeyAllowList {
  readonly rsaMinimumBits: number;
  readonly rsaMaximumBits: number;
  readonly ecdsaCurves: readonly string[];
}

/**
 * The largest RSA modulus anything here accepts: the default allow-list's and the most a Signer's
 * spec.issuance.keyTypes.rsaMaximumBits may say. The request parser refuses a larger key before it
 * verifies the signature (defaultCertificateRequestLimits).
 */
export const largestAcceptedRsaBits = 8192;

export const defaultKeyAllowList: KeyAllowList = {
  rsaMinimumBits: 2048,
  rsaMaximumBits: largestAcceptedRsaBits,
  ecdsaCurves: ["P-256", "P-384"],
};

/** Returns the rule the key breaks, or undefined when it is allowed. */
export function keyRejection(key: PublicKeyDescription, allowed: KeyAllowList): string | undefined {
  if (key.algorithm === "RSA") {
    if (key.bits < allowed.rsaMinimumBits || key.bits > allowed.rsaMaximumBits) {
      return `RSA key of ${key.bits} bits is outside ${allowed.rsaMinimumBits}-${allowed.rsaMaximumBits}`;
    }
    if (key.publicExponent < 65537n || key.publicExponent % 2n === 0n)
      return "RSA public exponent must be odd and >= 65537";
    return undefined;
  }
  if (!allowed.ecdsaCurves.includes(key.curve)) {
    return `ECDSA curve ${key.curve} is not one of ${allowed.ecdsaCurves.join(", ")}`;
  }
  return undefined;
}

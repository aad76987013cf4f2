import { sequence, unsignedInteger } from "../der-writer.js";

/**
 * A PKCS#11 ECDSA signature (r || s, each the curve's size, CKM_ECDSA) as X.509 wants it:
 * DER SEQUENCE { INTEGER r, INTEGER s }.
 */
export function ecdsaSignatureToDer(concatenated: Uint8Array): Uint8Array {
  if (concatenated.length === 0 || concatenated.length % 2 !== 0) {
    throw new Error(`an ECDSA signature of ${concatenated.length} bytes is not r || s`);
  }
  const half = concatenated.length / 2;
  return sequence(
    unsignedInteger(concatenated.subarray(0, half)),
    unsignedInteger(concatenated.subarray(half)),
  );
}

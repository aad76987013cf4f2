/** PKCS#11 CA keys (HSMs, cloud KMS PKCS#11 libraries, SoftHSM) behind the SigningKey interface. */
export { Pkcs11Error, type Pkcs11FailureReason } from "./errors.js";
export type { Pkcs11KeyLocation } from "./key-location.js";
export { generatePkcs11KeyPair, openPkcs11SigningKey } from "./signing-key.js";
export type { Pkcs11SigningKey } from "./token-signing-key.js";
export { pinFromFile } from "./pin.js";

/** A Signer spec refused by validation, with the path of the field (src/policy/signer-spec.ts). */
export class SignerSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "SignerSpecError";
  }
}

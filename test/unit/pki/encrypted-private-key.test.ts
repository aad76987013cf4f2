import { generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { SigningKeyError, SoftwareSigningKey } from "../../../src/pki/signing-key.js";
import { openssl } from "../../support/openssl.js";

function thrown(run: () => unknown): SigningKeyError {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(SigningKeyError);
    return error as SigningKeyError;
  }
  expect.fail("expected a SigningKeyError");
}

/** The key encrypted by the openssl CLI, as an operator would (PBES2, AES-256-CBC). */
function encryptWithOpenssl(privateKey: KeyObject, passphrase: string): string {
  const dir = mkdtempSync(join(tmpdir(), "encrypted-key-"));
  try {
    writeFileSync(join(dir, "key.pem"), privateKey.export({ format: "pem", type: "pkcs8" }));
    writeFileSync(join(dir, "passphrase"), passphrase);
    return openssl(
      ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "key.pem", "-passout", "file:passphrase"],
      undefined,
      dir,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("SoftwareSigningKey.fromPem: encrypted PKCS#8 (ENCRYPTED PRIVATE KEY) with a passphrase", () => {
  const passphrase = `passphrase-${randomBytes(6).toString("hex")}`;
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });

  for (const [name, pair, encrypt, hash] of [
    ["EC P-256 encrypted by openssl", ec, () => encryptWithOpenssl(ec.privateKey, passphrase), "sha256"],
    [
      "RSA encrypted by node:crypto",
      rsa,
      () =>
        rsa.privateKey.export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase }).toString(),
      "sha256",
    ],
  ] as const) {
    it(`${name}: opens with the passphrase and signs for its public key`, async () => {
      const pem = encrypt();
      expect(pem).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      const key = SoftwareSigningKey.fromPem(pem, passphrase);
      expect(key.publicKey.equals(pair.publicKey)).to.equal(true);
      const data = randomBytes(64);
      expect(verify(hash, data, pair.publicKey, await key.sign(data))).to.equal(true);
    });
  }

  it("a wrong passphrase is a clear error that quotes neither the key nor the passphrase", () => {
    const pem = encryptWithOpenssl(ec.privateKey, passphrase);
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    const error = thrown(() => SoftwareSigningKey.fromPem(pem, wrong));
    expect(error.message).to.equal(
      "the CA private key could not be decrypted: wrong passphrase, or not an encrypted PKCS#8 key",
    );
    expect(error.message).not.to.include(wrong);
    expect(error.message).not.to.include(pem.split("\n")[1]!.slice(0, 16));
  });

  it("an encrypted key without a passphrase says so", () => {
    const error = thrown(() => SoftwareSigningKey.fromPem(encryptWithOpenssl(ec.privateKey, passphrase)));
    expect(error.message).to.match(/encrypted and no passphrase was given/);
  });

  it("an unencrypted key still opens without a passphrase (and ignores one given)", () => {
    const pem = ec.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    expect(SoftwareSigningKey.fromPem(pem).publicKey.equals(ec.publicKey)).to.equal(true);
    expect(SoftwareSigningKey.fromPem(pem, passphrase).publicKey.equals(ec.publicKey)).to.equal(true);
  });
});

/**
 * The encryption schemes an ENCRYPTED PRIVATE KEY may use (a tenant may write the CA key file):
 * PBES2 + PBKDF2 (HMAC-SHA-1/224/256/384/512) + AES-CBC at most maximumPbkdf2Iterations, read by our
 * DER reader before any key derivation; scrypt, PBES1 and too many iterations are refused naming
 * the rule; decryption runs on libuv's pool (decryptPrivateKey, KeyDecryptions).
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { KeyDecryptions, maxConcurrentDecryptions } from "../../../src/controller/key-decryptions.js";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
} from "../../../src/pki/certificate-authority.js";
import { encryptedKeyFileOf, type EncryptedKeyFile } from "../../../src/pki/encrypted-key-file.js";
import {
  decryptPrivateKey,
  EncryptedKeyError,
  maximumPbkdf2Iterations,
  readEncryptedPrivateKeyInfo,
  readEncryptedPrivateKeyPem,
} from "../../../src/pki/encrypted-private-key.js";
import { objectIdentifier, octetString, sequence, unsignedInteger } from "../../../src/pki/der-writer.js";
import { encodePem } from "../../../src/pki/pem.js";
import { SigningKeyError, SoftwareSigningKey } from "../../../src/pki/signing-key.js";
import { thrownBy } from "../../support/errors.js";
import { openssl } from "../../support/openssl.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

const passphrase = `passphrase-${randomBytes(6).toString("hex")}`;

/** `key` written by the openssl CLI with `options` (e.g. -v2 aes256 -iter 2048, -scrypt, -v1 ...). */
function opensslEncrypted(key: KeyObject, options: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "encrypted-key-scheme-"));
  try {
    writeFileSync(join(dir, "key.pem"), key.export({ format: "pem", type: "pkcs8" }));
    writeFileSync(join(dir, "passphrase"), passphrase);
    return openssl(
      ["pkcs8", "-topk8", ...options, "-in", "key.pem", "-passout", "file:passphrase"],
      undefined,
      dir,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A PBES2/PBKDF2/AES-256-CBC EncryptedPrivateKeyInfo with the given iteration count bytes (no tool writes these). */
function craftedPbes2(iterationMagnitude: Uint8Array): string {
  const der = sequence(
    sequence(
      objectIdentifier("1.2.840.113549.1.5.13"),
      sequence(
        sequence(
          objectIdentifier("1.2.840.113549.1.5.12"),
          sequence(octetString(randomBytes(8)), unsignedInteger(iterationMagnitude)),
        ),
        sequence(objectIdentifier("2.16.840.1.101.3.4.1.42"), octetString(randomBytes(16))),
      ),
    ),
    octetString(randomBytes(48)),
  );
  return encodePem("ENCRYPTED PRIVATE KEY", der);
}

const rule =
  "encrypted CA keys must use PBES2 with PBKDF2 (HMAC-SHA-1/224/256/384/512) and AES-128/192/256-CBC " +
  `with at most ${maximumPbkdf2Iterations} iterations (openssl pkcs8 -topk8 -v2 aes256)`;

describe("encrypted CA keys: only PBES2 + PBKDF2 + AES-CBC, iterations capped, decrypted off the event loop", function () {
  this.timeout(20_000);
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });

  it("caps iterations at 600,000 (OWASP's PBKDF2-HMAC-SHA-256 advice; OpenSSL writes 2048)", () => {
    expect(maximumPbkdf2Iterations).to.equal(600_000);
  });

  for (const options of [
    ["-v2", "aes256"],
    ["-v2", "aes128", "-v2prf", "hmacWithSHA512"],
    ["-v2", "aes192", "-v2prf", "hmacWithSHA1"],
    ["-v2", "aes256", "-v2prf", "hmacWithSHA384", "-iter", String(maximumPbkdf2Iterations)],
  ]) {
    it(`a key from openssl pkcs8 -topk8 ${options.join(" ")} decrypts asynchronously and synchronously`, async () => {
      const pem = opensslEncrypted(ec.privateKey, options);
      const decrypted = await decryptPrivateKey(readEncryptedPrivateKeyPem(pem), passphrase);
      expect(decrypted.equals(ec.privateKey)).to.equal(true);
      expect(SoftwareSigningKey.fromPem(pem, passphrase).publicKey.equals(ec.publicKey)).to.equal(true);
    });
  }

  it("a key from node:crypto's export (aes-256-cbc) decrypts", async () => {
    const pem = ec.privateKey
      .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
      .toString();
    expect(
      (await decryptPrivateKey(readEncryptedPrivateKeyPem(pem), passphrase)).equals(ec.privateKey),
    ).to.equal(true);
  });

  for (const [name, options, message] of [
    [
      "one iteration over the cap",
      ["-v2", "aes256", "-iter", String(maximumPbkdf2Iterations + 1)],
      `the CA private key's PBKDF2 iteration count is ${maximumPbkdf2Iterations + 1}; ${rule}`,
    ],
    ["scrypt", ["-scrypt"], `the CA private key derives its key with scrypt; ${rule}`],
    [
      "PBES1 (PKCS#12 PBE-SHA1-3DES)",
      ["-v1", "PBE-SHA1-3DES"],
      `the CA private key uses PBES1/PKCS#12 encryption scheme 1.2.840.113549.1.12.1.3; ${rule}`,
    ],
    [
      "PBES2 with 3DES",
      ["-v2", "des3"],
      `the CA private key is encrypted with cipher 1.2.840.113549.3.7; ${rule}`,
    ],
  ] as const) {
    it(`refuses ${name} with the right passphrase, naming the rule (SigningKeyError, CertificateAuthorityMalformedKey)`, async () => {
      const pem = opensslEncrypted(ec.privateKey, [...options]);
      expect(thrownBy(EncryptedKeyError, () => readEncryptedPrivateKeyPem(pem)).message).to.equal(message);
      expect(thrownBy(SigningKeyError, () => SoftwareSigningKey.fromPem(pem, passphrase)).message).to.equal(
        message,
      );
      const ca = await makeTestCertificateAuthority();
      const files = { ...ca.files, "ca-key.pem": pem };
      const refused = thrownBy(CertificateAuthorityError, () => encryptedKeyFileOf(files));
      expect(refused.reason).to.equal("MalformedKey");
      expect(refused.message).to.equal(`ca-key.pem: ${message}`);
      const loading = thrownBy(CertificateAuthorityError, () =>
        loadCertificateAuthority(files, new Date(), { keyPassphrase: passphrase }),
      );
      expect(loading.reason).to.equal("MalformedKey");
      expect(loading.message).to.equal(`ca-key.pem: ${message}`);
    });
  }

  for (const [name, magnitude, count] of [
    ["2^31-1 iterations", Uint8Array.of(0x7f, 0xff, 0xff, 0xff), String(2 ** 31 - 1)],
    ["a 9-byte iteration count", Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 0), `over ${2 ** 31 - 1}`],
  ] as const) {
    it(`refuses ${name} before deriving anything`, () => {
      const error = thrownBy(EncryptedKeyError, () => readEncryptedPrivateKeyPem(craftedPbes2(magnitude)));
      expect(error.message).to.equal(`the CA private key's PBKDF2 iteration count is ${count}; ${rule}`);
      expect(
        thrownBy(SigningKeyError, () => SoftwareSigningKey.fromPem(craftedPbes2(magnitude), passphrase))
          .message,
      ).to.equal(error.message);
    });
  }

  it("refuses legacy PEM encryption (Proc-Type: 4,ENCRYPTED)", () => {
    const dir = mkdtempSync(join(tmpdir(), "legacy-key-"));
    try {
      writeFileSync(join(dir, "key.pem"), ec.privateKey.export({ format: "pem", type: "sec1" }));
      writeFileSync(join(dir, "passphrase"), passphrase);
      const pem = openssl(["ec", "-aes256", "-in", "key.pem", "-passout", "file:passphrase"], undefined, dir);
      expect(pem).to.include("Proc-Type: 4,ENCRYPTED");
      expect(thrownBy(SigningKeyError, () => SoftwareSigningKey.fromPem(pem, passphrase)).message).to.match(
        /legacy PEM encryption \(Proc-Type: 4,ENCRYPTED\); convert it with openssl pkcs8 -topk8 -v2 aes256/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a malformed EncryptedPrivateKeyInfo without quoting it", () => {
    expect(() => readEncryptedPrivateKeyInfo(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00))).to.throw(
      EncryptedKeyError,
      /^the CA private key is not a well-formed EncryptedPrivateKeyInfo$/,
    );
  });

  it("a wrong passphrase is MalformedKey after the asynchronous decryption, quoting neither key nor passphrase", async () => {
    const ca = await makeTestCertificateAuthority();
    const pem = opensslEncrypted(ec.privateKey, ["-v2", "aes256"]);
    const file = encryptedKeyFileOf({ ...ca.files, "ca-key.pem": pem })!;
    const decryptions = new KeyDecryptions();
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    expect(decryptions.key("s", "hash-1", file, wrong)).to.equal("decrypting");
    await decryptions.idle();
    const error = thrownBy(CertificateAuthorityError, () => decryptions.key("s", "hash-1", file, wrong));
    expect(error.reason).to.equal("MalformedKey");
    expect(error.message).to.equal(
      "ca-key.pem: the CA private key could not be decrypted: wrong passphrase, or not an encrypted PKCS#8 key",
    );
    expect(error.message).not.to.include(wrong);
  });
});

describe("KeyDecryptions: one decryption per Signer at a time, the Signer queued when it ends", () => {
  function deferred(): { promise: Promise<KeyObject>; resolve: (key: KeyObject) => void } {
    let resolve!: (key: KeyObject) => void;
    const promise = new Promise<KeyObject>((done) => (resolve = done));
    return { promise, resolve };
  }
  const file = { name: "ca-key.pem" } as EncryptedKeyFile;
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;

  it("new content waits for the decryption in flight; the result is remembered per content; onSettled names the Signer", async () => {
    const started: string[] = [];
    const pending: Array<ReturnType<typeof deferred>> = [];
    const settled: string[] = [];
    const decryptions = new KeyDecryptions(
      (objectName) => settled.push(objectName),
      (_file, phrase) => {
        started.push(phrase);
        const next = deferred();
        pending.push(next);
        return next.promise;
      },
    );
    expect(decryptions.key("a", "h1", file, "p1")).to.equal("decrypting");
    expect(decryptions.key("a", "h2", file, "p2")).to.equal("decrypting");
    expect(decryptions.key("b", "h1", file, "p1")).to.equal("decrypting");
    expect(started).to.deep.equal(["p1", "p1"]); // a's second content waits; b has its own
    pending[0]!.resolve(key);
    pending[1]!.resolve(key);
    await decryptions.idle();
    expect(settled.sort()).to.deep.equal(["a", "b"]);
    expect(decryptions.key("b", "h1", file, "p1")).to.equal(key);
    // a's content changed meanwhile: the finished decryption is not used for it; the new one starts.
    expect(decryptions.key("a", "h2", file, "p2")).to.equal("decrypting");
    expect(started).to.deep.equal(["p1", "p1", "p2"]);
    pending[2]!.resolve(key);
    await decryptions.idle();
    expect(decryptions.key("a", "h2", file, "p2")).to.equal(key);
    // Remembered for that content: asking again (a tenant switching back to it) decrypts nothing.
    expect(decryptions.key("a", "h2", file, "p2")).to.equal(key);
    expect(decryptions.key("a", "h1", file, "p1")).to.equal(key);
    expect(started).to.deep.equal(["p1", "p1", "p2"]);
  });
});

describe("KeyDecryptions: a global limit, first come first served across Signers", () => {
  const file = { name: "ca-key.pem" } as EncryptedKeyFile;
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;

  /** A decryptor whose work ends only when the test says so: records what started, in order. */
  function manualDecryptor(): {
    decrypt: (file: EncryptedKeyFile, passphrase: string) => Promise<KeyObject>;
    started: string[];
    finish: (passphrase: string) => void;
  } {
    const started: string[] = [];
    const finishers = new Map<string, () => void>();
    return {
      started,
      decrypt: (_file, passphrase) =>
        new Promise<KeyObject>((resolve) => {
          started.push(passphrase);
          finishers.set(passphrase, () => resolve(key));
        }),
      finish: (passphrase) => finishers.get(passphrase)!(),
    };
  }
  const settledTurn = () => new Promise((resolve) => setImmediate(resolve));

  it(`runs at most ${maxConcurrentDecryptions} at once: a third Signer's decryption waits for a free slot`, async () => {
    const work = manualDecryptor();
    const settled: string[] = [];
    const decryptions = new KeyDecryptions((name) => settled.push(name), work.decrypt);
    for (const name of ["a", "b", "c"])
      expect(decryptions.key(name, `h-${name}`, file, `p-${name}`)).to.equal("decrypting");
    expect(work.started).to.deep.equal(["p-a", "p-b"]);
    work.finish("p-b");
    await settledTurn();
    expect(settled).to.deep.equal(["b"]);
    expect(work.started).to.deep.equal(["p-a", "p-b", "p-c"]);
    work.finish("p-a");
    work.finish("p-c");
    await decryptions.idle();
    expect(settled).to.deep.equal(["b", "a", "c"]);
    for (const name of ["a", "b", "c"])
      expect(decryptions.key(name, `h-${name}`, file, `p-${name}`)).to.equal(key);
  });

  it("a Signer's newer material replaces its waiting older one, keeping its place in line before later Signers", async () => {
    const work = manualDecryptor();
    const settled: string[] = [];
    const decryptions = new KeyDecryptions((name) => settled.push(name), work.decrypt, 1);
    decryptions.key("a", "h-a", file, "p-a");
    decryptions.key("b", "h-b1", file, "p-b1");
    decryptions.key("c", "h-c", file, "p-c");
    decryptions.key("b", "h-b2", file, "p-b2"); // b rewrote its Secret while waiting
    expect(work.started).to.deep.equal(["p-a"]);
    work.finish("p-a");
    await settledTurn();
    expect(work.started).to.deep.equal(["p-a", "p-b2"]); // the old material is never decrypted
    work.finish("p-b2");
    await settledTurn();
    expect(work.started).to.deep.equal(["p-a", "p-b2", "p-c"]);
    work.finish("p-c");
    await decryptions.idle();
    expect(decryptions.key("b", "h-b2", file, "p-b2")).to.equal(key);
    expect(settled).to.deep.equal(["a", "b", "c"]);
  });

  it("a Signer that goes away while waiting leaves the line and never decrypts", async () => {
    const work = manualDecryptor();
    const decryptions = new KeyDecryptions(() => undefined, work.decrypt, 1);
    decryptions.key("a", "h-a", file, "p-a");
    decryptions.key("gone", "h-g", file, "p-g");
    decryptions.key("c", "h-c", file, "p-c");
    decryptions.retainOnly(new Set(["a", "c"]));
    work.finish("p-a");
    await settledTurn();
    expect(work.started).to.deep.equal(["p-a", "p-c"]);
    work.finish("p-c");
    await decryptions.idle();
  });
});

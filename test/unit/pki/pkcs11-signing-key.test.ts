import { execFileSync } from "node:child_process";
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { expect } from "chai";
import { buildCertificateRequest } from "../../../src/pki/certificate-request-builder.js";
import { parseDistinguishedName } from "../../../src/pki/names.js";
import { encodePem } from "../../../src/pki/pem.js";
import {
  generatePkcs11KeyPair,
  openPkcs11SigningKey,
  Pkcs11Error,
  type Pkcs11FailureReason,
  type Pkcs11KeyLocation,
  type Pkcs11SigningKey,
} from "../../../src/pki/pkcs11/index.js";
import { moduleWorker } from "../../../src/pki/pkcs11/module-worker.js";
import { openssl } from "../../support/openssl.js";
import { createSoftHsmToken, softHsmBinaries, type SoftHsmToken } from "../../support/softhsm.js";
import { repositoryRoot } from "../../support/testbin.js";

async function rejection(promise: Promise<unknown>): Promise<Pkcs11Error> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(Pkcs11Error);
    return error as Pkcs11Error;
  }
  expect.fail("expected a Pkcs11Error");
}

function expectReason(error: Pkcs11Error, reason: Pkcs11FailureReason, pins: string[]): void {
  expect(error.reason, error.message).to.equal(reason);
  for (const pin of pins) expect(error.message).not.to.include(pin);
}

/** openssl's verdict on a signature over `data` by `key` (dgst -verify with the SPKI PEM). */
function opensslVerifies(
  key: Pkcs11SigningKey,
  data: Uint8Array,
  signature: Uint8Array,
  hash: string,
): boolean {
  const dir = mkdtempSync(path.join(tmpdir(), "pkcs11-verify-"));
  writeFileSync(path.join(dir, "key.pem"), key.publicKey.export({ format: "pem", type: "spki" }));
  writeFileSync(path.join(dir, "data"), data);
  writeFileSync(path.join(dir, "signature"), signature);
  try {
    return /Verified OK/.test(
      openssl([`dgst`, `-${hash}`, "-verify", "key.pem", "-signature", "signature", "data"], undefined, dir),
    );
  } catch {
    // openssl exits 1 on a bad signature ("Verification failure"): that is the verdict.
    return false;
  }
}

describe("PKCS#11 signing keys on SoftHSM2", function () {
  this.timeout(60_000);
  let token: SoftHsmToken;
  const opened: Pkcs11SigningKey[] = [];
  const location = (keyLabel: string, extra: Partial<Pkcs11KeyLocation> = {}): Pkcs11KeyLocation => ({
    modulePath: token.modulePath,
    tokenLabel: token.tokenLabel,
    keyLabel,
    ...extra,
  });
  const keep = (key: Pkcs11SigningKey): Pkcs11SigningKey => (opened.push(key), key);

  beforeEach(() => {
    token = createSoftHsmToken();
  });
  afterEach(async () => {
    for (const key of opened.splice(0)) await key.close();
  });

  for (const [keyType, hash, description] of [
    ["ecdsa-p256", "sha256", "ECDSA-P-256/SHA-256 (PKCS#11)"],
    ["ecdsa-p384", "sha384", "ECDSA-P-384/SHA-384 (PKCS#11)"],
    ["rsa-2048", "sha256", "RSA-2048/SHA-256 (PKCS#11)"],
  ] as const) {
    it(`${keyType}: a key generated in the token signs; node:crypto and openssl verify; it opens again by label`, async () => {
      const generated = keep(await generatePkcs11KeyPair(location("ca"), token.userPin, keyType));
      expect(generated.description).to.equal(description);
      const data = randomBytes(300);
      const signature = await generated.sign(data);
      expect(verify(hash, data, generated.publicKey, signature)).to.equal(true);
      expect(opensslVerifies(generated, data, signature, hash)).to.equal(true);
      expect(verify(hash, randomBytes(300), generated.publicKey, signature)).to.equal(false);

      const reopened = keep(await openPkcs11SigningKey(location("ca"), token.userPin));
      expect(reopened.publicKey.equals(generated.publicKey)).to.equal(true);
      expect(reopened.signatureAlgorithm).to.deep.equal(generated.signatureAlgorithm);
      const again = await reopened.sign(data);
      expect(verify(hash, data, generated.publicKey, again)).to.equal(true);
    });
  }

  it("finds a key by CKA_ID alone, and by label and id together", async () => {
    const keyId = randomBytes(8);
    const generated = keep(
      await generatePkcs11KeyPair(location("by-id", { keyId }), token.userPin, "ecdsa-p256"),
    );
    const byId = keep(
      await openPkcs11SigningKey(
        { modulePath: token.modulePath, tokenLabel: token.tokenLabel, keyId },
        token.userPin,
      ),
    );
    expect(byId.publicKey.equals(generated.publicKey)).to.equal(true);
    const wrongId = await rejection(
      openPkcs11SigningKey(location("by-id", { keyId: randomBytes(8) }), token.userPin),
    );
    expectReason(wrongId, "Pkcs11KeyNotFound", [token.userPin]);
  });

  it("finds the token by slot id as softhsm2-util lists it", async () => {
    const generated = keep(await generatePkcs11KeyPair(location("by-slot"), token.userPin, "ecdsa-p256"));
    const slots = token.util(["--show-slots"]);
    const slotId = Number(
      new RegExp(`Slot (\\d+)\\n(?:(?!\\nSlot ).)*?Label:\\s+${token.tokenLabel}\\s`, "s").exec(slots)?.[1],
    );
    expect(slotId, slots).to.be.greaterThan(0);
    const bySlot = keep(
      await openPkcs11SigningKey(
        { modulePath: token.modulePath, slotId, keyLabel: "by-slot" },
        token.userPin,
      ),
    );
    expect(bySlot.publicKey.equals(generated.publicKey)).to.equal(true);
    const wrongSlot = await rejection(
      openPkcs11SigningKey(
        { modulePath: token.modulePath, slotId: slotId + 1, keyLabel: "by-slot" },
        token.userPin,
      ),
    );
    expectReason(wrongSlot, "Pkcs11TokenNotFound", [token.userPin]);
    expect(wrongSlot.message).to.include(`slot ${slotId + 1}`);
  });

  it("the token refuses to reveal the generated private key (sensitive, never extractable)", async () => {
    keep(await generatePkcs11KeyPair(location("secret"), token.userPin, "ecdsa-p256"));
    // Asked through the library directly, as any other PKCS#11 application would.
    const { default: pkcs11js } = await import("pkcs11js");
    const library = new pkcs11js.PKCS11();
    library.load(token.modulePath);
    try {
      library.C_Initialize();
    } catch (error) {
      // This process initialised the library already (through csr-signer): that is the same library state.
      expect((error as Error).message).to.include("CKR_CRYPTOKI_ALREADY_INITIALIZED");
    }
    const slot = library
      .C_GetSlotList(true)
      .find((candidate) => library.C_GetTokenInfo(candidate).label.trim() === token.tokenLabel)!;
    const session = library.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      library.C_FindObjectsInit(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_LABEL, value: "secret" },
      ]);
      const [privateKey] = library.C_FindObjects(session, 1);
      library.C_FindObjectsFinal(session);
      expect(privateKey, "the private key object").not.to.equal(undefined);
      const flags = library.C_GetAttributeValue(session, privateKey!, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_TOKEN },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      expect(flags.map((attribute) => (attribute.value as Buffer)[0])).to.deep.equal([1, 0, 1, 1, 1]);
      expect(() =>
        library.C_GetAttributeValue(session, privateKey!, [{ type: pkcs11js.CKA_VALUE }]),
      ).to.throw(/CKR_ATTRIBUTE_SENSITIVE/);
    } finally {
      library.C_CloseSession(session);
    }
  });

  it("refuses to generate over an existing key label", async () => {
    keep(await generatePkcs11KeyPair(location("taken"), token.userPin, "ecdsa-p256"));
    const error = await rejection(generatePkcs11KeyPair(location("taken"), token.userPin, "ecdsa-p256"));
    expect(error.message).to.match(/already holds an object with this label/);
  });

  it("a wrong PIN is Pkcs11PinIncorrect, and the PIN appears in no message", async () => {
    keep(await generatePkcs11KeyPair(location("ca"), token.userPin, "ecdsa-p256"));
    const wrongPin = "wrong-" + randomBytes(4).toString("hex");
    const error = await rejection(openPkcs11SigningKey(location("ca"), wrongPin));
    expectReason(error, "Pkcs11PinIncorrect", [wrongPin, token.userPin]);
    expect(error.message).to.include(token.tokenLabel);
  });

  it("a wrong PIN is refused even while the token is logged in through another key", async () => {
    keep(await generatePkcs11KeyPair(location("ca"), token.userPin, "ecdsa-p256"));
    const first = keep(await openPkcs11SigningKey(location("ca"), token.userPin));
    const wrongPin = "wrong-" + randomBytes(4).toString("hex");
    expectReason(await rejection(openPkcs11SigningKey(location("ca"), wrongPin)), "Pkcs11PinIncorrect", [
      wrongPin,
    ]);
    // The first key logs in again with its own PIN and keeps signing.
    const data = randomBytes(50);
    expect(verify("sha256", data, first.publicKey, await first.sign(data))).to.equal(true);
  });

  it("a rotated user PIN: the new one opens the key, the old one is refused", async () => {
    keep(await generatePkcs11KeyPair(location("ca"), token.userPin, "ecdsa-p256"));
    const oldPin = token.userPin;
    const newPin = randomBytes(6).toString("hex");
    token.changeUserPin(newPin);
    keep(await openPkcs11SigningKey(location("ca"), newPin));
    expectReason(await rejection(openPkcs11SigningKey(location("ca"), oldPin)), "Pkcs11PinIncorrect", [
      oldPin,
    ]);
  });

  it("a missing token is Pkcs11TokenNotFound; a missing key Pkcs11KeyNotFound; a bad module Pkcs11ModuleLoadFailed", async () => {
    const missingToken = await rejection(
      openPkcs11SigningKey(location("ca", { tokenLabel: "no-such-token" }), token.userPin),
    );
    expectReason(missingToken, "Pkcs11TokenNotFound", [token.userPin]);
    expect(missingToken.message).to.include('token "no-such-token"');

    const missingKey = await rejection(openPkcs11SigningKey(location("no-such-key"), token.userPin));
    expectReason(missingKey, "Pkcs11KeyNotFound", [token.userPin]);
    expect(missingKey.message).to.include('label "no-such-key"');

    const badModule = await rejection(
      openPkcs11SigningKey(location("ca", { modulePath: "/nonexistent/libpkcs11.so" }), token.userPin),
    );
    expectReason(badModule, "Pkcs11ModuleLoadFailed", [token.userPin]);
    expect(badModule.message).to.include("/nonexistent/libpkcs11.so");

    const notALibrary = await rejection(
      openPkcs11SigningKey(location("ca", { modulePath: softHsmBinaries().utilPath }), token.userPin),
    );
    expectReason(notALibrary, "Pkcs11ModuleLoadFailed", [token.userPin]);
  });

  it("a location that names no token or no key is refused before the library is touched", async () => {
    const noToken = await rejection(
      openPkcs11SigningKey({ modulePath: token.modulePath, keyLabel: "ca" }, "1234"),
    );
    expect(noToken.reason).to.equal("Pkcs11TokenNotFound");
    const bothTokens = await rejection(
      openPkcs11SigningKey(
        { modulePath: token.modulePath, tokenLabel: "a", slotId: 1, keyLabel: "ca" },
        "1234",
      ),
    );
    expect(bothTokens.reason).to.equal("Pkcs11TokenNotFound");
    const noKey = await rejection(
      openPkcs11SigningKey({ modulePath: token.modulePath, tokenLabel: "a" }, "1234"),
    );
    expect(noKey.reason).to.equal("Pkcs11KeyNotFound");
  });

  it("a token removed while running: sign() is Pkcs11TokenUnavailable; once it is back, a fresh open signs", async () => {
    const key = keep(await generatePkcs11KeyPair(location("ca"), token.userPin, "ecdsa-p256"));
    const other = createSoftHsmToken("csr-signer-other");
    const otherKey = keep(
      await generatePkcs11KeyPair(
        { modulePath: other.modulePath, tokenLabel: other.tokenLabel, keyLabel: "other" },
        other.userPin,
        "ecdsa-p256",
      ),
    );
    await key.sign(randomBytes(10));

    token.remove();
    expectReason(await rejection(key.sign(randomBytes(10))), "Pkcs11TokenUnavailable", [token.userPin]);
    expectReason(
      await rejection(openPkcs11SigningKey(location("ca"), token.userPin)),
      "Pkcs11TokenNotFound",
      [token.userPin],
    );
    // The other token's key signs throughout (the library was re-initialised under it).
    const data = randomBytes(40);
    expect(verify("sha256", data, otherKey.publicKey, await otherKey.sign(data))).to.equal(true);

    // Back, re-initialised with a new key under the same label (what a restored HSM partition holds).
    token.initialize();
    expectReason(await rejection(key.sign(randomBytes(10))), "Pkcs11TokenUnavailable", [token.userPin]);
    const replacement = keep(await generatePkcs11KeyPair(location("ca"), token.userPin, "ecdsa-p256"));
    const reopened = keep(await openPkcs11SigningKey(location("ca"), token.userPin));
    expect(reopened.publicKey.equals(replacement.publicKey)).to.equal(true);
    expect(verify("sha256", data, reopened.publicKey, await reopened.sign(data))).to.equal(true);
    expect(verify("sha256", data, otherKey.publicKey, await otherKey.sign(data))).to.equal(true);
  });

  it("a key made by another process after the library was loaded opens; a missing key never re-initialises the shared library", async () => {
    const module = moduleWorker(token.modulePath);
    const other = keep(await generatePkcs11KeyPair(location("other"), token.userPin, "ecdsa-p256"));
    const generation = module.generation;
    expectReason(
      await rejection(openPkcs11SigningKey(location("later"), token.userPin)),
      "Pkcs11KeyNotFound",
      [token.userPin],
    );
    expect(module.generation, "re-initialisations").to.equal(generation);
    // Another process (a vendor tool, `csr-signer ca request` elsewhere) makes the key.
    const script = `
      const pkcs11js = require("pkcs11js");
      const [modulePath, label, pin] = process.argv.slice(1);
      const library = new pkcs11js.PKCS11();
      library.load(modulePath);
      library.C_Initialize();
      const slot = library.C_GetSlotList(true).find((s) => library.C_GetTokenInfo(s).label.trim() === label);
      const session = library.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      library.C_Login(session, pkcs11js.CKU_USER, pin);
      const naming = [{ type: pkcs11js.CKA_LABEL, value: "later" }, { type: pkcs11js.CKA_TOKEN, value: true }];
      library.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
        [...naming, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") }],
        [...naming, { type: pkcs11js.CKA_SIGN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: true }]);
      library.C_Finalize();
    `;
    execFileSync(process.execPath, ["-e", script, token.modulePath, token.tokenLabel, token.userPin], {
      cwd: repositoryRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const later = keep(await openPkcs11SigningKey(location("later"), token.userPin));
    const data = randomBytes(30);
    expect(verify("sha256", data, later.publicKey, await later.sign(data))).to.equal(true);
    expect(verify("sha256", data, other.publicKey, await other.sign(data))).to.equal(true);
    expect(module.generation, "re-initialisations").to.equal(generation);
  });

  it("signs concurrently: 64 signatures at once through one key, all valid", async () => {
    const key = keep(await generatePkcs11KeyPair(location("busy"), token.userPin, "ecdsa-p256"));
    const inputs = Array.from({ length: 64 }, () => randomBytes(200));
    const signatures = await Promise.all(inputs.map((input) => key.sign(input)));
    signatures.forEach((signature, index) =>
      expect(verify("sha256", inputs[index]!, key.publicKey, signature), `signature ${index}`).to.equal(true),
    );
  });

  it("the key object shows no PIN when logged or inspected (util.inspect, JSON)", async () => {
    const key = keep(await generatePkcs11KeyPair(location("quiet"), token.userPin, "ecdsa-p256"));
    const shown = inspect(key, { depth: 10, showHidden: true }) + JSON.stringify(key) + String(key);
    expect(shown).not.to.include(token.userPin);
    expect(JSON.stringify(key)).to.equal('{"description":"ECDSA-P-256/SHA-256 (PKCS#11)"}');
  });

  it("a closed key no longer signs", async () => {
    const key = await generatePkcs11KeyPair(location("ca"), token.userPin, "ecdsa-p256");
    await key.close();
    expectReason(await rejection(key.sign(randomBytes(10))), "Pkcs11TokenUnavailable", [token.userPin]);
  });

  it("buildCertificateRequest: a PKCS#10 request signed in the token that openssl req -verify accepts, asking for a CA", async () => {
    for (const keyType of ["ecdsa-p256", "ecdsa-p384", "rsa-2048"] as const) {
      const key = keep(await generatePkcs11KeyPair(location(`csr-${keyType}`), token.userPin, keyType));
      const der = await buildCertificateRequest(
        key,
        parseDistinguishedName("O=Example,CN=Mesh Intermediate"),
      );
      const pem = encodePem("CERTIFICATE REQUEST", der);
      const text = openssl(["req", "-verify", "-noout", "-text"], pem);
      expect(text).to.match(/Subject: O\s?=\s?Example, CN\s?=\s?Mesh Intermediate/);
      expect(text).to.match(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
      expect(text).to.match(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
      const requestKey = createPublicKey(openssl(["req", "-pubkey", "-noout"], pem));
      expect(requestKey.equals(key.publicKey)).to.equal(true);
    }
  });
});

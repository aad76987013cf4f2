/**
 * An encrypted CA key file (ENCRYPTED PRIVATE KEY) opened with spec.certificateAuthority's passphrase,
 * from a file or a Secret key, through SignerRegistry: it signs; a wrong passphrase is
 * CertificateAuthorityMalformedKey; a missing one KeyPassphraseUnavailable; a changed passphrase file
 * is read again. The passphrase appears in no status.
 */
import { createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import type { SecretObject } from "../../../src/controller/ca-source.js";
import { KeyDecryptions } from "../../../src/controller/key-decryptions.js";
import { decryptKeyFile } from "../../../src/pki/encrypted-key-file.js";
import { SignerRegistry } from "../../../src/controller/signer-registry.js";
import type { SignerObject } from "../../../src/api/signer.js";
import { CacertsFiles } from "../../../src/pki/ca-layouts.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

function secretOf(name: string, files: Record<string, string>): SecretObject {
  return {
    metadata: { name, namespace: "csr-signer" },
    data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}

/** A registry over `signers` and the Secrets in `secrets`, decrypting keys with `decryptions`. */
function registryOf(
  signers: () => SignerObject[],
  secrets: ReadonlyMap<string, SecretObject>,
  decryptions: KeyDecryptions,
): SignerRegistry {
  return new SignerRegistry(
    { signers, secret: (_ns, name) => secrets.get(name), namespaces: () => [] },
    "csr-signer",
    undefined,
    undefined,
    undefined,
    decryptions,
  );
}

describe("SignerRegistry with an encrypted CA key and its passphrase", function () {
  this.timeout(20_000);
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(tmpdir(), "key-passphrase-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("opens the key with the passphrase from a file or a Secret; a wrong or missing one is the Signer's reason", async () => {
    const ca = await makeTestCertificateAuthority();
    const passphrase = "correct horse battery staple";
    const encryptedKey = createPrivateKey(ca.files[CacertsFiles.key]!)
      .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
      .toString();
    expect(encryptedKey).to.include("ENCRYPTED PRIVATE KEY");
    const secrets = new Map<string, SecretObject>([
      ["cacerts", secretOf("cacerts", { ...ca.files, [CacertsFiles.key]: encryptedKey })],
    ]);
    const passphraseFile = path.join(dir, "passphrase");
    writeFileSync(passphraseFile, `${passphrase}\n`);
    const signer = (keyPassphrase: Record<string, unknown>): SignerObject => ({
      metadata: { name: "enc", generation: 1 },
      spec: {
        signerName: "example.com/enc",
        certificateAuthority: { secretName: "cacerts", ...keyPassphrase },
        issuance: { defaultDuration: "1h", maxDuration: "1h" },
        policy: { requesters: { users: ["a"] } },
      },
    });
    let object = signer({ keyPassphraseFile: passphraseFile });
    // PBKDF2 runs off the event loop: a rebuild starts it (KeyDecrypting), the next one after it ends uses the key.
    const decryptions = new KeyDecryptions();
    const r = registryOf(() => [object], secrets, decryptions);
    const problem = () => r.forObjectName("enc")!.problem;
    r.rebuild();
    expect(problem()?.reason).to.equal("KeyDecrypting");
    expect(r.forObjectName("enc")!.recheckAt).to.be.instanceOf(Date);
    await decryptions.idle();
    r.rebuild();
    r.markPublished("enc");
    r.rebuild();
    expect(problem()).to.equal(undefined);
    expect(
      r.forObjectName("enc")!.authority!.signingKey.publicKey.equals(ca.intermediate.signingKey.publicKey),
    ).to.equal(true);

    writeFileSync(passphraseFile, "wrong");
    r.rebuild();
    // While the new passphrase is tried, the CA signing before keeps signing, not Degraded.
    expect(r.forObjectName("enc")!.degraded).to.equal(undefined);
    expect(r.forObjectName("enc")!.authority).not.to.equal(undefined);
    await decryptions.idle();
    r.rebuild();
    // The CA signing before keeps signing; the refused update is Degraded with the reason.
    expect(r.forObjectName("enc")!.degraded?.reason).to.equal("CertificateAuthorityMalformedKey");
    expect(r.forObjectName("enc")!.degraded?.message).to.include("could not be decrypted");

    object = signer({ keyPassphraseSecretRef: { name: "passphrase", key: "passphrase" } });
    const fresh = registryOf(() => [object], secrets, decryptions);
    fresh.rebuild();
    expect(fresh.forObjectName("enc")!.problem).to.deep.include({ reason: "KeyPassphraseUnavailable" });
    expect(fresh.forObjectName("enc")!.problem?.message).to.include(
      "Secret csr-signer/passphrase key passphrase: the Secret is not found",
    );
    secrets.set("passphrase", secretOf("passphrase", { passphrase: "wrong" }));
    fresh.rebuild();
    await decryptions.idle();
    fresh.rebuild();
    expect(fresh.forObjectName("enc")!.problem?.reason).to.equal("CertificateAuthorityMalformedKey");
    secrets.set("passphrase", secretOf("passphrase", { passphrase }));
    fresh.rebuild();
    await decryptions.idle();
    fresh.rebuild();
    fresh.markPublished("enc");
    fresh.rebuild();
    expect(fresh.forObjectName("enc")!.problem).to.equal(undefined);
    expect(fresh.usingSecret("passphrase")).to.deep.equal(["enc"]);
    expect(JSON.stringify(fresh.desiredStatus("enc"))).not.to.include(passphrase);
  });

  it("says KeyDecrypting waits for one of the decryption slots while another Signer's key holds them", async () => {
    const ca = await makeTestCertificateAuthority();
    const passphrase = "correct horse battery staple";
    const encryptedKey = createPrivateKey(ca.files[CacertsFiles.key]!)
      .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
      .toString();
    const secrets = new Map<string, SecretObject>([
      ["cacerts", secretOf("cacerts", { ...ca.files, [CacertsFiles.key]: encryptedKey })],
      ["passphrase", secretOf("passphrase", { passphrase })],
    ]);
    const signer = (name: string): SignerObject => ({
      metadata: { name, generation: 1 },
      spec: {
        signerName: `example.com/${name}`,
        certificateAuthority: {
          secretName: "cacerts",
          keyPassphraseSecretRef: { name: "passphrase", key: "passphrase" },
        },
        issuance: { defaultDuration: "1h", maxDuration: "1h" },
        policy: { requesters: { users: ["a"] } },
      },
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // One slot, held until released: the second Signer's key waits its turn.
    const decryptions = new KeyDecryptions(
      undefined,
      async () => {
        await released;
        return createPrivateKey(ca.files[CacertsFiles.key]!);
      },
      1,
    );
    const r = registryOf(() => [signer("first"), signer("second")], secrets, decryptions);
    r.rebuild();
    expect(r.forObjectName("first")!.problem?.message).to.include("is being decrypted with its passphrase");
    expect(r.forObjectName("second")!.problem?.reason).to.equal("KeyDecrypting");
    expect(r.forObjectName("second")!.problem?.message).to.include("waits for one of 1 decryption slots");
    release();
    await decryptions.idle();
  });
  it("a tenant flipping its Secret between two encrypted keys costs two decryptions, not one per flip", async () => {
    const ca = await makeTestCertificateAuthority();
    const passphrase = "correct horse battery staple";
    // The same key encrypted twice (fresh salt and IV each time): two contents, one CA.
    const encrypted = () =>
      createPrivateKey(ca.files[CacertsFiles.key]!)
        .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
        .toString();
    const contents = [encrypted(), encrypted()];
    expect(contents[0]).not.to.equal(contents[1]);
    const secrets = new Map<string, SecretObject>([["passphrase", secretOf("passphrase", { passphrase })]]);
    const write = (index: number) =>
      secrets.set("cacerts", secretOf("cacerts", { ...ca.files, [CacertsFiles.key]: contents[index]! }));
    let decrypted = 0;
    const decryptions = new KeyDecryptions(undefined, (file, phrase) => {
      decrypted++;
      return decryptKeyFile(file, phrase);
    });
    const object: SignerObject = {
      metadata: { name: "flip", generation: 1 },
      spec: {
        signerName: "example.com/flip",
        certificateAuthority: {
          secretName: "cacerts",
          keyPassphraseSecretRef: { name: "passphrase", key: "passphrase" },
        },
        issuance: { defaultDuration: "1h", maxDuration: "1h" },
        policy: { requesters: { users: ["a"] } },
      },
    };
    const r = registryOf(() => [object], secrets, decryptions);
    write(0);
    r.rebuild();
    await decryptions.idle();
    r.rebuild();
    r.markPublished("flip");
    for (const index of [1, 0, 1, 0, 1]) {
      write(index);
      r.rebuild();
      await decryptions.idle();
      r.rebuild();
      expect(r.forObjectName("flip")!.problem).to.equal(undefined);
    }
    expect(decrypted).to.equal(2);
  });
});

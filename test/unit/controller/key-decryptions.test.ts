import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { expect } from "chai";
import { KeyDecryptions, type KeyDecryptor } from "../../../src/controller/key-decryptions.js";
import type { EncryptedKeyFile } from "../../../src/pki/encrypted-key-file.js";

describe("KeyDecryptions (encrypted CA keys decrypted off the event loop, a few at a time)", () => {
  it("gives the slot back when the decryptor throws instead of rejecting, so other Signers still decrypt", async () => {
    const key: KeyObject = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const file = (name: string) => ({ name }) as unknown as EncryptedKeyFile;
    const decrypt: KeyDecryptor = (keyFile) => {
      if ((keyFile as unknown as { name: string }).name === "broken") throw new Error("unsupported scheme");
      return Promise.resolve(key);
    };
    const settled: string[] = [];
    const decryptions = new KeyDecryptions((name) => settled.push(name), decrypt, 1);
    expect(decryptions.key("a", "h1", file("broken"), "pass")).to.equal("decrypting");
    expect(decryptions.key("b", "h1", file("fine"), "pass")).to.equal("decrypting");
    await decryptions.idle();
    expect(settled).to.deep.equal(["a", "b"]);
    expect(() => decryptions.key("a", "h1", file("broken"), "pass")).to.throw("unsupported scheme");
    expect(decryptions.key("b", "h1", file("fine"), "pass")).to.equal(key);
  });

  it("tells a decryption waiting for a slot from one running (the KeyDecrypting message says which)", async () => {
    const key: KeyObject = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const decrypt: KeyDecryptor = async () => {
      await released;
      return key;
    };
    const decryptions = new KeyDecryptions(undefined, decrypt, 1);
    const file = { name: "k" } as unknown as EncryptedKeyFile;
    decryptions.key("a", "h1", file, "pass");
    decryptions.key("b", "h1", file, "pass");
    expect([decryptions.isWaiting("a"), decryptions.isWaiting("b"), decryptions.slots]).to.deep.equal([
      false,
      true,
      1,
    ]);
    release();
    await decryptions.idle();
    expect(decryptions.isWaiting("b")).to.equal(false);
  });
});

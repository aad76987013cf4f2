import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { expect } from "chai";
import {
  KeyDecryptions,
  rememberedDecryptionsPerSigner,
  type KeyDecryptor,
} from "../../../src/controller/key-decryptions.js";
import type { EncryptedKeyFile } from "../../../src/pki/encrypted-key-file.js";

/** A decryptor counting its calls per file name: "wrong*" files are refused, others get their own key. */
function countingDecryptor(): { decrypt: KeyDecryptor; calls: string[]; keyOf: (name: string) => KeyObject } {
  const calls: string[] = [];
  const keys = new Map<string, KeyObject>();
  const keyOf = (name: string): KeyObject => {
    if (!keys.has(name)) keys.set(name, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey);
    return keys.get(name)!;
  };
  const decrypt: KeyDecryptor = (file) => {
    const name = (file as unknown as { name: string }).name;
    calls.push(name);
    return name.startsWith("wrong")
      ? Promise.reject(new Error(`${name}: could not be decrypted`))
      : Promise.resolve(keyOf(name));
  };
  return { decrypt, calls, keyOf };
}

const fileNamed = (name: string) => ({ name }) as unknown as EncryptedKeyFile;

/** The Signer's key for content `name` (its sourceHash is "hash-<name>"), decrypting it first when asked to. */
async function keyFor(decryptions: KeyDecryptions, signer: string, name: string): Promise<KeyObject> {
  const first = decryptions.key(signer, `hash-${name}`, fileNamed(name), "pass");
  if (first !== "decrypting") return first;
  await decryptions.idle();
  const settled = decryptions.key(signer, `hash-${name}`, fileNamed(name), "pass");
  if (settled === "decrypting") throw new Error(`${name} still decrypting after idle()`);
  return settled;
}

describe("KeyDecryptions (encrypted CA keys decrypted off the event loop, a few at a time)", () => {
  it("a tenant switching its Secret A, B, A, B costs two decryptions: switching back reuses the remembered key", async () => {
    const { decrypt, calls, keyOf } = countingDecryptor();
    const decryptions = new KeyDecryptions(undefined, decrypt);
    for (const name of ["A", "B", "A", "B", "A"])
      expect(await keyFor(decryptions, "s", name)).to.equal(keyOf(name));
    expect(calls).to.deep.equal(["A", "B"]);
  });

  it(`remembers ${rememberedDecryptionsPerSigner} contents per Signer: after one more distinct content the oldest is decrypted again`, async () => {
    expect(rememberedDecryptionsPerSigner).to.be.within(2, 4);
    const { decrypt, calls } = countingDecryptor();
    const decryptions = new KeyDecryptions(undefined, decrypt);
    const names = Array.from({ length: rememberedDecryptionsPerSigner + 1 }, (_, i) => `k${i}`);
    for (const name of names) await keyFor(decryptions, "s", name);
    expect(decryptions.rememberedCounts()).to.deep.equal(new Map([["s", rememberedDecryptionsPerSigner]]));
    // The newest N are answered from memory; the oldest was forgotten and costs a decryption again.
    for (const name of names.slice(1)) await keyFor(decryptions, "s", name);
    expect(calls).to.deep.equal(names);
    await keyFor(decryptions, "s", names[0]!);
    expect(calls).to.deep.equal([...names, names[0]]);
  });

  it("counts use, not age: a content asked for again stays remembered while newer ones push others out", async () => {
    const { decrypt, calls } = countingDecryptor();
    const decryptions = new KeyDecryptions(undefined, decrypt);
    const names = Array.from({ length: rememberedDecryptionsPerSigner }, (_, i) => `k${i}`);
    for (const name of names) await keyFor(decryptions, "s", name);
    await keyFor(decryptions, "s", "k0"); // used again: now the most recent
    await keyFor(decryptions, "s", "new"); // pushes out k1, the least recently used
    await keyFor(decryptions, "s", "k0");
    expect(calls).to.deep.equal([...names, "new"]);
    await keyFor(decryptions, "s", "k1");
    expect(calls).to.deep.equal([...names, "new", "k1"]);
  });

  it("remembers a refusal (wrong passphrase): the same content is refused again without another decryption", async () => {
    const { decrypt, calls } = countingDecryptor();
    const decryptions = new KeyDecryptions(undefined, decrypt);
    expect(decryptions.key("s", "hash-wrong", fileNamed("wrong"), "nope")).to.equal("decrypting");
    await decryptions.idle();
    for (let i = 0; i < 3; i++) {
      expect(() => decryptions.key("s", "hash-wrong", fileNamed("wrong"), "nope")).to.throw(
        "wrong: could not be decrypted",
      );
      await keyFor(decryptions, "s", "good"); // a switch to a good content in between
    }
    expect(calls).to.deep.equal(["wrong", "good"]);
  });

  it("keeps each Signer's outcomes apart: the same content of two Signers is decrypted for each", async () => {
    const { decrypt, calls } = countingDecryptor();
    const decryptions = new KeyDecryptions(undefined, decrypt);
    await keyFor(decryptions, "a", "A");
    await keyFor(decryptions, "b", "A");
    expect(calls).to.deep.equal(["A", "A"]);
  });

  it("forgets a deleted Signer's outcomes (keys included), and one settling after the deletion is not kept", async () => {
    const { decrypt: counting, calls } = countingDecryptor();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const decrypt: KeyDecryptor = async (file, passphrase) => {
      if ((file as unknown as { name: string }).name === "slow") await released;
      return counting(file, passphrase);
    };
    const decryptions = new KeyDecryptions(undefined, decrypt);
    await keyFor(decryptions, "gone", "A");
    await keyFor(decryptions, "kept", "A");
    expect(decryptions.key("late", "hash-slow", fileNamed("slow"), "pass")).to.equal("decrypting");
    decryptions.retainOnly(new Set(["kept"]));
    expect(decryptions.rememberedCounts()).to.deep.equal(new Map([["kept", 1]]));
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(decryptions.rememberedCounts()).to.deep.equal(new Map([["kept", 1]]));
    // A Signer of the same name made again starts from nothing.
    await keyFor(decryptions, "gone", "A");
    expect(calls).to.deep.equal(["A", "A", "slow", "A"]);
  });

  it("content switched back to a remembered one while a newer one waits for a slot: the waiting one is dropped, never decrypted", async () => {
    const { decrypt: counting, calls, keyOf } = countingDecryptor();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const decrypt: KeyDecryptor = async (file, passphrase) => {
      if ((file as unknown as { name: string }).name === "slow") await released;
      return counting(file, passphrase);
    };
    const decryptions = new KeyDecryptions(undefined, decrypt, 1);
    await keyFor(decryptions, "s", "A");
    expect(decryptions.key("other", "hash-slow", fileNamed("slow"), "pass")).to.equal("decrypting");
    expect(decryptions.key("s", "hash-B", fileNamed("B"), "pass")).to.equal("decrypting");
    expect(decryptions.isWaiting("s")).to.equal(true);
    expect(decryptions.key("s", "hash-A", fileNamed("A"), "pass")).to.equal(keyOf("A"));
    expect(decryptions.isWaiting("s")).to.equal(false);
    release();
    await decryptions.idle();
    expect(calls).to.deep.equal(["A", "slow"]);
  });

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

/**
 * Encrypted CA key files being decrypted, per Signer. Building a Signer is synchronous and PBKDF2
 * must not run on the event loop (a tenant's key file chooses its cost, up to the cap): the builder
 * asks `key()` and gets the decrypted key, "decrypting" (PBKDF2 runs on libuv's pool and
 * `onSettled` queues the Signer when it ends; the builder also looks again soon), or the refusal.
 * One decryption per Signer at a time: new content waits for the one in flight, so a tenant
 * rewriting its Secret cannot occupy more than one pool thread.
 */
import type { KeyObject } from "node:crypto";
import { decryptKeyFile, type EncryptedKeyFile } from "../pki/encrypted-key-file.js";

interface Decryption {
  sourceHash: string;
  settled: Promise<void>;
  outcome?: { key: KeyObject } | { error: unknown };
}

export type KeyDecryptor = (file: EncryptedKeyFile, passphrase: string) => Promise<KeyObject>;

export class KeyDecryptions {
  private readonly bySigner = new Map<string, Decryption>();

  constructor(
    private readonly onSettled: (objectName: string) => void = () => undefined,
    private readonly decrypt: KeyDecryptor = decryptKeyFile,
  ) {}

  /**
   * The key of `file` for the material `sourceHash` (which covers the passphrase): once decrypted it
   * is handed out once and forgotten (the caller keeps what it built from it); a refusal is thrown
   * once the same way (CertificateAuthorityError MalformedKey for a wrong passphrase).
   */
  key(
    objectName: string,
    sourceHash: string,
    file: EncryptedKeyFile,
    passphrase: string,
  ): KeyObject | "decrypting" {
    const current = this.bySigner.get(objectName);
    if (current && !current.outcome) return "decrypting";
    if (current?.sourceHash === sourceHash && current.outcome) {
      this.bySigner.delete(objectName);
      if ("key" in current.outcome) return current.outcome.key;
      throw current.outcome.error;
    }
    const decryption: Decryption = { sourceHash, settled: Promise.resolve() };
    decryption.settled = this.decrypt(file, passphrase)
      .then(
        (key) => {
          decryption.outcome = { key };
        },
        (error: unknown) => {
          decryption.outcome = { error };
        },
      )
      .then(() => {
        if (this.bySigner.get(objectName) === decryption) this.onSettled(objectName);
      });
    this.bySigner.set(objectName, decryption);
    return "decrypting";
  }

  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const name of this.bySigner.keys()) if (!objectNames.has(name)) this.bySigner.delete(name);
  }

  /** Resolves when every decryption started so far has ended (for tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.bySigner.values()].map((decryption) => decryption.settled));
  }
}

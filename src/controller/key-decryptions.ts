/**
 * Encrypted CA key files being decrypted, per Signer. Building a Signer is synchronous and PBKDF2
 * must not run on the event loop (a tenant's key file chooses its cost, up to the cap): the builder
 * asks `key()` and gets the decrypted key, "decrypting" (PBKDF2 runs on libuv's pool and
 * `onSettled` queues the Signer when it ends; the builder looks again soon only without one), or the refusal.
 * One decryption per Signer at a time: new content waits for the one in flight, so a tenant
 * rewriting its Secret cannot occupy more than one pool thread. Across Signers at most
 * `maxConcurrentDecryptions` run at once, the rest wait in first-come order; a Signer's newer
 * content replaces its own waiting one (in the same place), so nothing is decrypted only to be
 * thrown away.
 */
import type { KeyObject } from "node:crypto";
import { decryptKeyFile, type EncryptedKeyFile } from "../pki/encrypted-key-file.js";

/**
 * Decryptions running at once, across all Signers. libuv's pool has 4 threads (UV_THREADPOOL_SIZE)
 * and they also serve the whole process's DNS lookups, file reads and zlib: a 600,000-iteration key
 * holds a thread for a fraction of a second to most of one (PBKDF2's hash decides), so several tenants' keys would otherwise queue every lookup and
 * file read behind them. Two keep half the pool free and still decrypt two tenants' keys in parallel.
 */
export const maxConcurrentDecryptions = 2;

interface Decryption {
  sourceHash: string;
  file: EncryptedKeyFile;
  passphrase: string;
  state: "waiting" | "running" | "settled";
  settled: Promise<void>;
  markSettled: () => void;
  outcome?: { key: KeyObject } | { error: unknown };
}

export type KeyDecryptor = (file: EncryptedKeyFile, passphrase: string) => Promise<KeyObject>;

export class KeyDecryptions {
  private readonly bySigner = new Map<string, Decryption>();
  /** Signers whose decryption waits for a free slot, first come first. */
  private waiting: string[] = [];
  private running = 0;

  /**
   * How soon a Signer whose key is still decrypting should be looked at again: with an `onSettled`
   * that queues it when the decryption ends, only as a safety net; without one (tests, tools), soon.
   */
  readonly recheckMs: number;

  constructor(
    private readonly onSettled?: (objectName: string) => void,
    private readonly decrypt: KeyDecryptor = decryptKeyFile,
    private readonly concurrency: number = maxConcurrentDecryptions,
  ) {
    this.recheckMs = onSettled ? 30_000 : 250;
  }

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
    if (current?.state === "waiting") {
      // Not started yet: the newest content takes its place in line.
      Object.assign(current, { sourceHash, file, passphrase });
      return "decrypting";
    }
    if (current?.state === "running") return "decrypting";
    if (current?.sourceHash === sourceHash && current.outcome) {
      this.bySigner.delete(objectName);
      if ("key" in current.outcome) return current.outcome.key;
      throw current.outcome.error;
    }
    let markSettled!: () => void;
    const settled = new Promise<void>((resolve) => (markSettled = resolve));
    this.bySigner.set(objectName, { sourceHash, file, passphrase, state: "waiting", settled, markSettled });
    this.waiting.push(objectName);
    this.startWaiting();
    return "decrypting";
  }

  /** Whether the Signer's decryption waits for a free slot (not started yet), for its status message. */
  isWaiting(objectName: string): boolean {
    return this.bySigner.get(objectName)?.state === "waiting";
  }

  /** How many decryptions may run at once (the slots a waiting one waits for). */
  get slots(): number {
    return this.concurrency;
  }

  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const [name, decryption] of this.bySigner) {
      if (objectNames.has(name)) continue;
      this.bySigner.delete(name);
      if (decryption.state === "waiting") decryption.markSettled(); // never starts
    }
    this.waiting = this.waiting.filter((name) => objectNames.has(name));
  }

  /** Resolves when every decryption asked for so far has ended (for tests and shutdown). */
  async idle(): Promise<void> {
    while ([...this.bySigner.values()].some((decryption) => decryption.state !== "settled"))
      await Promise.all([...this.bySigner.values()].map((decryption) => decryption.settled));
  }

  private startWaiting(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const objectName = this.waiting.shift()!;
      const decryption = this.bySigner.get(objectName);
      if (decryption?.state === "waiting") this.run(objectName, decryption);
    }
  }

  private run(objectName: string, decryption: Decryption): void {
    decryption.state = "running";
    this.running++;
    let decrypting: Promise<KeyObject>;
    try {
      decrypting = this.decrypt(decryption.file, decryption.passphrase);
    } catch (error) {
      // A decryptor that throws instead of rejecting: a refusal like any other, its slot given back.
      decrypting = Promise.reject(error);
    }
    void decrypting
      .then(
        (key) => {
          decryption.outcome = { key };
        },
        (error: unknown) => {
          decryption.outcome = { error };
        },
      )
      .then(() => {
        this.running--;
        decryption.state = "settled";
        decryption.markSettled();
        if (this.bySigner.get(objectName) === decryption) this.onSettled?.(objectName);
        this.startWaiting();
      });
  }
}

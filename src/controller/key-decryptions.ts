/**
 * Encrypted CA key files being decrypted, per Signer. Building a Signer is synchronous and PBKDF2
 * must not run on the event loop (a tenant's key file chooses its cost, up to the cap): the builder
 * asks `key()` and gets the decrypted key, "decrypting" (PBKDF2 runs on libuv's pool and
 * `onSettled` queues the Signer when it ends; the builder looks again soon only without one), or the refusal.
 * One decryption per Signer at a time: new content waits for the one in flight, so a tenant
 * rewriting its Secret cannot occupy more than one pool thread. Across Signers at most
 * `maxConcurrentDecryptions` run at once, the rest wait in first-come order; a Signer's newer
 * content replaces its own waiting one (in the same place), so nothing is decrypted only to be
 * thrown away. The outcomes of a Signer's last few contents are remembered (its key or its refusal),
 * so a tenant switching its Secret back and forth is answered from memory, not by PBKDF2 again.
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

/**
 * Decryption outcomes remembered per Signer (its most recently used contents). A tenant can make
 * the controller decrypt by switching its Secret between contents: remembering the last one only
 * would let two contents alternating cost a PBKDF2 each switch. Two cover that flip-flop (and a
 * rotation's new and previous key); a few more cover a short cycle, while a Signer still holds at
 * most this many keys (small native handles) and refusals in memory.
 */
export const rememberedDecryptionsPerSigner = 3;

type Outcome = { key: KeyObject } | { error: unknown };

interface Decryption {
  sourceHash: string;
  file: EncryptedKeyFile;
  passphrase: string;
  state: "waiting" | "running" | "settled";
  settled: Promise<void>;
  markSettled: () => void;
}

export type KeyDecryptor = (file: EncryptedKeyFile, passphrase: string) => Promise<KeyObject>;

export class KeyDecryptions {
  /**
   * The decryption waiting or running per Signer (at most one), in the order they were asked for:
   * the waiting ones start first come first (a newer content takes its waiting one's place).
   */
  private readonly inFlight = new Map<string, Decryption>();
  /** Outcomes per Signer by sourceHash, least recently used first, at most rememberedDecryptionsPerSigner. */
  private readonly outcomes = new Map<string, Map<string, Outcome>>();
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
   * The key of `file` for the material `sourceHash` (which covers the passphrase), decrypted once
   * and then answered from the Signer's remembered outcomes while it is among its last
   * rememberedDecryptionsPerSigner contents; a refusal is thrown the same way, every time it is
   * asked for (CertificateAuthorityError MalformedKey for a wrong passphrase), never decrypted again.
   */
  key(
    objectName: string,
    sourceHash: string,
    file: EncryptedKeyFile,
    passphrase: string,
  ): KeyObject | "decrypting" {
    const current = this.inFlight.get(objectName);
    const known = this.remembered(objectName, sourceHash);
    if (known) {
      // The content is current again: one waiting for an older content would be thrown away.
      if (current?.state === "waiting") this.cancel(objectName, current);
      if ("key" in known) return known.key;
      throw known.error;
    }
    if (current?.state === "waiting") {
      // Not started yet: the newest content takes its place in line.
      Object.assign(current, { sourceHash, file, passphrase });
      return "decrypting";
    }
    if (current?.state === "running") return "decrypting";
    let markSettled!: () => void;
    const settled = new Promise<void>((resolve) => (markSettled = resolve));
    this.inFlight.set(objectName, { sourceHash, file, passphrase, state: "waiting", settled, markSettled });
    this.startWaiting();
    return "decrypting";
  }

  /** Whether the Signer's decryption waits for a free slot (not started yet), for its status message. */
  isWaiting(objectName: string): boolean {
    return this.inFlight.get(objectName)?.state === "waiting";
  }

  /** How many decryptions may run at once (the slots a waiting one waits for). */
  get slots(): number {
    return this.concurrency;
  }

  /** Forgets the decryptions and remembered outcomes (keys included) of Signers not named. */
  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const [name, decryption] of this.inFlight)
      if (!objectNames.has(name)) {
        this.inFlight.delete(name);
        if (decryption.state === "waiting") decryption.markSettled(); // never starts
      }
    for (const name of this.outcomes.keys()) if (!objectNames.has(name)) this.outcomes.delete(name);
  }

  /** Signers with remembered outcomes, and how many each (for tests). */
  rememberedCounts(): Map<string, number> {
    return new Map([...this.outcomes].map(([name, outcomes]) => [name, outcomes.size]));
  }

  /** Resolves when every decryption asked for so far has ended (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0)
      await Promise.all([...this.inFlight.values()].map((decryption) => decryption.settled));
  }

  /** The remembered outcome of `sourceHash` for the Signer, now its most recently used one. */
  private remembered(objectName: string, sourceHash: string): Outcome | undefined {
    const outcomes = this.outcomes.get(objectName);
    const outcome = outcomes?.get(sourceHash);
    if (!outcomes || !outcome) return undefined;
    outcomes.delete(sourceHash);
    outcomes.set(sourceHash, outcome);
    return outcome;
  }

  private remember(objectName: string, sourceHash: string, outcome: Outcome): void {
    let outcomes = this.outcomes.get(objectName);
    if (!outcomes) this.outcomes.set(objectName, (outcomes = new Map()));
    outcomes.delete(sourceHash);
    outcomes.set(sourceHash, outcome);
    for (const oldest of outcomes.keys()) {
      if (outcomes.size <= rememberedDecryptionsPerSigner) break;
      outcomes.delete(oldest);
    }
  }

  private cancel(objectName: string, decryption: Decryption): void {
    this.inFlight.delete(objectName);
    decryption.markSettled();
  }

  private startWaiting(): void {
    for (const [objectName, decryption] of this.inFlight) {
      if (this.running >= this.concurrency) return;
      if (decryption.state === "waiting") this.run(objectName, decryption);
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
        (key): Outcome => ({ key }),
        (error: unknown): Outcome => ({ error }),
      )
      .then((outcome) => {
        this.running--;
        decryption.state = "settled";
        // A Signer forgotten (deleted) meanwhile keeps nothing of it.
        const current = this.inFlight.get(objectName) === decryption;
        if (current) {
          this.inFlight.delete(objectName);
          this.remember(objectName, decryption.sourceHash, outcome);
        }
        decryption.markSettled();
        if (current) this.onSettled?.(objectName);
        this.startWaiting();
      });
  }
}

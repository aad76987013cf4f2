/**
 * The open PKCS#11 keys of Signers whose CA key is in a token. Building a Signer is synchronous and
 * opening a token is not: the builder asks `key()` and gets the key when it is open, "opening"
 * (the open runs in the background and `onSettled` queues the Signer again when it ends), or the
 * failure with its reason and when it is tried again (with backoff). Once open, the key's PKCS#10
 * request is made once, for status.pendingCertificateRequest while no certificate matches it.
 *
 * A key is closed when its Signer is gone, when the module, token or key it was opened with
 * changes, and when signing with it failed (the token vanished): the next open starts afresh. A new
 * PIN does not close a working session: the token is opened with it alongside, and the new session
 * replaces the old one only once it is open; a refused new PIN leaves the old session signing
 * (the Signer Degraded, saying so), since the file often changes before the token does. The PIN is
 * kept only to open the token again; it is compared, never logged, and scrubbed from any message a
 * backend returns.
 */
import { createHash, randomBytes } from "node:crypto";
import type { pkcs11KeyReasons, SignerConditionReason } from "../api/reasons.js";
import type { PendingCertificateRequest, Pkcs11KeySource } from "../api/signer.js";
import type { DistinguishedName } from "../pki/names.js";
import { encodePem } from "../pki/pem.js";
import type { SigningKey } from "../pki/signing-key.js";
import type { SignerProblem } from "./signer-problem.js";

export type Pkcs11KeyReason = (typeof pkcs11KeyReasons)[number];

/** A token key as the backend hands it out: a SigningKey whose session can be closed. */
export interface ClosableSigningKey extends SigningKey {
  close(): Promise<void>;
}

/** What TokenKeys needs from the PKCS#11 layer (src/pki/pkcs11); tests substitute their own. */
export interface TokenKeyBackend {
  /**
   * `refusedPinRetryMs`: a PIN the token refused is not sent to it again for this long (by any
   * Signer) unless it changes; TokenKeys passes its incorrectPinRetryMs.
   */
  open(
    source: Pkcs11KeySource,
    pin: string,
    options: { refusedPinRetryMs: number },
  ): Promise<ClosableSigningKey>;
  /** A PKCS#10 request (DER) for `subject`, signed by `key`. */
  certificateRequest(key: SigningKey, subject: DistinguishedName): Promise<Uint8Array>;
  /** The reason of an error thrown by open, sign or close, when it is a token error. */
  reasonOf(error: unknown): Pkcs11KeyReason | undefined;
}

/** What a Signer's builder learns about its token key right now. */
export type TokenKeyState =
  | {
      kind: "open";
      key: ClosableSigningKey;
      /** Changes whenever a new session replaces the previous one: CA material is re-checked. */
      generation: number;
      certificateRequest: PendingCertificateRequest | undefined;
      /** A new PIN the token refused (this session, opened with the previous PIN, still signs). */
      pinChange?: { problem: SignerProblem; retryAt: Date };
    }
  | { kind: "opening"; problem: SignerProblem }
  | { kind: "failed"; problem: SignerProblem; retryAt: Date };

export interface TokenKeyTimings {
  /** First retry delay after a failure; doubles per failure up to maximumRetryMs. */
  initialRetryMs: number;
  maximumRetryMs: number;
  /**
   * An incorrect PIN is tried again this late unless the PIN changes first: HSMs lock a user out
   * after a few bad logins (a Luna partition after 3 by default).
   */
  incorrectPinRetryMs: number;
  /**
   * An open key signs a random probe this often, so a token lost while no CSR arrives still makes
   * its Signer not ready (and recovers) instead of showing Ready until the next certificate.
   */
  probeIntervalMs: number;
}

const defaultTokenKeyTimings: TokenKeyTimings = {
  initialRetryMs: 1000,
  maximumRetryMs: 15_000,
  incorrectPinRetryMs: 300_000,
  probeIntervalMs: 30_000,
};

interface Entry {
  /** Module, token, key and request subject: a change means another key. */
  identity: string;
  pin: string;
  description: string;
  subject: DistinguishedName;
  state: TokenKeyState;
  /** Failures in a row, for the backoff. */
  failures: number;
  /** The next probe of the open key. */
  probe?: NodeJS.Timeout;
  /** A PIN other than `pin` being tried while the open session signs on, or refused (until retryAt). */
  newPin?: { pin: string; refused?: { problem: SignerProblem; retryAt: Date } };
}

export class TokenKeys {
  private readonly entries = new Map<string, Entry>();
  private generations = 0;
  /** Closes still running, awaited by closeAll. */
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly backend: TokenKeyBackend,
    /** Called when an open ends either way: the Signer should be rebuilt. */
    private readonly onSettled: (objectName: string) => void,
    private readonly now: () => Date = () => new Date(),
    private readonly timings: TokenKeyTimings = defaultTokenKeyTimings,
  ) {}

  /**
   * The key of Signer `objectName` as `source` and `pin` name it. Starts opening it when there is
   * none yet, when the source or PIN changed (closing the previous session), or when a failure's
   * retry time has come.
   */
  key(objectName: string, source: Pkcs11KeySource, pin: string, subject: DistinguishedName): TokenKeyState {
    const identity = JSON.stringify([
      source.module,
      source.tokenLabel,
      source.slot,
      source.keyLabel,
      source.keyId,
      subject,
    ]);
    let entry = this.entries.get(objectName);
    if (entry?.identity === identity && entry.state.kind === "open") {
      if (entry.pin === pin)
        entry.newPin = undefined; // back to the PIN of the open session
      else if (entry.newPin?.pin !== pin) this.openWithNewPin(objectName, entry, source, pin);
      else if (entry.newPin.refused && this.now() >= entry.newPin.refused.retryAt)
        this.openWithNewPin(objectName, entry, source, pin);
      const refused = entry.newPin?.refused;
      return refused ? { ...entry.state, pinChange: refused } : entry.state;
    }
    if (!entry || entry.identity !== identity || entry.pin !== pin) {
      if (entry) this.retire(entry);
      entry = {
        identity,
        pin,
        description: describeTokenKey(source),
        subject,
        state: { kind: "opening", problem: opening(source) },
        failures: 0,
      };
      this.entries.set(objectName, entry);
      this.open(objectName, entry, source);
    } else if (entry.state.kind === "failed" && this.now() >= entry.state.retryAt) {
      entry.state = { kind: "opening", problem: opening(source) };
      this.open(objectName, entry, source);
    }
    return entry.state;
  }

  /**
   * Signing with `key` failed with a token error: the session is dropped, the Signer is not ready
   * and the token is opened again after a backoff. Other errors are not the token's (ignored here).
   */
  signingFailed(objectName: string, key: SigningKey, error: unknown): SignerProblem | undefined {
    const reason = this.backend.reasonOf(error);
    if (!reason) return undefined;
    const entry = this.entries.get(objectName);
    const problem = { reason, message: scrub(error, entry?.pin) };
    if (!entry || entry.state.kind !== "open" || entry.state.key !== key) return problem; // already replaced
    this.retire(entry);
    this.fail(entry, problem);
    this.onSettled(objectName);
    return problem;
  }

  /** Signs a random probe with the entry's open key every probeIntervalMs; a token error fails it. */
  private scheduleProbe(objectName: string, entry: Entry): void {
    entry.probe = setTimeout(() => {
      if (entry.state.kind !== "open" || this.entries.get(objectName) !== entry) return;
      const key = entry.state.key;
      key.sign(randomBytes(32)).then(
        () => {
          if (entry.state.kind === "open" && entry.state.key === key) this.scheduleProbe(objectName, entry);
        },
        (error: unknown) => {
          // A token error makes the Signer not ready; any other error is not the token's: probe on.
          if (!this.signingFailed(objectName, key, error) && entry.state.kind === "open")
            this.scheduleProbe(objectName, entry);
        },
      );
    }, this.timings.probeIntervalMs);
    entry.probe.unref();
  }

  /** Closes the keys of Signers that no longer exist (or no longer use a token). */
  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const [name, entry] of this.entries)
      if (!objectNames.has(name)) {
        this.retire(entry);
        this.entries.delete(name);
      }
  }

  /** Closes every session (the controller stops). */
  async closeAll(): Promise<void> {
    this.retainOnly(new Set());
    await Promise.all([...this.closing]);
  }

  private open(objectName: string, entry: Entry, source: Pkcs11KeySource): void {
    const settle = (): void => {
      if (this.entries.get(objectName) === entry) this.onSettled(objectName);
    };
    void (async () => {
      let key: ClosableSigningKey;
      try {
        key = await this.backend.open(source, entry.pin, {
          refusedPinRetryMs: this.timings.incorrectPinRetryMs,
        });
      } catch (error) {
        if (this.entries.get(objectName) !== entry) return; // superseded meanwhile: nothing to report
        this.fail(entry, {
          reason: this.backend.reasonOf(error) ?? "Pkcs11TokenUnavailable",
          message: scrub(error, entry.pin),
        });
        return settle();
      }
      if (this.entries.get(objectName) !== entry) return this.close(key); // superseded meanwhile
      let certificateRequest: PendingCertificateRequest | undefined;
      try {
        const der = await this.backend.certificateRequest(key, entry.subject);
        certificateRequest = {
          pem: encodePem("CERTIFICATE REQUEST", der),
          key: `${key.description} in ${entry.description}`,
          publicKeyFingerprintSha256: createHash("sha256")
            .update(key.publicKey.export({ format: "der", type: "spki" }))
            .digest("hex"),
        };
      } catch (error) {
        // The key may still sign for a chain that is already there; a token error shows on use.
        void error;
      }
      if (this.entries.get(objectName) !== entry) return this.close(key);
      entry.failures = 0;
      entry.state = { kind: "open", key, generation: ++this.generations, certificateRequest };
      this.scheduleProbe(objectName, entry);
      settle();
    })();
  }

  /**
   * Opens the token with `pin` beside the open session; on success the new session replaces the old
   * one (closed then), on failure the old one signs on and the refusal is kept for the Signer to show.
   */
  private openWithNewPin(objectName: string, entry: Entry, source: Pkcs11KeySource, pin: string): void {
    const attempt = { pin };
    entry.newPin = attempt;
    const current = (): boolean =>
      this.entries.get(objectName) === entry && entry.newPin === attempt && entry.state.kind === "open";
    void (async () => {
      let key: ClosableSigningKey;
      try {
        key = await this.backend.open(source, pin, {
          refusedPinRetryMs: this.timings.incorrectPinRetryMs,
        });
      } catch (error) {
        if (!current()) return; // superseded meanwhile: nothing to report
        const reason = this.backend.reasonOf(error) ?? "Pkcs11TokenUnavailable";
        const delay =
          reason === "Pkcs11PinIncorrect" ? this.timings.incorrectPinRetryMs : this.timings.maximumRetryMs;
        entry.newPin = {
          pin,
          refused: {
            problem: {
              reason,
              message: `the token refused the new PIN, still signing with the session opened with the previous one: ${scrub(error, pin)}`,
            },
            retryAt: new Date(this.now().getTime() + delay),
          },
        };
        return this.onSettled(objectName);
      }
      if (!current()) return this.close(key);
      const certificateRequest = entry.state.kind === "open" ? entry.state.certificateRequest : undefined;
      this.retire(entry);
      entry.pin = pin;
      entry.newPin = undefined;
      entry.failures = 0;
      // The same key object in the token: its request stays valid; the CA is re-checked with the new session.
      entry.state = { kind: "open", key, generation: ++this.generations, certificateRequest };
      this.scheduleProbe(objectName, entry);
      this.onSettled(objectName);
    })();
  }

  private fail(entry: Entry, problem: SignerProblem): void {
    const delay =
      problem.reason === "Pkcs11PinIncorrect"
        ? this.timings.incorrectPinRetryMs
        : Math.min(this.timings.maximumRetryMs, this.timings.initialRetryMs * 2 ** entry.failures);
    entry.failures++;
    entry.state = { kind: "failed", problem, retryAt: new Date(this.now().getTime() + delay) };
  }

  /** Closes the entry's session, if open; the entry must not be used for signing afterwards. */
  private retire(entry: Entry): void {
    clearTimeout(entry.probe);
    if (entry.state.kind === "open") this.close(entry.state.key);
  }

  private close(key: ClosableSigningKey): void {
    const closing = key
      .close()
      // A session on a vanished token cannot be closed cleanly; it is dropped either way.
      .catch(() => undefined)
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }
}

function opening(source: Pkcs11KeySource): SignerProblem {
  return {
    reason: "Pkcs11KeyOpening" satisfies SignerConditionReason,
    message: `opening ${describeTokenKey(source)}`,
  };
}

/** "token mesh-ca (key label ca) via /usr/lib/softhsm/libsofthsm2.so": where the key is, never the PIN. */
export function describeTokenKey(source: Pkcs11KeySource): string {
  const token = source.tokenLabel !== undefined ? `token ${source.tokenLabel}` : `slot ${source.slot}`;
  const key = source.keyLabel !== undefined ? `key label ${source.keyLabel}` : `key id ${source.keyId}`;
  return `${token} (${key}) via ${source.module}`;
}

/** An error's first line, bounded, with the PIN cut out should a backend ever echo it. */
function scrub(error: unknown, pin: string | undefined): string {
  const message = error instanceof Error ? error.message : String(error);
  let line = (message.split("\n")[0] ?? "").slice(0, 300);
  if (pin) line = line.replaceAll(pin, "(PIN)");
  return line;
}

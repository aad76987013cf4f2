/**
 * Which CA each Signer signs with. Reads the Signer's material (ca-source.ts), parses each distinct
 * content once (a refusal is remembered by content hash as well, so the same bad bytes are not
 * parsed again on every poll or event), and adopts new material when the rotation gate
 * (rotation-gate.ts) lets it.
 */
import {
  CertificateAuthorityError,
  checkCertificateAuthorityValidity,
  loadCertificateAuthority,
  type CertificateAuthority,
  type CertificateAuthorityKeyOptions,
} from "../pki/certificate-authority.js";
import { createHash } from "node:crypto";
import type { PendingCertificateRequest, RecordedRoot, SignerSpec } from "../api/signer.js";
import type { DistinguishedName } from "../pki/names.js";
import {
  readCertificateAuthorityFiles,
  secretNamespaceOf,
  SecretUnavailableError,
  type SecretLookup,
} from "./ca-source.js";
import { encryptedKeyFileOf } from "../pki/encrypted-key-file.js";
import { KeyDecryptions } from "./key-decryptions.js";
import { rotationGate } from "./rotation-gate.js";
import { readSecretValue, SecretValueError } from "./secret-values.js";
import type { SignerProblem } from "./signer-problem.js";
import { describeTokenKey, type TokenKeys, type TokenKeyState } from "./token-keys.js";

export interface AuthoritySelection {
  /** The CA that signs now. */
  authority?: CertificateAuthority;
  /** Validated material whose root must be published before it may sign. */
  pending?: CertificateAuthority;
  /** Set when the signer cannot sign at all. */
  problem?: SignerProblem;
  /** Set when an update was refused and the previous CA still signs. */
  degraded?: SignerProblem;
  /** When the rotation gate holding `pending` back opens, if nothing else changes. */
  pendingUntil?: Date;
  /** The token key's PKCS#10 request, while no certificate for that key signs. */
  pendingCertificateRequest?: PendingCertificateRequest;
  /** When a failed token key is tried again. */
  retryAt?: Date;
}

/** Every parse of CA material, by the Signer's signerName, and whether it loaded. */
export type CertificateAuthorityParseObserver = (signerName: string, result: "loaded" | "refused") => void;

interface LoadedAuthority {
  sourceHash: string;
  authority: CertificateAuthority;
  /** The token session its key belongs to (0: a key file); another session means another key object. */
  keyGeneration: number;
}

interface RefusedMaterial {
  sourceHash: string;
  problem: SignerProblem;
}

export class CertificateAuthoritySelector {
  /** Last CA adopted per Signer object, by the hash of its source files. */
  private readonly loaded = new Map<string, LoadedAuthority>();
  /** Material read but not (yet) adopted, by Signer: parsed once per content. */
  private readonly candidates = new Map<string, LoadedAuthority>();
  /** The last material refused per Signer: the same bytes are refused again without parsing. */
  private readonly refused = new Map<string, RefusedMaterial>();

  constructor(
    private readonly secret: SecretLookup,
    private readonly controllerNamespace: string,
    private readonly onParse: CertificateAuthorityParseObserver = () => undefined,
    /** Open PKCS#11 keys; absent: Signers naming certificateAuthority.pkcs11 cannot sign. */
    private readonly tokenKeys?: TokenKeys,
    /** Encrypted key files being decrypted off the event loop. */
    private readonly keyDecryptions: KeyDecryptions = new KeyDecryptions(),
  ) {}

  /** Forgets the state of Signers that no longer exist. */
  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const state of [this.loaded, this.candidates, this.refused])
      for (const name of state.keys()) if (!objectNames.has(name)) state.delete(name);
    this.keyDecryptions.retainOnly(objectNames);
    this.tokenKeys?.retainOnly(objectNames);
  }

  /**
   * New material is adopted only when it validates and its root has been in the published bundle
   * for spec.trustBundle.minimumRootPublication; until then the previous CA keeps signing (while
   * valid) and the Signer reports Degraded with the reason.
   */
  select(
    objectName: string,
    spec: SignerSpec,
    recorded: readonly RecordedRoot[],
    now: Date,
  ): AuthoritySelection {
    const pkcs11 = spec.certificateAuthority.pkcs11;
    let token: Extract<TokenKeyState, { kind: "open" }> | undefined;
    if (pkcs11) {
      const state = this.tokenKey(objectName, spec, now);
      // A token key that is not open has no session to sign with: no previous CA can go on.
      if (state.kind !== "open")
        return { problem: state.problem, ...(state.kind === "failed" ? { retryAt: state.retryAt } : {}) };
      token = state;
    }
    let passphrase: string | undefined;
    const keyGeneration = token?.generation ?? 0;
    const adopted = this.loaded.get(objectName);
    const previous =
      adopted && adopted.keyGeneration === keyGeneration && isValidAt(adopted.authority, now)
        ? adopted.authority
        : undefined;
    const waiting = token?.certificateRequest ? { pendingCertificateRequest: token.certificateRequest } : {};
    const keepPrevious = (problem: SignerProblem, pending?: CertificateAuthority): AuthoritySelection =>
      previous
        ? {
            authority: previous,
            ...(pending ? { pending } : {}),
            degraded: {
              reason: problem.reason,
              message: `update not used, still signing with the previous CA: ${problem.message}`,
            },
          }
        : { ...(pending ? { pending } : { ...waiting }), problem };
    const secretNamespace = secretNamespaceOf(spec.certificateAuthority, this.controllerNamespace);
    const keyPassphrase = spec.certificateAuthority.keyPassphrase;
    if (keyPassphrase)
      try {
        passphrase = readSecretValue(keyPassphrase, secretNamespace, this.secret);
      } catch (error) {
        if (error instanceof SecretUnavailableError) return secretUnavailable(error, keepPrevious, now);
        if (!(error instanceof SecretValueError)) throw error;
        return keepPrevious({ reason: "KeyPassphraseUnavailable", message: error.message });
      }
    // The chain is not there yet: the runbook's wait for the root CA to sign the token key's request.
    const waitForCertificate = (where: string): AuthoritySelection =>
      keepPrevious({
        reason: "WaitingForCertificate",
        message: `the CA key is in ${describeTokenKey(pkcs11!)}; no certificate for it in ${where} yet: have status.pendingCertificateRequest signed by the root CA and store the chain there`,
      });
    let files: Record<string, Uint8Array>;
    let sourceName: string;
    let sourceHash: string;
    try {
      ({ files, sourceName, sourceHash } = readCertificateAuthorityFiles(
        spec.certificateAuthority,
        this.controllerNamespace,
        this.secret,
      ));
    } catch (error) {
      if (error instanceof SecretUnavailableError) return secretUnavailable(error, keepPrevious, now);
      if (error instanceof CertificateAuthorityError)
        return keepPrevious({ reason: `CertificateAuthority${error.reason}`, message: error.message });
      if (pkcs11) return waitForCertificate(sourceNameOf(spec, secretNamespace));
      return keepPrevious({ reason: "CertificateAuthorityMissing", message: (error as Error).message });
    }
    if (pkcs11 && Object.keys(files).length === 0) return waitForCertificate(sourceName);
    // The same files with another key session or passphrase are other material.
    sourceHash = `${sourceHash}:${keyGeneration}:${passphrase === undefined ? "" : createHash("sha256").update(passphrase).digest("hex")}`;
    if (adopted && previous && adopted.sourceHash === sourceHash)
      return token?.pinChange
        ? { authority: previous, degraded: token.pinChange.problem, retryAt: token.pinChange.retryAt }
        : { authority: previous };
    const refused = this.refused.get(objectName);
    if (refused?.sourceHash === sourceHash) return keepPrevious(refused.problem);
    const known = this.candidates.get(objectName);
    let candidate: LoadedAuthority;
    try {
      // Parsed once per content; validity is checked every time, since material expires in place.
      if (known?.sourceHash === sourceHash) {
        checkCertificateAuthorityValidity(known.authority, now);
        candidate = known;
      } else {
        // An encrypted key file is decrypted off the event loop first, never by the parse below.
        const encrypted = token || passphrase === undefined ? undefined : encryptedKeyFileOf(files);
        const decryptedKey = encrypted
          ? this.keyDecryptions.key(objectName, sourceHash, encrypted, passphrase!)
          : undefined;
        if (decryptedKey === "decrypting") {
          const retryAt = new Date(now.getTime() + this.keyDecryptions.recheckMs);
          return previous
            ? { authority: previous, retryAt }
            : {
                problem: {
                  reason: "KeyDecrypting",
                  message: this.keyDecryptions.isWaiting(objectName)
                    ? `${sourceName}: ${encrypted!.name} waits for one of ${this.keyDecryptions.slots} decryption slots (encrypted keys of all Signers are decrypted at most ${this.keyDecryptions.slots} at a time)`
                    : `${sourceName}: ${encrypted!.name} is being decrypted with its passphrase`,
                },
                retryAt,
              };
        }
        candidate = {
          sourceHash,
          keyGeneration,
          authority: this.parse(spec.signerName, files, now, {
            ...(token ? { signingKey: token.key, signingKeyLocation: describeTokenKey(pkcs11!) } : {}),
            ...(decryptedKey ? { decryptedKey } : {}),
          }),
        };
      }
    } catch (error) {
      this.candidates.delete(objectName);
      const problem: SignerProblem =
        error instanceof CertificateAuthorityError
          ? { reason: `CertificateAuthority${error.reason}`, message: `${sourceName}: ${error.message}` }
          : // Not one of our checks (OpenSSL, or a bug): still only this Signer's problem.
            {
              reason: "CertificateAuthorityUnreadable",
              message: `${sourceName}: could not be loaded: ${firstLine(error)}`,
            };
      // Material that is not yet valid becomes valid as time passes: that one is parsed again.
      const timeDependent = error instanceof CertificateAuthorityError && error.reason === "NotYetValid";
      if (known?.sourceHash !== sourceHash && !timeDependent)
        this.refused.set(objectName, { sourceHash, problem });
      return keepPrevious(problem);
    }
    this.refused.delete(objectName);
    this.candidates.set(objectName, candidate);
    const gate = rotationGate({
      previousAnchor: previous?.anchor.fingerprintSha256,
      candidateAnchor: candidate.authority.anchor,
      recorded,
      minimumRootPublicationSeconds: spec.trustBundle.minimumRootPublicationSeconds,
      now,
    });
    if (gate.verdict === "hold") {
      const held = keepPrevious(
        { reason: "RootNotYetPublished", message: gate.message },
        candidate.authority,
      );
      return gate.until ? { ...held, pendingUntil: gate.until } : held;
    }
    this.loaded.set(objectName, candidate);
    // A refused new PIN: the session opened with the previous one signs on; the Signer says so.
    if (token?.pinChange)
      return {
        authority: candidate.authority,
        degraded: token.pinChange.problem,
        retryAt: token.pinChange.retryAt,
      };
    return { authority: candidate.authority };
  }

  /** The PIN read now and the token key it opens (or why there is none). */
  private tokenKey(objectName: string, spec: SignerSpec, now: Date): TokenKeyState {
    const pkcs11 = spec.certificateAuthority.pkcs11!;
    const retryAt = new Date(0);
    if (!this.tokenKeys)
      return {
        kind: "failed",
        problem: {
          reason: "Pkcs11ModuleLoadFailed",
          message: "this controller was started without PKCS#11 support",
        },
        retryAt,
      };
    let pin: string;
    try {
      // Always the controller's namespace: a PIN opens every key on the token, so the spec refuses
      // pinSecretRef beside secretNamespace and a tenant never supplies one.
      pin = readSecretValue(pkcs11.pin, this.controllerNamespace, this.secret);
    } catch (error) {
      // Forbidden or not yet listed: the lookup's own reason, looked at again on its watch's events
      // and in a while (a refused watch recovers without one).
      if (error instanceof SecretUnavailableError)
        return {
          kind: "failed",
          problem: { reason: error.reason, message: error.message },
          retryAt: new Date(now.getTime() + secretUnavailableRecheckMs),
        };
      if (!(error instanceof SecretValueError)) throw error;
      // Read again on the next poll or Secret event; the token is not touched without a PIN.
      return { kind: "failed", problem: { reason: "Pkcs11PinUnavailable", message: error.message }, retryAt };
    }
    return this.tokenKeys.key(objectName, pkcs11, pin, certificateRequestSubject(spec));
  }

  private parse(
    signerName: string,
    files: Record<string, Uint8Array>,
    now: Date,
    options: CertificateAuthorityKeyOptions,
  ): CertificateAuthority {
    try {
      const authority = loadCertificateAuthority(files, now, options);
      this.onParse(signerName, "loaded");
      return authority;
    } catch (error) {
      this.onParse(signerName, "refused");
      throw error;
    }
  }
}

/** The intermediate's requested subject: the Signer's organizations, and its signer name as CN. */
function certificateRequestSubject(spec: SignerSpec): DistinguishedName {
  return [
    ...spec.policy.subject.organizations.map((value) => ({ type: "O", value })),
    { type: "CN", value: `${spec.signerName} CA` },
  ];
}

function sourceNameOf(spec: SignerSpec, secretNamespace: string): string {
  const { secretName, path } = spec.certificateAuthority;
  return secretName ? `Secret ${secretNamespace}/${secretName}` : `folder ${path}`;
}

/**
 * A Secret that cannot be looked up: the previous CA (if any) signs on, Degraded; else the Signer
 * is not ready. Looked at again in a while as well as on the watch's events: a watch refused
 * after its list succeeded recovers without one.
 */
function secretUnavailable(
  error: SecretUnavailableError,
  keepPrevious: (problem: SignerProblem) => AuthoritySelection,
  now: Date,
): AuthoritySelection {
  return {
    ...keepPrevious({ reason: error.reason, message: error.message }),
    retryAt: new Date(now.getTime() + secretUnavailableRecheckMs),
  };
}

/** How often a Signer whose Secret cannot be looked up is rebuilt without an event. */
const secretUnavailableRecheckMs = 30_000;

function isValidAt(authority: CertificateAuthority, now: Date): boolean {
  try {
    checkCertificateAuthorityValidity(authority, now);
    return true;
  } catch {
    return false; // expired or not yet valid: the caller treats it as no previous CA
  }
}

/** An error's first line, bounded: enough to act on, never a dump of the input. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split("\n")[0] ?? "").slice(0, 300);
}

/**
 * Which CA each Signer signs with. Reads the Signer's material (a Secret from the cache or a
 * mounted folder), refuses oversized files before parsing them, parses each distinct content once
 * (a refusal is remembered by content hash as well, so the same bad bytes are not parsed again on
 * every poll or event), and adopts new material only once its root has been published long enough.
 */
import { createHash } from "node:crypto";
import {
  CertificateAuthorityError,
  certificateAuthorityFileNames,
  checkCertificateAuthorityFileSize,
  checkCertificateAuthorityValidity,
  loadCertificateAuthority,
  readCertificateAuthorityFolder,
  type CertificateAuthority,
} from "../pki/certificate-authority.js";
import { base64DecodedLength } from "../pki/base64.js";
import { publishedLongEnough } from "../bundle/trust-bundle.js";
import type { RecordedRoot, SignerSpec } from "../api/signer.js";
import type { SecretObject, SignerProblem } from "./signer-registry.js";

export interface AuthoritySelection {
  /** The CA that signs now. */
  authority?: CertificateAuthority;
  /** Validated material whose root must be published before it may sign. */
  pending?: CertificateAuthority;
  /** Set when the signer cannot sign at all. */
  problem?: SignerProblem;
  /** Set when an update was refused and the previous CA still signs. */
  degraded?: SignerProblem;
}

/** Every parse of CA material, by the Signer's signerName, and whether it loaded. */
export type CertificateAuthorityParseObserver = (signerName: string, result: "loaded" | "refused") => void;

interface LoadedAuthority {
  sourceHash: string;
  authority: CertificateAuthority;
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
    private readonly secret: (namespace: string, name: string) => SecretObject | undefined,
    private readonly controllerNamespace: string,
    private readonly onParse: CertificateAuthorityParseObserver = () => undefined,
  ) {}

  /** Forgets the state of Signers that no longer exist. */
  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const state of [this.loaded, this.candidates, this.refused])
      for (const name of state.keys()) if (!objectNames.has(name)) state.delete(name);
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
    const adopted = this.loaded.get(objectName);
    const previous = adopted && isValidAt(adopted.authority, now) ? adopted.authority : undefined;
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
        : { ...(pending ? { pending } : {}), problem };
    let files: Record<string, Uint8Array>;
    let sourceName: string;
    try {
      ({ files, sourceName } = this.readSource(spec));
    } catch (error) {
      if (error instanceof CertificateAuthorityError)
        return keepPrevious({ reason: `CertificateAuthority${error.reason}`, message: error.message });
      return keepPrevious({ reason: "CertificateAuthorityMissing", message: (error as Error).message });
    }
    const sourceHash = hashFiles(files);
    if (adopted && previous && adopted.sourceHash === sourceHash) return { authority: previous };
    const refused = this.refused.get(objectName);
    if (refused?.sourceHash === sourceHash) return keepPrevious(refused.problem);
    const known = this.candidates.get(objectName);
    let candidate: LoadedAuthority;
    try {
      // Parsed once per content; validity is checked every time, since material expires in place.
      if (known?.sourceHash === sourceHash) {
        checkCertificateAuthorityValidity(known.authority, now);
        candidate = known;
      } else candidate = { sourceHash, authority: this.parse(spec.signerName, files, now) };
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
    const anchor = candidate.authority.anchor;
    const sameAnchorAsPrevious = previous?.anchor.fingerprintSha256 === anchor.fingerprintSha256;
    // The minimum publication time paces rotations: a Signer's first root only has to be published.
    // "First" is read from the recorded roots, so it holds across restarts.
    const rotating = recorded.some(
      (root) => root.fingerprintSha256 !== anchor.fingerprintSha256 && root.firstPublished,
    );
    const minimumSeconds = rotating ? spec.trustBundle.minimumRootPublicationSeconds : 0;
    if (
      !sameAnchorAsPrevious &&
      !publishedLongEnough(recorded, anchor.fingerprintSha256, now, minimumSeconds)
    ) {
      return keepPrevious(
        {
          reason: "RootNotYetPublished",
          message: `root "${anchor.subject}" (${anchor.fingerprintSha256}) must be in the published trust bundle for ${minimumSeconds}s before it signs`,
        },
        candidate.authority,
      );
    }
    this.loaded.set(objectName, candidate);
    return { authority: candidate.authority };
  }

  private parse(signerName: string, files: Record<string, Uint8Array>, now: Date): CertificateAuthority {
    try {
      const authority = loadCertificateAuthority(files, now);
      this.onParse(signerName, "loaded");
      return authority;
    } catch (error) {
      this.onParse(signerName, "refused");
      throw error;
    }
  }

  /** The CA files of a Signer; only the known file names, each checked against the size cap first. */
  private readSource(spec: SignerSpec): { files: Record<string, Uint8Array>; sourceName: string } {
    const { secretName, path } = spec.certificateAuthority;
    if (secretName) {
      const sourceName = `Secret ${this.controllerNamespace}/${secretName}`;
      const secret = this.secret(this.controllerNamespace, secretName);
      if (!secret) throw new Error(`${sourceName} not found`);
      const files: Record<string, Uint8Array> = {};
      for (const name of certificateAuthorityFileNames) {
        const value = secret.data?.[name];
        if (value === undefined) continue;
        try {
          checkCertificateAuthorityFileSize(name, base64DecodedLength(value));
        } catch (error) {
          throw new CertificateAuthorityError("TooLarge", `${sourceName}: ${(error as Error).message}`);
        }
        files[name] = Buffer.from(value, "base64");
      }
      return { files, sourceName };
    }
    const sourceName = `folder ${path}`;
    try {
      const files: Record<string, Uint8Array> = {};
      for (const [name, content] of Object.entries(readCertificateAuthorityFolder(path!)))
        if (content) files[name] = content;
      return { files, sourceName };
    } catch (error) {
      if (error instanceof CertificateAuthorityError)
        throw new CertificateAuthorityError(error.reason, `${sourceName}: ${error.message}`);
      throw new Error(`${sourceName}: ${(error as Error).message}`);
    }
  }
}

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

function hashFiles(files: Record<string, Uint8Array>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort())
    hash.update(name).update("\0").update(files[name]!).update("\0");
  return hash.digest("hex");
}

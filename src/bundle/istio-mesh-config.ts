/**
 * Istio's meshConfig `caCertificates` for our Signers (pure): the entries `csr-signer istio mesh-config`
 * prints, and the edit that puts them into a mesh config text while leaving every other byte as it was.
 *
 * istiod verifies each chain it gets back against the entry whose certSigners is exactly the signer
 * name, and entries with the same certSigners overwrite each other, so there is one entry per signer
 * with all its current roots in one pem (both roots during a rotation).
 */
import { isDeepStrictEqual } from "node:util";
import { dump as dumpYaml, loadAll as loadAllYaml } from "js-yaml";
import type { RecordedRoot } from "../api/signer.js";
import { resolveSignerNameClaims, type SignerNameClaimant } from "../policy/signer-name-claims.js";
import { parseSignerSpec, SignerSpecError } from "../policy/signer-spec.js";
import { computeTrustBundle, type TrustBundle } from "./trust-bundle.js";

/** What a Signer object contributes: its name, spec (for signerName and overlap) and recorded roots. */
export interface SignerRoots {
  readonly name: string;
  readonly spec: unknown;
  readonly roots: readonly RecordedRoot[];
  /** metadata.creationTimestamp: of two Signers naming one signerName, the older one's roots go in. */
  readonly createdAt?: string;
}

export interface CaCertificatesBlock {
  /** `caCertificates:` and its entries, a top-level YAML block ending in a newline. */
  readonly yaml: string;
  /** Signers left out because they have published no roots yet. */
  readonly skipped: readonly string[];
  /** Signers left out because an older Signer names the same signerName (it alone is trusted). */
  readonly duplicates: readonly string[];
  /** Every signerName with an entry or claimed by a Signer: the entries a sync owns and replaces. */
  readonly signerNames: ReadonlySet<string>;
  /**
   * Each Signer's entry, its YAML and size in bytes, left-out ones included, in block order: a block
   * leaving out others is caCertificatesYaml of the rest, with no rebuild.
   */
  readonly entries: readonly CaCertificatesEntry[];
}

export interface CaCertificatesEntry {
  readonly signer: string;
  readonly signerName: string;
  /** Its list item as it goes into the block (its roots' PEM, indented, and its certSigners). */
  readonly yaml: string;
  /** UTF-8 bytes of its YAML. */
  readonly bytes: number;
  /** How many roots its pem holds. */
  readonly roots: number;
  /** The Signer's metadata.creationTimestamp, when known. */
  readonly createdAt?: string;
}

/** The `caCertificates:` block holding `entries`, in their order. */
export function caCertificatesYaml(entries: readonly Pick<CaCertificatesEntry, "yaml">[]): string {
  return `caCertificates:\n${entries.map((entry) => entry.yaml).join("")}`;
}

export class InvalidRecordedRootsError extends Error {
  constructor(readonly signer: string) {
    super(`Signer ${signer} records a trust-bundle root that is not a certificate`);
    this.name = "InvalidRecordedRootsError";
  }
}

/** An overlap no recorded root outlives: every unexpired one stays. */
const keepEveryRootSeconds = 100 * 365 * 86400;

export interface CaCertificatesOptions {
  /**
   * The controller's sync: a Signer whose spec does not parse keeps every unexpired recorded root
   * under the spec's signerName, because dropping it would make istiod refuse every certificate of
   * that signer over a spec edit.
   */
  keepRootsOfInvalidSpecs?: boolean;
  /**
   * Signers (object names) whose entry is left out of the YAML while their signerName stays owned
   * (an old entry of theirs is removed, not kept): the sync's mesh ConfigMap size budget.
   */
  leaveOut?: ReadonlySet<string>;
}

/**
 * The caCertificates block for `signers`, in their order. A Signer whose spec does not parse throws
 * (SignerSpecError), as the CLI reports it, unless `keepRootsOfInvalidSpecs`.
 */
export function caCertificatesBlock(
  signers: readonly SignerRoots[],
  now: Date,
  { keepRootsOfInvalidSpecs = false, leaveOut = new Set<string>() }: CaCertificatesOptions = {},
): CaCertificatesBlock {
  const named = signers.map((signer) => ({ signer, ...nameAndOverlap(signer, keepRootsOfInvalidSpecs) }));
  // istiod keeps the last entry per certSigners: a second Signer for the name (Ready=False
  // DuplicateSignerName in the controller) must not replace the roots of the one that signs. The
  // owner is decided exactly as the controller decides it.
  const claims = new Map<string, SignerNameClaimant[]>();
  for (const { signer, signerName } of named)
    claims.set(signerName, [
      ...(claims.get(signerName) ?? []),
      { objectName: signer.name, creationTimestamp: signer.createdAt },
    ]);
  const { owners } = resolveSignerNameClaims(claims);
  const entries: CaCertificatesEntry[] = [];
  const skipped: string[] = [];
  const duplicates: string[] = [];
  const signerNames = new Set<string>();
  for (const { signer, signerName, overlapSeconds } of named) {
    signerNames.add(signerName);
    if (owners.get(signerName) !== signer.name) {
      duplicates.push(signer.name);
      continue;
    }
    // With no "current" roots every recorded root counts as leaving: exactly those still inside their
    // overlap window (and unexpired) remain, which is the bundle the controller publishes.
    let bundle: TrustBundle;
    try {
      bundle = computeTrustBundle([], [...signer.roots], now, overlapSeconds);
    } catch {
      // Status is the controller's own record, so this is corruption, not input: report the Signer.
      throw new InvalidRecordedRootsError(signer.name);
    }
    if (bundle.pem === "") {
      skipped.push(signer.name);
      continue;
    }
    const yaml = `- pem: |\n${indent(bundle.pem, 4)}  certSigners:\n  - ${signerName}\n`;
    entries.push({
      signer: signer.name,
      signerName,
      yaml,
      bytes: Buffer.byteLength(yaml),
      roots: bundle.certificates.length,
      ...(signer.createdAt !== undefined ? { createdAt: signer.createdAt } : {}),
    });
  }
  return {
    yaml: caCertificatesYaml(entries.filter((entry) => !leaveOut.has(entry.signer))),
    skipped,
    duplicates,
    signerNames,
    entries,
  };
}

/** The spec's signerName and overlap; for an unparsable spec kept by the sync, its raw signerName. */
function nameAndOverlap(
  signer: SignerRoots,
  keepRootsOfInvalidSpecs: boolean,
): { signerName: string; overlapSeconds: number } {
  try {
    const spec = parseSignerSpec(signer.spec, signer.name);
    return { signerName: spec.signerName, overlapSeconds: spec.trustBundle.overlapSeconds };
  } catch (error) {
    const raw = (signer.spec as { signerName?: unknown } | undefined)?.signerName;
    if (!keepRootsOfInvalidSpecs || !(error instanceof SignerSpecError) || typeof raw !== "string")
      throw error;
    return { signerName: raw, overlapSeconds: keepEveryRootSeconds };
  }
}

function indent(text: string, spaces: number): string {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => `${" ".repeat(spaces)}${line}\n`)
    .join("");
}

export type MeshConfigEdit =
  | { readonly ok: true; readonly text: string; readonly changed: boolean }
  | { readonly ok: false; readonly problem: string };

/**
 * `meshText` with its top-level `caCertificates` replaced by `block` (appended when absent). Entries
 * for signer names that are not ours (`ownedSignerNames`: other CAs, spiffeBundleUrl, trustDomains)
 * are kept after ours. Only the lines of that key change: comments, order, quoting and every other key
 * stay byte for byte. The text is parsed before and after the edit, and anything but one YAML mapping
 * whose only change is caCertificates (JSON or flow style, several documents, a quoted or repeated
 * key, an indented root, anchors) is left alone and reported instead.
 */
export function replaceCaCertificates(
  meshText: string,
  block: string,
  ownedSignerNames: ReadonlySet<string>,
): MeshConfigEdit {
  const before = parseMeshConfig(meshText);
  if (typeof before === "string") return { ok: false, problem: before };
  const existing = before.caCertificates ?? [];
  if (!Array.isArray(existing)) return { ok: false, problem: "caCertificates is not a list" };
  const foreign = existing.filter((entry) => !namesOwnedSigner(entry, ownedSignerNames));
  const fullBlock =
    foreign.length === 0 ? block : `${block}${dumpYaml(foreign, { lineWidth: -1, noRefs: true })}`;
  const edit = spliceTopLevelBlock(meshText, fullBlock);
  if (!edit.ok || !edit.changed) return edit;
  const after = parseMeshConfig(edit.text);
  const wanted = parseMeshConfig(fullBlock);
  if (typeof after === "string" || typeof wanted === "string")
    return { ok: false, problem: "the edited mesh config would not parse as one YAML mapping" };
  const { caCertificates: _before, ...restBefore } = before;
  const { caCertificates: afterCas, ...restAfter } = after;
  if (!isDeepStrictEqual(restBefore, restAfter) || !isDeepStrictEqual(afterCas, wanted.caCertificates))
    return { ok: false, problem: "the edit would change more of the mesh config than caCertificates" };
  return edit;
}

/** One YAML document holding a mapping (an empty text is an empty mapping), or what is wrong. */
function parseMeshConfig(text: string): Record<string, unknown> | string {
  let documents: unknown[];
  try {
    documents = loadAllYaml(text);
  } catch {
    // The parser's message quotes the text; the problem is enough.
    return "the mesh config is not valid YAML (or repeats a key)";
  }
  if (documents.length > 1) return "the mesh config holds more than one YAML document";
  const [document] = documents;
  if (document === undefined || document === null) return {};
  if (typeof document !== "object" || Array.isArray(document)) return "the mesh config is not a YAML mapping";
  return document as Record<string, unknown>;
}

function namesOwnedSigner(entry: unknown, owned: ReadonlySet<string>): boolean {
  const signers = (entry as { certSigners?: unknown } | null)?.certSigners;
  return Array.isArray(signers) && signers.some((name) => typeof name === "string" && owned.has(name));
}

/** The line edit: the top-level caCertificates lines replaced by `block`, or `block` appended. */
function spliceTopLevelBlock(meshText: string, block: string): MeshConfigEdit {
  const lines = meshText.split("\n");
  const starts = lines.flatMap((line, index) => (/^caCertificates\s*:/.test(line) ? [index] : []));
  if (starts.length > 1) return { ok: false, problem: "caCertificates appears more than once" };
  if (starts.length === 0) {
    const separator = meshText === "" || meshText.endsWith("\n") ? "" : "\n";
    const text = `${meshText}${separator}${block}`;
    return { ok: true, text, changed: text !== meshText };
  }
  const start = starts[0]!;
  const inline = lines[start]!.replace(/^caCertificates\s*:/, "")
    .replace(/\s+#.*$/, "")
    .trim();
  let end = start + 1;
  if (inline !== "") {
    // Only a one-line flow list (`caCertificates: []`) is delimited with certainty.
    if (!/^\[.*\]$/.test(inline))
      return {
        ok: false,
        problem: `caCertificates is not a block list or a one-line flow list: ${inline.slice(0, 40)}`,
      };
  } else {
    // The block: indented lines, list items at column 0 ("- ..."), blank lines and comments inside it.
    while (end < lines.length && isInsideTopLevelBlock(lines[end]!)) end++;
    // Trailing blank lines and column-0 comments belong to what follows.
    while (end > start + 1 && (lines[end - 1]!.trim() === "" || lines[end - 1]!.startsWith("#"))) end--;
  }
  const replaced = lines.slice(start, end).join("\n");
  // PEM text never holds & or *, so one of them after a separator is an anchor or an alias.
  if (/(^|[\s[{,:-])[&*][A-Za-z0-9_-]/m.test(replaced.replace(/#.*$/gm, ""))) {
    return { ok: false, problem: "caCertificates uses a YAML anchor or alias" };
  }
  const blockLines = block.endsWith("\n") ? block.slice(0, -1) : block;
  const text = [...lines.slice(0, start), blockLines, ...lines.slice(end)].join("\n");
  return { ok: true, text, changed: text !== meshText };
}

function isInsideTopLevelBlock(line: string): boolean {
  return (
    line.trim() === "" ||
    line.startsWith(" ") ||
    line.startsWith("\t") ||
    line === "-" ||
    line.startsWith("- ") ||
    line.startsWith("#")
  );
}

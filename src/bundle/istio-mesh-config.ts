/**
 * Istio's meshConfig `caCertificates` for our Signers (pure): the entries `csr-signer istio mesh-config`
 * prints, and the edit that puts them into a mesh config text while leaving every other byte as it was.
 *
 * istiod verifies each chain it gets back against the entry whose certSigners is exactly the signer
 * name, and entries with the same certSigners overwrite each other, so there is one entry per signer
 * with all its current roots in one pem (both roots during a rotation).
 */
import type { RecordedRoot } from "../api/signer.js";
import { parseSignerSpec, SignerSpecError } from "../policy/signer-spec.js";
import { computeTrustBundle } from "./trust-bundle.js";

/** What a Signer object contributes: its name, spec (for signerName and overlap) and recorded roots. */
export interface SignerRoots {
  readonly name: string;
  readonly spec: unknown;
  readonly roots: readonly RecordedRoot[];
}

export interface CaCertificatesBlock {
  /** `caCertificates:` and its entries, a top-level YAML block ending in a newline. */
  readonly yaml: string;
  /** Signers left out because they have published no roots yet. */
  readonly skipped: readonly string[];
}

/** An overlap no recorded root outlives: every unexpired one stays. */
const keepEveryRootSeconds = 100 * 365 * 86400;

/**
 * The caCertificates block for `signers`, in their order. A Signer whose spec does not parse throws
 * (SignerSpecError), as the CLI reports it, unless `keepRootsOfInvalidSpecs`: then (the controller's
 * sync) its entry keeps every unexpired recorded root under the spec's signerName, because dropping
 * it would make istiod refuse every certificate of that signer over a spec edit.
 */
export function caCertificatesBlock(
  signers: readonly SignerRoots[],
  now: Date,
  { keepRootsOfInvalidSpecs = false } = {},
): CaCertificatesBlock {
  const entries: string[] = [];
  const skipped: string[] = [];
  for (const signer of signers) {
    let signerName: string;
    let overlapSeconds: number;
    try {
      const spec = parseSignerSpec(signer.spec, signer.name);
      signerName = spec.signerName;
      overlapSeconds = spec.trustBundle.overlapSeconds;
    } catch (error) {
      const raw = (signer.spec as { signerName?: unknown } | undefined)?.signerName;
      if (!keepRootsOfInvalidSpecs || !(error instanceof SignerSpecError) || typeof raw !== "string")
        throw error;
      signerName = raw;
      overlapSeconds = keepEveryRootSeconds;
    }
    // With no "current" roots every recorded root counts as leaving: exactly those still inside their
    // overlap window (and unexpired) remain, which is the bundle the controller publishes.
    const pem = computeTrustBundle([], [...signer.roots], now, overlapSeconds).pem;
    if (pem === "") {
      skipped.push(signer.name);
      continue;
    }
    entries.push(`- pem: |\n${indent(pem, 4)}  certSigners:\n  - ${signerName}\n`);
  }
  return { yaml: `caCertificates:\n${entries.join("")}`, skipped };
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
 * `meshText` with its top-level `caCertificates` replaced by `block` (appended when absent). Only the
 * lines of that key change: comments, order, quoting and every other key stay byte for byte. A
 * caCertificates this edit cannot delimit safely (a flow list over several lines, the key twice, an
 * anchor or alias) is left alone and reported instead.
 */
export function replaceCaCertificates(meshText: string, block: string): MeshConfigEdit {
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

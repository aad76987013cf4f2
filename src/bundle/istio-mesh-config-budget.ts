/**
 * The size bound of the shared Istio mesh ConfigMap (pure). Every Signer's roots go into one
 * ConfigMap, and a tenant whose CA Secret is in its own namespace chooses its roots (up to 4 of
 * 8192 DER bytes per CA material, 16 recorded per Signer: about 180 KiB of PEM). The API server
 * refuses a ConfigMap whose data passes 1 MiB, and a refused write would keep every tenant's
 * rotation out of the mesh config. So before writing, the edited ConfigMap is measured; while it
 * passes the budget, the Signer with the largest entry is left out, and every other Signer's roots
 * are still written. Of entries of equal size, the one already in the ConfigMap as it is stays,
 * then the older Signer's: a tenant cannot pad its roots to another's size and push it out. A
 * left-out Signer is reported on the Signer itself (Degraded, IstioMeshConfigTooLarge, and its
 * Warning Event), since it is the one whose roots do not fit; trimming roots off an entry instead
 * would make istiod refuse certificates of the root left out, which is worse than an entry that is
 * plainly missing.
 *
 * The passes run on the event loop after Signer events, over a mesh text of up to 1 MiB, so the
 * entries are built once and what to leave out is chosen by arithmetic (the edit only splices the
 * entries in, so the ConfigMap's size is its size without them plus theirs): one edit to measure,
 * one more when something is left out, whatever the number of Signers.
 */
import { creationTimeMs } from "../policy/signer-name-claims.js";
import {
  caCertificatesYaml,
  replaceCaCertificates,
  type CaCertificatesBlock,
  type CaCertificatesEntry,
  type MeshConfigEdit,
} from "./istio-mesh-config.js";

/**
 * The most a mesh ConfigMap's data may hold after our edit: the API server's limit is 1 MiB (data
 * plus binaryData); the rest is left for Istio's installer and hand edits to grow without every
 * write of theirs, and ours, being refused.
 */
export const meshConfigMapBudgetBytes = 900 * 1024;

/** The parts of a ConfigMap its size limit counts. */
export interface ConfigMapContent {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** The size the API server checks against its 1 MiB limit: data values and binaryData's bytes. */
export function configMapDataBytes(configMap: ConfigMapContent): number {
  let bytes = 0;
  for (const value of Object.values(configMap.data ?? {})) bytes += Buffer.byteLength(value);
  for (const value of Object.values(configMap.binaryData ?? {})) bytes += Buffer.from(value, "base64").length;
  return bytes;
}

export interface LeftOutEntry extends Omit<CaCertificatesEntry, "yaml"> {
  /** The ConfigMap's data size had it gone in (with the entries left out before it). */
  readonly wouldBeBytes: number;
}

export type FittedMeshConfig =
  | { readonly ok: true; readonly text: string; readonly changed: boolean; readonly leftOut: LeftOutEntry[] }
  | { readonly ok: false; readonly problem: string };

/** The edit fitMeshConfig makes (replaceCaCertificates; a stand-in in tests that count them). */
export type MeshConfigReplace = (
  meshText: string,
  block: string,
  ownedSignerNames: ReadonlySet<string>,
) => MeshConfigEdit;

/**
 * The mesh text for `configMap` (its `mesh` key) with as many Signers' entries as fit the budget.
 * `block` is every Signer's entry, built once by the caller. Not ok when the edit is unsafe
 * (replaceCaCertificates) or when the ConfigMap passes the budget even without any entry of ours.
 */
export function fitMeshConfig(
  configMap: ConfigMapContent & { data: { mesh: string } },
  block: CaCertificatesBlock,
  budgetBytes: number = meshConfigMapBudgetBytes,
  replace: MeshConfigReplace = replaceCaCertificates,
): FittedMeshConfig {
  const { entries, signerNames } = block;
  const mesh = configMap.data.mesh;
  const measure = (text: string) =>
    configMapDataBytes({ ...configMap, data: { ...configMap.data, mesh: text } });
  const order = [...entries].sort(leaveOutFirst(mesh));
  const leftOut: LeftOutEntry[] = [];
  let kept = entries;
  // One pass when everything fits, two when something is left out: the third only if the sum was
  // off, which the splice does not allow, and each pass after the first leaves out one more at least.
  for (;;) {
    const edit = replace(mesh, caCertificatesYaml(kept), signerNames);
    if (!edit.ok) return edit;
    const bytes = measure(edit.text);
    if (bytes <= budgetBytes) return { ...edit, leftOut };
    if (kept.length === 0)
      return {
        ok: false,
        problem: `the mesh ConfigMap holds ${bytes} bytes without any Signer's roots, over the ${budgetBytes}-byte budget (the API server's limit is 1 MiB)`,
      };
    const keptNames = new Set(kept.map((entry) => entry.signer));
    let wouldBe = bytes;
    for (const entry of order) {
      if (wouldBe <= budgetBytes) break;
      if (!keptNames.has(entry.signer)) continue;
      const { yaml: _, ...measured } = entry;
      leftOut.push({ ...measured, wouldBeBytes: wouldBe });
      keptNames.delete(entry.signer);
      wouldBe -= entry.bytes;
    }
    kept = kept.filter((entry) => keptNames.has(entry.signer));
  }
}

/**
 * The order entries are left out in: the largest first; of equal size, one not already in `mesh` as
 * it is before one that is, then the younger Signer (one of unknown age counts as the youngest), then
 * the later name.
 */
function leaveOutFirst(mesh: string): (a: CaCertificatesEntry, b: CaCertificatesEntry) => number {
  const present = new Map<string, boolean>();
  const isPresent = (entry: CaCertificatesEntry): boolean => {
    let known = present.get(entry.signer);
    if (known === undefined) present.set(entry.signer, (known = mesh.includes(entry.yaml)));
    return known;
  };
  return (a, b) =>
    b.bytes - a.bytes ||
    Number(isPresent(a)) - Number(isPresent(b)) ||
    compareAge(b.createdAt, a.createdAt) ||
    (a.signer < b.signer ? 1 : a.signer > b.signer ? -1 : 0);
}

/** Negative when `a` was created first; an unknown time counts as the newest (as for signer names). */
function compareAge(a: string | undefined, b: string | undefined): number {
  return Math.sign(creationTimeMs(a) - creationTimeMs(b));
}

/**
 * The size bound of the shared Istio mesh ConfigMap (pure). Every Signer's roots go into one
 * ConfigMap, and a tenant whose CA Secret is in its own namespace chooses its roots (up to 4 of
 * 8192 DER bytes per CA material, 16 recorded per Signer: about 180 KiB of PEM). The API server
 * refuses a ConfigMap whose data passes 1 MiB, and a refused write would keep every tenant's
 * rotation out of the mesh config. So before writing, the edited ConfigMap is measured; while it
 * passes the budget, the Signer with the largest entry is left out (of equal ones, the later
 * name), and every other Signer's roots are still written. A left-out Signer is reported on the
 * Signer itself (Degraded, IstioMeshConfigTooLarge, and its Warning Event), since it is the one
 * whose roots do not fit; trimming roots off an entry instead would make istiod refuse
 * certificates of the root left out, which is worse than an entry that is plainly missing.
 */
import {
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

export interface LeftOutEntry extends CaCertificatesEntry {
  /** The ConfigMap's data size had it gone in (with the entries left out before it). */
  readonly wouldBeBytes: number;
}

export type FittedMeshConfig =
  | { readonly ok: true; readonly text: string; readonly changed: boolean; readonly leftOut: LeftOutEntry[] }
  | { readonly ok: false; readonly problem: string };

/**
 * The mesh text for `configMap` (its `mesh` key) with as many Signers' entries as fit the budget.
 * `build` makes the block leaving out the given Signers. Not ok when the edit is unsafe
 * (replaceCaCertificates) or when the ConfigMap passes the budget even without any entry of ours.
 */
export function fitMeshConfig(
  configMap: ConfigMapContent & { data: { mesh: string } },
  build: (leaveOut: ReadonlySet<string>) => CaCertificatesBlock,
  budgetBytes: number = meshConfigMapBudgetBytes,
): FittedMeshConfig {
  const mesh = configMap.data.mesh;
  const leaveOut = new Set<string>();
  const leftOut: LeftOutEntry[] = [];
  for (;;) {
    const block = build(leaveOut);
    const edit: MeshConfigEdit = replaceCaCertificates(mesh, block.yaml, block.signerNames);
    if (!edit.ok) return edit;
    const bytes = configMapDataBytes({ ...configMap, data: { ...configMap.data, mesh: edit.text } });
    if (bytes <= budgetBytes) return { ...edit, leftOut };
    const largest = block.entries
      .filter((entry) => !leaveOut.has(entry.signer))
      .sort((a, b) => b.bytes - a.bytes || (a.signer < b.signer ? 1 : -1))[0];
    if (!largest)
      return {
        ok: false,
        problem: `the mesh ConfigMap holds ${bytes} bytes without any Signer's roots, over the ${budgetBytes}-byte budget (the API server's limit is 1 MiB)`,
      };
    leaveOut.add(largest.signer);
    leftOut.push({ ...largest, wouldBeBytes: bytes });
  }
}

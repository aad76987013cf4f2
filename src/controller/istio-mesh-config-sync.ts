/**
 * Opt-in (--istio-mesh-config=<namespace>/<configmap>, repeatable): keeps meshConfig caCertificates in
 * Istio's mesh ConfigMaps (key `mesh`) equal to what `csr-signer istio mesh-config` prints for every
 * Signer, so a root rotation needs no hand edit: istiod reloads the mesh config and verifies chains
 * against the new bundle. Only the caCertificates lines change (replaceCaCertificates); every other
 * byte of the mesh config stays. Runs on the leader only, after Signer changes and every resync
 * period (which also reverts a hand edit or a chart upgrade that dropped the field); a failure is
 * logged and retried with backoff, and never touches signing. The ConfigMap is kept under a size
 * budget (istio-mesh-config-budget.ts): a Signer whose roots do not fit is left out and reported on
 * that Signer, while every other Signer's roots are written.
 */
import type { SignerObject } from "../api/signer.js";
import { caCertificatesBlock, type CaCertificatesBlock } from "../bundle/istio-mesh-config.js";
import {
  fitMeshConfig,
  meshConfigMapBudgetBytes,
  type LeftOutEntry,
} from "../bundle/istio-mesh-config-budget.js";
import { apiErrorCode, describeError } from "../kube/client.js";
import type { KubeApi } from "../kube/api-client.js";
import { kubernetesTime } from "../kube/time.js";
import type { Logger } from "../logger.js";
import type { ControllerMetrics } from "./metrics.js";

export interface MeshConfigMapRef {
  readonly namespace: string;
  readonly name: string;
}

/** Parses `<namespace>/<configmap>` (the flag's value); undefined when it is not that shape. */
export function parseMeshConfigMapRef(value: string): MeshConfigMapRef | undefined {
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value);
  return match ? { namespace: match[1]!, name: match[3]! } : undefined;
}

interface ConfigMap {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
  [other: string]: unknown;
}

/** The informer keeps creationTimestamp as the API's string; typed objects may hold a Date. */
function creationTime(signer: SignerObject): string | undefined {
  const created = signer.metadata?.creationTimestamp;
  return created instanceof Date ? kubernetesTime(created) : created;
}

export type MeshConfigOutcome = "updated" | "unchanged" | "failed";

/**
 * Signers (object names) whose roots were left out of a mesh ConfigMap in the last pass, each with
 * the message for its condition; called after every pass that could measure, so a Signer that
 * fits again is no longer named.
 */
export type MeshConfigLeftOutReport = (leftOut: ReadonlyMap<string, string>) => void;

/** Retry delays after a failed pass: 1 s doubling to 60 s. */
const firstRetryMs = 1_000;
const maxRetryMs = 60_000;

export class IstioMeshConfigSync {
  private running: Promise<void> | undefined;
  private again = false;
  private retryMs = firstRetryMs;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * What each target left out when last measured: a target that could not be read this pass keeps
   * its last answer, so its Signers do not flap between Degraded and not.
   */
  private readonly leftOutByTarget = new Map<string, readonly LeftOutEntry[]>();

  constructor(
    private readonly targets: readonly MeshConfigMapRef[],
    private readonly api: KubeApi,
    /** Every Signer (the cache, once synced): its recorded roots go in. */
    private readonly signers: () => SignerObject[],
    private readonly now: () => Date,
    private readonly logger: Logger,
    private readonly metrics: ControllerMetrics,
    /** Checked before every pass, retries included: a replica that lost the Lease writes nothing. */
    private readonly isLeader: () => boolean,
    /** Where left-out Signers are reported (their Degraded condition). */
    private readonly reportLeftOut: MeshConfigLeftOutReport = () => undefined,
    private readonly budgetBytes: number = meshConfigMapBudgetBytes,
  ) {}

  get enabled(): boolean {
    return this.targets.length > 0;
  }

  /**
   * Asks for a pass soon: requests while one runs are coalesced into one more pass after it, and a
   * failed pass is retried with backoff (a later request does not wait for the backoff).
   */
  request(): void {
    if (!this.enabled || this.stopped || !this.isLeader()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.retryTimer);
    this.running = (async () => {
      let inSync = false;
      try {
        inSync = await this.sync();
      } catch (error) {
        // sync() reports its own failures; anything else must not become an unhandled rejection
        // (a crash of every replica on each leader start), only a retry.
        this.logger.error("Istio meshConfig sync failed, will retry", { error: describeError(error) });
      } finally {
        this.running = undefined;
      }
      if (this.again) {
        this.again = false;
        this.request();
      } else if (!inSync && !this.stopped) {
        this.retryTimer = setTimeout(() => this.request(), this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(this.retryMs * 2, maxRetryMs);
      } else {
        this.retryMs = firstRetryMs;
      }
    })();
  }

  /** No pass starts after this; resolves when a running one ends. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.running;
  }

  /** One pass over every target; true when all are in sync (so no retry is needed). */
  async sync(): Promise<boolean> {
    // Sorted by name, as the API lists them to `csr-signer istio mesh-config`: the same text each time.
    const signers = [...this.signers()].sort((a, b) =>
      (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""),
    );
    const inputs = signers.map((signer) => ({
      name: signer.metadata?.name ?? "",
      spec: signer.spec,
      roots: signer.status?.trustBundle?.roots ?? [],
      createdAt: creationTime(signer),
    }));
    let block: CaCertificatesBlock;
    try {
      // Built once for every target: the budget leaves entries out without building again.
      block = caCertificatesBlock(inputs, this.now(), { keepRootsOfInvalidSpecs: true });
    } catch (error) {
      // Nothing is written: every mesh config keeps the entries it has until the Signer is fixed.
      this.logger.warn("Istio meshConfig caCertificates not synced", { error: describeError(error) });
      for (const target of this.targets)
        this.metrics.meshConfigSyncs.inc({
          configmap: `${target.namespace}/${target.name}`,
          outcome: "failed",
        });
      return false;
    }
    let allInSync = true;
    for (const target of this.targets) {
      const outcome = await this.syncOne(target, block);
      this.metrics.meshConfigSyncs.inc({ configmap: `${target.namespace}/${target.name}`, outcome });
      if (outcome === "failed") allInSync = false;
    }
    const leftOut = new Map<string, { entry: LeftOutEntry; configMaps: string[] }>();
    for (const [where, entries] of this.leftOutByTarget)
      for (const entry of entries) {
        const known = leftOut.get(entry.signer) ?? { entry, configMaps: [] };
        known.configMaps.push(where);
        leftOut.set(entry.signer, known);
      }
    this.reportLeftOut(
      new Map(
        [...leftOut].map(([signer, { entry, configMaps }]) => [
          signer,
          this.leftOutMessage(configMaps, entry),
        ]),
      ),
    );
    return allInSync;
  }

  /** The Signer's Degraded message: what did not fit where, what that means, what brings it back. */
  private leftOutMessage(configMaps: readonly string[], entry: LeftOutEntry): string {
    return `its ${entry.roots} trust-bundle root(s) (${entry.bytes} bytes of meshConfig caCertificates) do not fit Istio mesh ConfigMap ${configMaps.join(", ")} under the ${this.budgetBytes}-byte budget (the API server refuses ConfigMaps over 1 MiB), so they are left out: istiod has no caCertificates entry for ${entry.signerName} and takes the last certificate of each chain as its root, while every other Signer's roots are published. Fewer or smaller roots bring them back (retired roots leave after spec.trustBundle.overlap), or make room in the ConfigMap`;
  }

  private async syncOne(target: MeshConfigMapRef, block: CaCertificatesBlock): Promise<MeshConfigOutcome> {
    const path = `/api/v1/namespaces/${target.namespace}/configmaps/${target.name}`;
    const where = `${target.namespace}/${target.name}`;
    try {
      const configMap = await this.api.getIfExists<ConfigMap>(path);
      const mesh = configMap?.data?.mesh;
      if (configMap === undefined || mesh === undefined) {
        // Istio's installer creates it; writing a whole mesh config of our own is not ours to do.
        this.logger.warn("Istio mesh ConfigMap or its key mesh is missing; caCertificates not synced", {
          configMap: where,
        });
        return "failed";
      }
      const edit = fitMeshConfig(
        { ...configMap, data: { ...configMap.data, mesh } },
        block,
        this.budgetBytes,
      );
      if (!edit.ok) {
        this.logger.warn("left Istio mesh config alone: caCertificates not synced", {
          configMap: where,
          problem: edit.problem,
        });
        return "failed";
      }
      const names = (entries: readonly LeftOutEntry[]) => entries.map((entry) => entry.signer).join(", ");
      if (edit.leftOut.length > 0 && names(edit.leftOut) !== names(this.leftOutByTarget.get(where) ?? []))
        this.logger.warn("Signers' roots left out of Istio mesh config: over the size budget", {
          configMap: where,
          signers: names(edit.leftOut),
          budgetBytes: this.budgetBytes,
        });
      for (const entry of this.leftOutByTarget.get(where) ?? [])
        this.metrics.meshConfigLeftOut.remove({ configmap: where, signer: entry.signerName });
      for (const entry of edit.leftOut)
        this.metrics.meshConfigLeftOut.set({ configmap: where, signer: entry.signerName }, 1);
      this.leftOutByTarget.set(where, edit.leftOut);
      if (!edit.changed) return "unchanged";
      // A replace of the object as read: its resourceVersion makes it a compare-and-swap (a concurrent
      // edit is a 409, re-read on the retry, never overwritten), and it needs only the update verb the
      // controller already has on ConfigMaps for trust bundles.
      await this.api.replace(path, { ...configMap, data: { ...configMap.data, mesh: edit.text } });
      this.logger.info("updated meshConfig caCertificates", { configMap: where });
      return "updated";
    } catch (error) {
      const hint =
        apiErrorCode(error) === 403
          ? ` (the controller needs get and update on configmaps/${target.name} in ${target.namespace})`
          : "";
      this.logger.warn("could not sync Istio meshConfig caCertificates, will retry", {
        configMap: where,
        error: `${describeError(error)}${hint}`,
      });
      return "failed";
    }
  }
}

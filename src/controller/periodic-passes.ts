/**
 * What runs on a timer rather than on an event: re-reading mounted CA folders, PIN and passphrase
 * files (not watched; only Signers reading files are polled), the clean-up sweep of handled CSRs,
 * and the Istio mesh-config resync. The mesh-config pass also follows Signer events.
 */
import type { ControllerCollaborators } from "./collaborators.js";
import type { ControllerOptions } from "./controller-options.js";

export class PeriodicPasses {
  private readonly timers: NodeJS.Timeout[] = [];

  /**
   * Starts the passes. Call it once the Signer cache is synced: a mesh-config pass on an empty cache
   * would drop every root.
   */
  start(
    parts: Pick<
      ControllerCollaborators,
      "registry" | "queues" | "cleaner" | "meshConfigSync" | "informers" | "leadership"
    >,
    options: Pick<ControllerOptions, "caFolderPollMs" | "istioMeshConfigResyncMs">,
  ): void {
    const { registry, queues, cleaner, meshConfigSync, leadership } = parts;
    this.every(options.caFolderPollMs ?? 10_000, () => {
      for (const name of registry.usingFolders()) queues.signers.add(name);
    });
    if (cleaner) this.every(cleaner.intervalMs, () => void (leadership.isLeader && cleaner.sweep()));
    if (meshConfigSync.enabled) {
      // Roots change in Signer status; the resync also reverts an edit that dropped them.
      parts.informers.signers.on(() => leadership.isLeader && meshConfigSync.request());
      this.every(
        options.istioMeshConfigResyncMs ?? 60_000,
        () => leadership.isLeader && meshConfigSync.request(),
      );
      if (leadership.isLeader) meshConfigSync.request();
    }
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  private every(milliseconds: number, action: () => void): void {
    const timer = setInterval(action, milliseconds);
    timer.unref();
    this.timers.push(timer);
  }
}

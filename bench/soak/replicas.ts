/**
 * The two controller replicas of the soak, each a separate process as the Deployment runs them:
 * `node <Dockerfile's node flags> dist/csr-signer.mjs controller --leader-elect=true` (the bundle the
 * image runs, built from the work tree by bench/rss-child.ts), POD_NAME as the Lease identity, every
 * other flag at its default (8 workers, 100 QPS / burst 200, Lease 15 s / 10 s / 2 s). Each process runs
 * in its own process group (test/support/control-plane/processes.ts), so it can be SIGKILLed,
 * SIGSTOPped and continued; a restarted replica is a new incarnation with a new identity, as a
 * replacement pod would be, and logs to its own file.
 */
import fs from "node:fs";
import path from "node:path";
import type { ControlPlane } from "../../test/support/control-plane.js";
import {
  processState,
  signalGroup,
  spawnInOwnGroup,
  terminate,
  type ManagedProcess,
} from "../../test/support/control-plane/processes.js";
import { findFreePorts } from "../../test/support/control-plane.js";
import { controllerNamespace } from "../../test/support/controller.js";
import { waitFor } from "../../test/support/wait.js";
import { csrSignerNodeArgs } from "../rss-child.js";

/** One process of a replica slot ("a" or "b"); identity `replica-<slot>-<incarnation>`. */
export interface Incarnation {
  readonly slot: string;
  readonly identity: string;
  readonly process: ManagedProcess;
  readonly logPath: string;
  readonly startedAt: number;
  /** RSS samples (bytes) with their Date.now(), every 5 s while it runs. */
  readonly rss: { at: number; bytes: number }[];
  stopped: boolean;
  /** From spawn until /readyz answered 200; undefined when it did not within 2 minutes. */
  readyAfterMs?: number | undefined;
}

export class Replicas {
  readonly incarnations: Incarnation[] = [];
  private readonly counters = new Map<string, number>();
  private sampler: NodeJS.Timeout | undefined;

  constructor(
    private readonly controlPlane: ControlPlane,
    private readonly kubeconfigPath: string,
    private readonly logDir: string,
    /** Flags added to every replica's command line (SOAK_CONTROLLER_ARGS, for diagnosis). */
    private readonly extraArgs: readonly string[] = [],
  ) {}

  /** The running incarnation of `slot`. */
  current(slot: string): Incarnation | undefined {
    return this.incarnations.findLast((incarnation) => incarnation.slot === slot && !incarnation.stopped);
  }

  byIdentity(identity: string): Incarnation | undefined {
    return this.incarnations.find((incarnation) => incarnation.identity === identity);
  }

  async start(slot: string): Promise<Incarnation> {
    const number = (this.counters.get(slot) ?? 0) + 1;
    this.counters.set(slot, number);
    const identity = `replica-${slot}-${number}`;
    const [metricsPort, probePort] = await findFreePorts(2);
    const logPath = path.join(this.logDir, `${identity}.log`);
    const args = csrSignerNodeArgs([
      "controller",
      `--kubeconfig=${this.kubeconfigPath}`,
      `--namespace=${controllerNamespace}`,
      "--leader-elect=true",
      `--metrics-address=127.0.0.1:${metricsPort}`,
      `--probe-address=127.0.0.1:${probePort}`,
      ...this.extraArgs,
    ]);
    const managed = spawnInOwnGroup(identity, process.execPath, args, logPath, {
      ...process.env,
      POD_NAME: identity,
    });
    // Killed with the control plane's run should this process die (its kubeconfig is in the run folder).
    this.controlPlane.adoptProcess(identity, managed.pid);
    const incarnation: Incarnation = {
      slot,
      identity,
      process: managed,
      logPath,
      startedAt: Date.now(),
      rss: [],
      stopped: false,
    };
    this.incarnations.push(incarnation);
    void managed.exited.then(() => (incarnation.stopped = true));
    // Not ready in time (a fresh replica lists every pending CSR through the client limit): it goes on
    // starting; the soak goes on and the fault record says so.
    incarnation.readyAfterMs = await waitFor(
      `${identity}'s /readyz`,
      async () => {
        const response = await fetch(`http://127.0.0.1:${probePort}/readyz`, {
          signal: AbortSignal.timeout(2_000),
        });
        await response.body?.cancel();
        return response.status === 200 ? Date.now() - incarnation.startedAt : undefined;
      },
      120_000,
      { intervalMs: 200, giveUpIf: () => (incarnation.stopped ? `${identity} exited` : undefined) },
    ).catch(() => undefined);
    return incarnation;
  }

  kill(incarnation: Incarnation): Promise<void> {
    signalGroup(incarnation.process.pid, "SIGKILL");
    return incarnation.process.exited;
  }

  freeze(incarnation: Incarnation): void {
    signalGroup(incarnation.process.pid, "SIGSTOP");
  }

  resume(incarnation: Incarnation): void {
    signalGroup(incarnation.process.pid, "SIGCONT");
  }

  /** RSS of every running incarnation every 5 s (skipped while frozen: it cannot change). */
  sampleRss(): void {
    const sample = (): void => {
      for (const incarnation of this.incarnations) {
        if (incarnation.stopped || processState(incarnation.process.pid) === "T") continue;
        const bytes = vmRssBytes(incarnation.process.pid);
        if (bytes !== undefined) incarnation.rss.push({ at: Date.now(), bytes });
      }
    };
    sample();
    this.sampler = setInterval(sample, 5_000);
    this.sampler.unref();
  }

  async stopAll(): Promise<void> {
    clearInterval(this.sampler);
    for (const incarnation of this.incarnations) {
      if (incarnation.stopped) continue;
      signalGroup(incarnation.process.pid, "SIGCONT");
      await terminate(incarnation.process, 10_000);
    }
  }

  /** Every JSON line an incarnation logged. */
  static logEntries(incarnation: Incarnation): Record<string, unknown>[] {
    let text = "";
    try {
      text = fs.readFileSync(incarnation.logPath, "utf8");
    } catch {
      return []; // never wrote a line
    }
    const entries: Record<string, unknown>[] = [];
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        entries.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        continue; // a line cut by SIGKILL
      }
    }
    return entries;
  }
}

function vmRssBytes(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined; // exited meanwhile
  }
}

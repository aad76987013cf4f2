/**
 * The controller as deployed, in a child process whose memory the benchmarks measure
 * (bench/controller/rss.ts, bench/memory.bench.ts), and the command line the throughput comparison runs
 * (bench/controller/peer.ts).
 *
 * The child is the real CLI: `node dist/csr-signer.mjs controller --kubeconfig ... --leader-elect=false`
 * (the bundle `make build` writes and the image runs; rebuilt here once per benchmark so it matches the
 * work tree), with the node flags of the Dockerfile's ENTRYPOINT, and every other CLI flag at its
 * default (8 workers, 100 QPS / burst 200, clean-up on). Nothing reaches into it: bench/heap-reporter.mjs,
 * preloaded with --import, reports RSS, VmHWM and heap over an IPC channel and runs a full GC on
 * request; readiness is the controller's own /readyz.
 * BENCH_CONTROLLER_RUNTIME=tsx runs src/cli/main.ts under tsx instead, to compare with the deployed form;
 * BENCH_NODE_FLAGS adds node flags after the deployed ones (e.g. "--max-semi-space-size=2", a later flag winning), in the
 * memory children and in the throughput comparison alike (csr-signer-alt takes BENCH_ALT_NODE_FLAGS
 * instead).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { repositoryRoot } from "../test/support/testbin.js";
import { delay, waitFor } from "../test/support/wait.js";

export const bundlePath = join(repositoryRoot, "dist", "csr-signer.mjs");

/** How the benchmarks run csr-signer: the bundle (as deployed, the default) or the TypeScript under tsx. */
export const controllerRuntime: "bundle" | "tsx" =
  process.env.BENCH_CONTROLLER_RUNTIME === "tsx" ? "tsx" : "bundle";

/** A phrase for the printed reports: how csr-signer ran. */
export const controllerRuntimeDescription =
  controllerRuntime === "bundle"
    ? "as deployed: `node dist/csr-signer.mjs`, the esbuild bundle the image runs"
    : "under tsx (`node --import tsx src/cli/main.ts`), not as deployed";

/**
 * The node flags the image runs the bundle with: those between "node" and the bundle in the
 * Dockerfile's ENTRYPOINT, read from there so that the benchmarks cannot drift from it.
 */
export function deployedNodeFlags(): string[] {
  const dockerfile = readFileSync(join(repositoryRoot, "Dockerfile"), "utf8");
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  const command = entrypoint === undefined ? undefined : (JSON.parse(entrypoint) as string[]);
  const bundleIndex = command?.indexOf("dist/csr-signer.mjs") ?? -1;
  if (command?.[0] !== "node" || bundleIndex < 0)
    throw new Error('the Dockerfile has no ENTRYPOINT ["node", ..., "dist/csr-signer.mjs"]');
  return command.slice(1, bundleIndex);
}

/** The node flags csr-signer runs with here: the deployed ones, then those of BENCH_NODE_FLAGS. */
export function controllerNodeFlags(): string[] {
  return [...deployedNodeFlags(), ...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter(Boolean)];
}

/**
 * node's arguments for the A/B comparison's second csr-signer (bench/controller/common.ts,
 * "csr-signer-alt"): BENCH_ALT_BUNDLE (the work tree's bundle by default) with the deployed node
 * flags, then BENCH_ALT_NODE_FLAGS.
 */
export function alternativeCsrSignerNodeArgs(cliArgs: string[]): string[] {
  ensureBundle();
  return [...alternativeCsrSignerNodeFlags(), alternativeCsrSignerBundle(), ...cliArgs];
}

/** The alt's node flags: the deployed ones, then BENCH_ALT_NODE_FLAGS. */
export function alternativeCsrSignerNodeFlags(): string[] {
  return [...deployedNodeFlags(), ...(process.env.BENCH_ALT_NODE_FLAGS ?? "").split(" ").filter(Boolean)];
}

/**
 * The alt's bundle, checked (the benchmark asks before it starts anything): BENCH_ALT_BUNDLE, or the
 * work tree's. The alt is always a bundle: under BENCH_CONTROLLER_RUNTIME=tsx it would not compare
 * like with like.
 */
export function alternativeCsrSignerBundle(): string {
  if (controllerRuntime !== "bundle")
    throw new Error("csr-signer-alt runs a bundle: it cannot be compared with BENCH_CONTROLLER_RUNTIME=tsx");
  const bundle = process.env.BENCH_ALT_BUNDLE || bundlePath;
  if (process.env.BENCH_ALT_BUNDLE && !existsSync(bundle))
    throw new Error(`BENCH_ALT_BUNDLE ${bundle} does not exist`);
  return bundle;
}

let bundleBuilt = false;

/** Builds dist/csr-signer.mjs from the work tree (once per benchmark process), so the bundle is current. */
export function ensureBundle(): void {
  if (controllerRuntime !== "bundle" || bundleBuilt) return;
  execFileSync(process.execPath, [join(repositoryRoot, "hack", "bundle.mjs")], { stdio: "inherit" });
  if (!existsSync(bundlePath)) throw new Error(`hack/bundle.mjs did not write ${bundlePath}`);
  bundleBuilt = true;
}

/**
 * node's arguments for `csr-signer <cliArgs...>`, in the runtime chosen above, with the deployed node
 * flags, then BENCH_NODE_FLAGS, then `benchFlags` (the measuring preload).
 */
export function csrSignerNodeArgs(cliArgs: string[], benchFlags: string[] = []): string[] {
  ensureBundle();
  const nodeFlags = [...controllerNodeFlags(), ...benchFlags];
  return controllerRuntime === "bundle"
    ? [...nodeFlags, bundlePath, ...cliArgs]
    : [...nodeFlags, "--import", "tsx", join(repositoryRoot, "src", "cli", "main.ts"), ...cliArgs];
}

/** One report of the child's memory (bench/heap-reporter.mjs), tagged with the latest /readyz answer. */
export interface ChildMemory {
  type: string;
  at: number;
  rss: number;
  /** Highest of the child's 100 ms RSS samples since start or the last resetPeak(). */
  peakRss: number;
  vmHwm?: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** The last /readyz answer (polled every 500 ms) was 200. */
  ready: boolean;
}

export interface MeasuredController {
  readonly child: ChildProcess;
  readonly probeAddress: string;
  readonly metricsAddress: string;
  /** Every "memory", "reset" and "gc" report so far, oldest first. */
  readonly samples: ChildMemory[];
  /** Resolves with the milliseconds from spawn until /readyz first answered 200. */
  ready(timeoutMs?: number): Promise<number>;
  /** A full GC in the child, then its figures. */
  collectGarbage(timeoutMs?: number): Promise<ChildMemory>;
  /** The peak and the kernel's VmHWM start again from the current RSS. */
  resetPeak(): Promise<ChildMemory>;
  /** SIGTERM (the CLI's graceful stop), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** A loopback port nobody listens on right now (the kernel's choice for port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function spawnMeasuredController(options: {
  kubeconfigPath: string;
  namespace: string;
  /** Where the controller's stderr (its JSON log) and stdout go. */
  logFile: string;
}): Promise<MeasuredController> {
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const probeAddress = `127.0.0.1:${await freePort()}`;
  const args = csrSignerNodeArgs(
    [
      "controller",
      `--kubeconfig=${options.kubeconfigPath}`,
      `--namespace=${options.namespace}`,
      "--leader-elect=false",
      `--metrics-address=${metricsAddress}`,
      `--probe-address=${probeAddress}`,
    ],
    ["--expose-gc", "--import", join(repositoryRoot, "bench", "heap-reporter.mjs")],
  );
  const log = openSync(options.logFile, "a");
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, args, { cwd: repositoryRoot, stdio: ["ignore", log, log, "ipc"] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const samples: ChildMemory[] = [];
  let ready = false;
  let readyAfterMs: number | undefined;
  const waiters = new Set<(message: ChildMemory) => void>();
  child.on("message", (message: Omit<ChildMemory, "ready">) => {
    const sample = { ...message, ready };
    samples.push(sample);
    for (const waiter of waiters) waiter(sample);
  });
  let stopped = false;
  void (async () => {
    while (!stopped && child.exitCode === null) {
      const status = await fetch(`http://${probeAddress}/readyz`, {
        signal: AbortSignal.timeout(2_000),
      }).then(
        (response) => response.status,
        () => 0, // not listening yet, or busy: not ready
      );
      ready = status === 200;
      if (ready && readyAfterMs === undefined) readyAfterMs = performance.now() - spawnedAt;
      await delay(readyAfterMs === undefined ? 50 : 500);
    }
  })();
  const reply = (type: string, command: string, timeoutMs: number): Promise<ChildMemory> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`controller child: no "${type}" report within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (sample: ChildMemory): void => {
        if (sample.type !== type) return;
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(sample);
      };
      waiters.add(waiter);
      child.send(command);
    });
  return {
    child,
    probeAddress,
    metricsAddress,
    samples,
    ready: (timeoutMs = 180_000) =>
      waitFor(`controller child's /readyz (see ${options.logFile})`, async () => readyAfterMs, timeoutMs, {
        giveUpIf: () =>
          child.exitCode !== null || child.signalCode !== null
            ? `controller child exited (${child.exitCode ?? child.signalCode})`
            : undefined,
      }),
    collectGarbage: (timeoutMs = 15_000) => reply("gc", "gc", timeoutMs),
    resetPeak: () => reply("reset", "reset", 15_000),
    async stop() {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The one "settled RSS" rule of the memory measurements: at least 5 s, then until the reports of the
 * last 3 s are within 2 % of each other; at most 45 s. Says whether it settled.
 */
export async function waitForSettledRss(samples: readonly ChildMemory[]): Promise<boolean> {
  const started = performance.now();
  for (;;) {
    await delay(500);
    const waited = performance.now() - started;
    if (waited >= 45_000) return false;
    if (waited < 5_000) continue;
    const now = Date.now();
    const window = samples.filter((sample) => sample.at >= now - 3_000).map((sample) => sample.rss);
    if (window.length >= 5 && (Math.max(...window) - Math.min(...window)) / Math.max(...window) < 0.02)
      return true;
  }
}

/**
 * What every phase of `make bench-controller` shares: the knobs, the bench Signer's names, progress
 * output, number formatting, bounded concurrency with retries, child-process bookkeeping, and reading
 * back what the controller wrote (Events, warnings). See bench/controller.bench.ts for the phases.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { CertificatesV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { defaultWorkers } from "../../src/cli/controller-command.js";
import { apiErrorCode } from "../../src/kube/client.js";
import { repositoryRoot } from "../../test/support/testbin.js";
import { delay, waitFor } from "../../test/support/wait.js";

/** A knob that must be a whole number of at least 1 (a typo must not skip a phase without a word). */
function positiveWhole(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number of at least 1`);
  return value;
}

export const throughputCsrs = Number(process.env.BENCH_CSRS ?? 1000);
export const throughputInFlight = 20;
/** CSR workers of every csr-signer the benchmark runs: the CLI's default unless BENCH_WORKERS says otherwise. */
export const benchWorkers = Number(process.env.BENCH_WORKERS ?? defaultWorkers);
export const cacheCsrs = Number(process.env.BENCH_CACHE_CSRS ?? 10_000);
export const cacheInFlight = 50;
export const qpsModes = (process.env.BENCH_QPS_MODES ?? "100,0").split(",").map(Number);
export const runPeer = process.env.BENCH_PEER !== "0";
/** Interleaved rounds of the separate-process comparison (every contender once per round); the report gives their medians. */
export const peerRounds = positiveWhole("BENCH_PEER_ROUNDS", 3);
/**
 * Certificates each signer process issues before its measured ones: a fresh Node process compiles
 * its hot code and grows its heap while it serves the first several hundred (V8's optimising
 * compilers and concurrent marking run on worker threads and count as its CPU), which
 * kube-controller-manager, compiled ahead of time, does not pay. 1,000: with 200, csr-signer's CPU
 * per certificate over the next 1,000 was 1.06 ms (kube-controller-manager's 0.87), with 1,000 it
 * was 0.90 ms (0.85), and over 3,000 after 200 warm-up 0.89 ms (0.84) (BENCHMARKS.md, seventh pass). The start-up cost is reported apart (CPU since the process started).
 */
export const peerWarmUpCsrs = positiveWhole("BENCH_WARM_UP", 1000);
/**
 * Who runs in the comparison (csr-signer and kube-controller-manager by default). "csr-signer-alt" is
 * a second csr-signer, for A/B measurements of a change in the same run: the bundle
 * BENCH_ALT_BUNDLE (e.g. built from another commit by `node hack/bundle.mjs` in a worktree; the work
 * tree's own by default) with the deployed node flags, then BENCH_ALT_NODE_FLAGS instead of BENCH_NODE_FLAGS.
 * "node-floor" is the least a Node signer does per certificate (node-floor.ts), for scale.
 */
export const contenders = (process.env.BENCH_CONTENDERS ?? "csr-signer,kube-controller-manager")
  .split(",")
  .map((name) => name.trim())
  .filter((name): name is "csr-signer" | "csr-signer-alt" | "kube-controller-manager" | "node-floor" => {
    const known = ["csr-signer", "csr-signer-alt", "kube-controller-manager", "node-floor"];
    // A typo must not drop a contender without a word (see positiveWhole).
    if (!known.includes(name)) throw new Error(`BENCH_CONTENDERS: unknown "${name}" (${known.join(", ")})`);
    return true;
  });
if (
  !contenders.includes("csr-signer-alt") &&
  (process.env.BENCH_ALT_BUNDLE || process.env.BENCH_ALT_NODE_FLAGS)
)
  throw new Error("BENCH_ALT_BUNDLE and BENCH_ALT_NODE_FLAGS need csr-signer-alt in BENCH_CONTENDERS");
/** Which phases run (all by default): throughput, pcr (pod certificates), peer, rss (memory). */
export const phases = new Set((process.env.BENCH_PHASES ?? "throughput,pcr,peer,rss").split(","));
export const issueTimeoutMs = 150_000;
/** istiod gives up on a CSR after this long (its default CSR signing deadline). */
export const istiodDeadlineMs = 60_000;
export const signerName = "bench.csr-signer.test/foo";
export const signerObjectName = "bench-foo";
export const caSecretName = "bench-foo-cacerts";
export const foreignSignerName = "other.csr-signer.test/bar";

/** The source measured: `git describe --dirty` of the work tree (or $BENCH_REVISION for an exported tree). */
export function sourceRevision(): string {
  if (process.env.BENCH_REVISION) return process.env.BENCH_REVISION;
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], {
      cwd: repositoryRoot,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

export const benchStarted = performance.now();
export function progress(message: string): void {
  const seconds = ((performance.now() - benchStarted) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds} s] ${message}\n`);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export const ms = (value: number): string =>
  Number.isNaN(value) ? "n/a" : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(0)} ms`;
export const mib = (bytes: number | undefined): string =>
  bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Runs task(0..count-1) with at most `inFlight` running at once. */
export async function runBounded(
  count: number,
  inFlight: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

/** Retries a request on throttling and transient server errors (istiod's client-go would too). */
export async function withRetries<T>(request: () => Promise<T>, counter: { retries: number }): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      const code = apiErrorCode(error);
      const transient = code === 429 || code === 500 || code === 503 || code === 504 || code === undefined;
      if (!transient || attempt >= 5) throw error;
      counter.retries++;
      await delay(100 * attempt);
    }
  }
}

/** Child processes still running; killed when the benchmark exits, however it exits. */
export const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

/** Counts of the controller's warn/error log messages (message text, first 100 characters). */
export function warningCounts(lines: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    for (const part of line.split("\n")) {
      if (!part.trim()) continue;
      try {
        const entry = JSON.parse(part) as { level?: string; msg?: string; error?: unknown };
        if (entry.level !== "warn" && entry.level !== "error") continue;
        const key = `${entry.level}: ${entry.msg}${entry.error ? ` (${String(JSON.stringify(entry.error)).slice(0, 100)})` : ""}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      } catch {
        continue;
      }
    }
  }
  return counts;
}

export async function deleteAllCsrsAndEvents(admin: KubeConfig): Promise<void> {
  const certificates = admin.makeApiClient(CertificatesV1Api);
  await certificates.deleteCollectionCertificateSigningRequest({});
  await admin.makeApiClient(CoreV1Api).deleteCollectionNamespacedEvent({ namespace: "default" });
  await waitFor(
    "no CSR left after deletecollection",
    async () =>
      (await certificates.listCertificateSigningRequest({ limit: 1 })).items.length === 0 ? true : undefined,
    60_000,
    { intervalMs: 100 },
  );
}

export async function countEvents(admin: KubeConfig): Promise<Record<string, number>> {
  const list = await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: "default" });
  const counts: Record<string, number> = {};
  for (const event of list.items) counts[event.reason ?? ""] = (counts[event.reason ?? ""] ?? 0) + 1;
  return counts;
}

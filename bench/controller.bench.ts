/**
 * make bench-controller: the whole controller against a real kube-apiserver + etcd on this machine.
 *
 * 1. Throughput and latency: 1,000 Istio-shaped CSRs (ECDSA P-256, O="", one SPIFFE URI SAN, the four
 *    Istio usages, expirationSeconds 86400) created and then approved through /approval as istiod does
 *    (impersonated istio-system/istiod), 20 in flight, against ONE in-process controller with 4 workers.
 *    Latency per CSR = client clock right before create -> status.certificate seen on a WATCH of CSRs.
 *    Run twice: with the CLI's client rate limit (--kube-api-qps 50, --kube-api-burst 100, what a
 *    deployed controller has) and without any client rate limit (what the code itself can do).
 * 2. Memory: the controller alone in a child process (bench/rss-child.ts, configured as the CLI), once
 *    with an empty CSR cache, once with 10,000 unapproved Istio-shaped CSRs of its signer in the API
 *    server; RSS sampled every 100 ms, plus the kernel's VmHWM and heapUsed before and after a full GC.
 *    With the 10,000 pending, one more CSR is created and approved to see how fast it is served.
 * 3. The baseline: kube-controller-manager's own CSR signer (`--controllers=csrsigning`, 5 workers, the
 *    kubernetes.io/kube-apiserver-client signer with the same CA) on the same control plane, fed the same
 *    requests the same way (only the usages are the three that signer accepts), with the same 50 QPS /
 *    burst 100 client limit and with the limit raised out of the way (it cannot be switched off).
 *    Needs `make testbin-controller-manager` (bench-controller depends on it); skipped when BENCH_PEER=0.
 * Prints a Markdown section for BENCHMARKS.md on stdout; progress goes to stderr.
 * Knobs (for quick runs): BENCH_CSRS (1000), BENCH_CACHE_CSRS (10000), BENCH_QPS_MODES ("50,0"),
 * BENCH_PEER (1).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import {
  CertificatesV1Api,
  CoreV1Api,
  VersionApi,
  Watch,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import { apiErrorCode, type ConnectionReusingKubeConfig } from "../src/kube/client.js";
import { startControlPlane, type ControlPlane } from "../test/support/control-plane.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  installSignerManifests,
  startController,
  waitForSignerCondition,
  type RunningController,
} from "../test/support/controller.js";
import {
  asServiceAccount,
  grantSignerVerbs,
  impersonatingKubeConfig,
  serviceAccountIdentity,
  serviceAccountSubject,
} from "../test/support/identities.js";
import { buildTestCertificateRequest, makeTestCertificateAuthority, testKey } from "../test/support/pki.js";

const throughputCsrs = Number(process.env.BENCH_CSRS ?? 1000);
const throughputInFlight = 20;
const cacheCsrs = Number(process.env.BENCH_CACHE_CSRS ?? 10_000);
const cacheInFlight = 50;
const qpsModes = (process.env.BENCH_QPS_MODES ?? "50,0").split(",").map(Number);
const runPeer = process.env.BENCH_PEER !== "0";
const distinctKeys = 50;
const issueTimeoutMs = 150_000;
/** istiod gives up on a CSR after this long (its default CSR signing deadline). */
const istiodDeadlineMs = 60_000;
const signerName = "bench.csr-signer.test/foo";
const signerObjectName = "bench-foo";
const caSecretName = "bench-foo-cacerts";
const istioUsages = ["digital signature", "key encipherment", "server auth", "client auth"];
const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const repositoryRoot = join(import.meta.dirname, "..");

/** The source measured: `git describe --dirty` of the work tree (or $BENCH_REVISION for an exported tree). */
function sourceRevision(): string {
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

const benchStarted = performance.now();
function progress(message: string): void {
  const seconds = ((performance.now() - benchStarted) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds} s] ${message}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Small statistics helpers.

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const ms = (value: number): string =>
  Number.isNaN(value) ? "n/a" : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(0)} ms`;
const mib = (bytes: number | undefined): string =>
  bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Runs task(0..count-1) with at most `inFlight` running at once. */
async function runBounded(
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
async function withRetries<T>(request: () => Promise<T>, counter: { retries: number }): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      const code = apiErrorCode(error);
      const transient = code === 429 || code === 500 || code === 503 || code === 504 || code === undefined;
      if (!transient || attempt >= 5) throw error;
      counter.retries++;
      await sleep(100 * attempt);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// CPU accounting per process (this process, kube-apiserver, etcd), from /proc.

const clockTicksPerSecond = 100; // USER_HZ on Linux

interface CpuSnapshot {
  self: NodeJS.CpuUsage;
  others: Map<string, number>; // process name -> CPU seconds
}

function cpuSnapshot(controlPlane: ControlPlane): CpuSnapshot {
  const others = new Map<string, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (!commandLine.includes(controlPlane.dir)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const name = command === "MainThread" ? "node" : command; // Node names its main thread
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const seconds = (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond; // utime + stime
      others.set(name, (others.get(name) ?? 0) + seconds);
    } catch {
      continue; // gone meanwhile
    }
  }
  return { self: process.cpuUsage(), others };
}

function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const self = process.cpuUsage(before.self);
  const spent: Record<string, number> = { bench: (self.user + self.system) / 1e6 };
  for (const [name, seconds] of after.others) spent[name] = seconds - (before.others.get(name) ?? 0);
  return spent;
}

// ---------------------------------------------------------------------------------------------------------
// Istio-shaped requests and istiod's two calls.

const keys = Array.from({ length: distinctKeys }, () => testKey("ecdsa-p256", true));

function istioRequestPem(index: number): string {
  return buildTestCertificateRequest({
    key: keys[index % distinctKeys]!,
    subject: [{ type: "O", value: "" }],
    subjectAltNames: { uri: [`spiffe://cluster.local/ns/foo/sa/sa-${index}`] },
  });
}

function csrBody(name: string, requestPem: string, forSigner = signerName): V1CertificateSigningRequest {
  return {
    metadata: { name },
    spec: {
      signerName: forSigner,
      request: Buffer.from(requestPem).toString("base64"),
      usages: istioUsages,
      expirationSeconds: 86400,
    },
  };
}

/** istiod approves with the object create returned (pkg/kube/csr.go: create, then UpdateApproval). */
async function approve(certificates: CertificatesV1Api, created: V1CertificateSigningRequest): Promise<void> {
  const name = created.metadata!.name!;
  let csr = created;
  for (let attempt = 1; ; attempt++) {
    csr.status = {
      ...csr.status,
      conditions: [
        ...(csr.status?.conditions ?? []),
        {
          type: "Approved",
          status: "True",
          reason: "IstiodApproved",
          message: `CSR (${name}) is approved by istiod`,
          lastUpdateTime: new Date(),
        },
      ],
    };
    try {
      await certificates.replaceCertificateSigningRequestApproval({ name, body: csr });
      return;
    } catch (error) {
      if (apiErrorCode(error) !== 409 || attempt >= 5) throw error;
      csr = await certificates.readCertificateSigningRequest({ name });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Watching CSRs for status.certificate (not polling): resumes from the last resourceVersion when a watch
// ends, relists when it cannot.

interface IssuanceWatch {
  issuedAt: Map<string, number>;
  failed: Map<string, string>;
  restarts: number;
  stop(): void;
  /** Resolves when every name in `names` is issued or failed, or after timeoutMs. */
  waitFor(names: string[], timeoutMs: number): Promise<boolean>;
}

async function watchIssuance(admin: KubeConfig, namePrefix: string): Promise<IssuanceWatch> {
  const certificates = admin.makeApiClient(CertificatesV1Api);
  const issuedAt = new Map<string, number>();
  const failed = new Map<string, string>();
  const listeners = new Set<() => void>();
  let stopped = false;
  let abort: AbortController | undefined;
  let resourceVersion =
    (await certificates.listCertificateSigningRequest({ limit: 1 })).metadata?.resourceVersion ?? "";
  const observe = (csr: V1CertificateSigningRequest): void => {
    const name = csr.metadata?.name;
    if (!name?.startsWith(namePrefix) || issuedAt.has(name) || failed.has(name)) return;
    const failure = csr.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
    if (csr.status?.certificate) issuedAt.set(name, performance.now());
    else if (failure) failed.set(name, `${failure.reason}: ${failure.message}`);
    else return;
    for (const listener of listeners) listener();
  };
  const handle: IssuanceWatch = {
    issuedAt,
    failed,
    restarts: 0,
    stop: () => {
      stopped = true;
      abort?.abort();
    },
    waitFor: (names, timeoutMs) =>
      new Promise((resolve) => {
        const check = (): void => {
          if (names.every((name) => issuedAt.has(name) || failed.has(name))) finish(true);
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        const finish = (done: boolean): void => {
          clearTimeout(timer);
          listeners.delete(check);
          resolve(done);
        };
        listeners.add(check);
        check();
      }),
  };
  let established!: () => void;
  const firstWatch = new Promise<void>((resolve) => (established = resolve));
  const watchOnce = (): Promise<"ended" | "relist"> =>
    new Promise((resolve) => {
      let gone = false;
      new Watch(admin)
        .watch(
          csrPath,
          { resourceVersion, allowWatchBookmarks: true },
          (type: string, object: V1CertificateSigningRequest & { code?: number }) => {
            if (type === "ERROR") {
              gone = true;
              abort?.abort();
              return;
            }
            if (object.metadata?.resourceVersion) resourceVersion = object.metadata.resourceVersion;
            if (type === "ADDED" || type === "MODIFIED") observe(object);
          },
          (error: unknown) => {
            const name = (error as Error | null)?.name;
            resolve(gone || (error && name !== "AbortError" && name !== "TimeoutError") ? "relist" : "ended");
          },
        )
        .then(
          (controller) => {
            abort = controller;
            established();
            if (stopped) controller.abort();
          },
          () => resolve("relist"),
        );
    });
  void (async () => {
    while (!stopped) {
      const outcome = await watchOnce();
      if (stopped) return;
      handle.restarts++;
      if (outcome === "relist") {
        try {
          await sleep(200);
          const list = await certificates.listCertificateSigningRequest();
          for (const csr of list.items) observe(csr);
          resourceVersion = list.metadata?.resourceVersion ?? "";
        } catch (error) {
          progress(`CSR watch: relist failed: ${String(error)}`);
        }
      }
    }
  })();
  await firstWatch;
  return handle;
}

// ---------------------------------------------------------------------------------------------------------
// Phase 1: throughput and latency with an in-process controller.

interface ThroughputResult {
  label: string;
  qps: number;
  issued: number;
  failed: number;
  complete: boolean;
  submitMs: number;
  firstCreateToLastIssuedMs: number;
  perSecond: number;
  createToIssued: number[];
  approvedToIssued: number[];
  missedDeadline: number;
  controllerHistogram: { count: number; mean: number; p50: number; p90: number; p99: number };
  reconcile: { errors: number; retries: number; perResult: Record<string, number>; meanMs: number };
  clientRetries: number;
  cpu: Record<string, number>;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  warnings: Map<string, number>;
  watchRestarts: number;
  /** Events in default (where cluster-scoped CSRs' Events go) by reason, after the run. */
  events: Record<string, number>;
}

interface PromValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** histogram_quantile-style estimate (linear within the bucket) from cumulative buckets. */
function histogramQuantile(buckets: { le: number; count: number }[], total: number, q: number): number {
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return previousLe;
      const inBucket = bucket.count - previousCount;
      return previousLe + (bucket.le - previousLe) * (inBucket === 0 ? 0 : (rank - previousCount) / inBucket);
    }
    previousLe = bucket.le;
    previousCount = bucket.count;
  }
  return previousLe;
}

async function controllerFigures(
  running: RunningController,
): Promise<Pick<ThroughputResult, "controllerHistogram" | "reconcile">> {
  const metrics = running.controller.metrics;
  const latency = (await metrics.issuanceLatency.get()).values as PromValue[];
  const ours = latency.filter((value) => value.labels.signer === signerName);
  const count = ours.find((value) => value.metricName?.endsWith("_count"))?.value ?? 0;
  const sum = ours.find((value) => value.metricName?.endsWith("_sum"))?.value ?? 0;
  const buckets = ours
    .filter((value) => value.metricName?.endsWith("_bucket"))
    .map((value) => ({
      le: value.labels.le === "+Inf" ? Infinity : Number(value.labels.le),
      count: value.value,
    }))
    .sort((a, b) => a.le - b.le);
  const perResult: Record<string, number> = {};
  for (const value of (await metrics.reconcileTotal.get()).values as PromValue[])
    perResult[String(value.labels.result)] = value.value;
  const errors = ((await metrics.reconcileErrors.get()).values as PromValue[]).reduce(
    (a, v) => a + v.value,
    0,
  );
  const retries = ((await metrics.queueRetries.get()).values as PromValue[])
    .filter((value) => value.labels.name === "certificatesigningrequest")
    .reduce((a, v) => a + v.value, 0);
  const reconcileTime = (await metrics.reconcileTime.get()).values as PromValue[];
  const reconcileSum = reconcileTime.find((value) => value.metricName?.endsWith("_sum"))?.value ?? 0;
  const reconcileCount = reconcileTime.find((value) => value.metricName?.endsWith("_count"))?.value ?? 0;
  return {
    controllerHistogram: {
      count,
      mean: count ? (sum / count) * 1000 : Number.NaN,
      p50: histogramQuantile(buckets, count, 0.5) * 1000,
      p90: histogramQuantile(buckets, count, 0.9) * 1000,
      p99: histogramQuantile(buckets, count, 0.99) * 1000,
    },
    reconcile: {
      errors,
      retries,
      perResult,
      meanMs: reconcileCount ? (reconcileSum / reconcileCount) * 1000 : Number.NaN,
    },
  };
}

/** Counts of the controller's warn/error log messages (message text, first 100 characters). */
function warningCounts(lines: string[]): Map<string, number> {
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

async function deleteAllCsrsAndEvents(admin: KubeConfig): Promise<void> {
  const certificates = admin.makeApiClient(CertificatesV1Api);
  await certificates.deleteCollectionCertificateSigningRequest({});
  await admin.makeApiClient(CoreV1Api).deleteCollectionNamespacedEvent({ namespace: "default" });
  for (let i = 0; i < 600; i++) {
    const list = await certificates.listCertificateSigningRequest({ limit: 1 });
    if (list.items.length === 0) return;
    await sleep(100);
  }
  throw new Error("CSRs still present 60 s after deletecollection");
}

async function throughputPhase(
  controlPlane: ControlPlane,
  admin: KubeConfig,
  istiod: KubeConfig,
  qps: number,
  runIndex: number,
): Promise<ThroughputResult> {
  const label = qps > 0 ? `client limit ${qps} QPS / burst ${qps * 2} (CLI default)` : "no client rate limit";
  const prefix = `bench-${runIndex}-`;
  const names = Array.from({ length: throughputCsrs }, (_, i) => `${prefix}${i}`);
  const requests = names.map((_, i) => istioRequestPem(i));
  // The harness's controller identity, but with the rate limit the CLI would set.
  const identity = serviceAccountIdentity(controllerNamespace, "csr-signer");
  const controllerKubeConfig = impersonatingKubeConfig(admin, identity.user, identity.groups);
  if (qps > 0) (controllerKubeConfig as ConnectionReusingKubeConfig).setRateLimit(qps, qps * 2);
  const running = await startController(controlPlane, [signerName], {
    workers: 4,
    leaderElection: false,
    kubeConfig: controllerKubeConfig,
  });
  await waitForSignerCondition(admin, signerObjectName, "Ready", "True");
  const watch = await watchIssuance(admin, prefix);
  const certificates = istiod.makeApiClient(CertificatesV1Api);
  const createdAt: number[] = [];
  const approvedAt: number[] = [];
  const counter = { retries: 0 };
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  progress(`throughput [${label}]: ${throughputCsrs} CSRs, ${throughputInFlight} in flight`);
  try {
    const cpuBefore = cpuSnapshot(controlPlane);
    loopDelay.enable();
    const firstCreate = performance.now();
    await runBounded(throughputCsrs, throughputInFlight, async (i) => {
      createdAt[i] = performance.now();
      const created = await withRetries(
        () => certificates.createCertificateSigningRequest({ body: csrBody(names[i]!, requests[i]!) }),
        counter,
      );
      await withRetries(() => approve(certificates, created), counter);
      approvedAt[i] = performance.now();
    });
    const submitMs = performance.now() - firstCreate;
    progress(`  submitted in ${ms(submitMs)}; waiting for the certificates`);
    const complete = await watch.waitFor(names, issueTimeoutMs);
    loopDelay.disable();
    const cpu = cpuSpent(cpuBefore, cpuSnapshot(controlPlane));
    const issuedTimes = names.map((name) => watch.issuedAt.get(name)).filter((t) => t !== undefined);
    const lastIssued = Math.max(...issuedTimes);
    const createToIssued: number[] = [];
    const approvedToIssued: number[] = [];
    names.forEach((name, i) => {
      const issued = watch.issuedAt.get(name);
      if (issued === undefined) return;
      createToIssued.push(issued - createdAt[i]!);
      approvedToIssued.push(issued - approvedAt[i]!);
    });
    createToIssued.sort((a, b) => a - b);
    approvedToIssued.sort((a, b) => a - b);
    const span = lastIssued - firstCreate;
    for (const [name, reason] of [...watch.failed].slice(0, 3)) progress(`  FAILED ${name}: ${reason}`);
    // The watch can see a certificate before the controller has its patch response and observes the
    // histogram: give it a moment to catch up.
    let figures = await controllerFigures(running);
    for (let i = 0; i < 40 && figures.controllerHistogram.count < issuedTimes.length; i++) {
      await sleep(50);
      figures = await controllerFigures(running);
    }
    await sleep(1_000); // Events are written after the status patch, fire-and-forget
    const events = await countEvents(admin);
    const result: ThroughputResult = {
      label,
      qps,
      issued: issuedTimes.length,
      failed: watch.failed.size,
      complete,
      submitMs,
      firstCreateToLastIssuedMs: span,
      perSecond: issuedTimes.length / (span / 1000),
      createToIssued,
      approvedToIssued,
      missedDeadline:
        createToIssued.filter((t) => t > istiodDeadlineMs).length + (throughputCsrs - issuedTimes.length),
      ...figures,
      clientRetries: counter.retries,
      cpu,
      eventLoopP99Ms: loopDelay.percentile(99) / 1e6,
      eventLoopMaxMs: loopDelay.max / 1e6,
      warnings: warningCounts(running.logs),
      watchRestarts: watch.restarts,
      events,
    };
    progress(
      `  issued ${result.issued}/${throughputCsrs} in ${ms(span)} (${result.perSecond.toFixed(1)}/s); ` +
        `p50 ${ms(percentile(createToIssued, 0.5))}, p99 ${ms(percentile(createToIssued, 0.99))}`,
    );
    return result;
  } finally {
    loopDelay.disable();
    watch.stop();
    await running.stop();
    await deleteAllCsrsAndEvents(admin);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase 3: the baseline, kube-controller-manager's own CSR signer on the same control plane.

/** The usages kubernetes.io/kube-apiserver-client accepts (KCM refuses server auth there). */
const peerUsages = ["digital signature", "key encipherment", "client auth"];
const peerSignerName = "kubernetes.io/kube-apiserver-client";

interface PeerResult {
  contender: Contender;
  label: string;
  qps: number;
  issued: number;
  failed: number;
  complete: boolean;
  perSecond: number;
  createToIssued: number[];
  missedDeadline: number;
  cpu: Record<string, number>;
}

/** The two signers compared on the same footing: each in its own process, fed by the same submitter. */
type Contender = "csr-signer" | "kube-controller-manager";

/** Where `make testbin-controller-manager` put kube-controller-manager, or undefined when it is not built. */
function kubeControllerManagerBinary(): string | undefined {
  const printed = execFileSync(join(repositoryRoot, "hack", "testbin", "build.sh"), ["--print-dir"], {
    encoding: "utf8",
  });
  const kubeBinDir = /^KUBE_BIN_DIR=(.*)$/m.exec(printed)?.[1]?.trim();
  if (!kubeBinDir) return undefined;
  const binary = join(kubeBinDir, "kube-controller-manager");
  return existsSync(binary) ? binary : undefined;
}

/** The same request as csrBody() but for KCM's kube-apiserver-client signer, with the usages it accepts. */
function peerCsrBody(name: string, requestPem: string): V1CertificateSigningRequest {
  const body = csrBody(name, requestPem, peerSignerName);
  return { ...body, spec: { ...body.spec!, usages: peerUsages } };
}

/** Starts `contender` as its own process group (admin kubeconfig, no leader election), logging to a file. */
function spawnContender(
  contender: Contender,
  controlPlane: ControlPlane,
  kcmBinary: string,
  caFiles: Record<string, string>,
  qps: number,
  folder: string,
): { child: ChildProcess; logFile: string } {
  const logFile = join(folder, `${contender}.log`);
  const log = openSync(logFile, "w");
  let command: string;
  let args: string[];
  if (contender === "kube-controller-manager") {
    writeFileSync(join(folder, "ca.crt"), caFiles["ca-cert.pem"]!);
    writeFileSync(join(folder, "ca.key"), caFiles["ca-key.pem"]!, { mode: 0o600 });
    command = kcmBinary;
    args = [
      `--kubeconfig=${controlPlane.kubeconfigPath}`,
      "--controllers=csrsigning",
      "--leader-elect=false",
      "--use-service-account-credentials=false",
      "--secure-port=0",
      `--kube-api-qps=${qps}`,
      `--kube-api-burst=${qps * 2}`,
      `--cluster-signing-kube-apiserver-client-cert-file=${join(folder, "ca.crt")}`,
      `--cluster-signing-kube-apiserver-client-key-file=${join(folder, "ca.key")}`,
      "--cluster-signing-duration=24h",
    ];
  } else {
    // The CLI as a deployment runs it (under tsx here; the image runs compiled JavaScript).
    command = process.execPath;
    args = [
      "--import",
      "tsx",
      join(repositoryRoot, "src", "cli", "main.ts"),
      "controller",
      `--kubeconfig=${controlPlane.kubeconfigPath}`,
      `--namespace=${controllerNamespace}`,
      "--leader-elect=false",
      "--workers=4",
      `--kube-api-qps=${qps}`,
      `--kube-api-burst=${qps * 2}`,
      "--metrics-address=",
      "--probe-address=",
      "--cleanup=false",
    ];
  }
  const child = spawn(command, args, { cwd: repositoryRoot, stdio: ["ignore", log, log], detached: true });
  liveChildren.add(child);
  closeSync(log);
  return { child, logFile };
}

async function separateProcessPhase(
  contender: Contender,
  controlPlane: ControlPlane,
  admin: KubeConfig,
  istiod: KubeConfig,
  kcmBinary: string,
  caFiles: Record<string, string>,
  qps: number,
  runIndex: number,
): Promise<PeerResult> {
  // KCM's client limit cannot be switched off; 5,000 QPS keeps it out of the way, for both.
  const effectiveQps = qps > 0 ? qps : 5_000;
  const label = qps > 0 ? `client limit ${qps} QPS / burst ${qps * 2}` : "limit raised to 5,000 QPS";
  const body = (name: string, requestPem: string): V1CertificateSigningRequest =>
    contender === "kube-controller-manager" ? peerCsrBody(name, requestPem) : csrBody(name, requestPem);
  const folder = mkdtempSync(join(scratch, `${contender}-`));
  const { child, logFile } = spawnContender(
    contender,
    controlPlane,
    kcmBinary,
    caFiles,
    effectiveQps,
    folder,
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const prefix = `${contender === "csr-signer" ? "own" : "peer"}-${runIndex}-`;
  const names = Array.from({ length: throughputCsrs }, (_, i) => `${prefix}${i}`);
  const requests = names.map((_, i) => istioRequestPem(i));
  const watch = await watchIssuance(admin, prefix);
  const certificates = istiod.makeApiClient(CertificatesV1Api);
  const createdAt: number[] = [];
  const counter = { retries: 0 };
  try {
    // Warm-up: ready once it has signed one request (caches synced, workers running).
    const warmUp = `${prefix}warm-up`;
    const warmUpCreated = await certificates.createCertificateSigningRequest({
      body: body(warmUp, istioRequestPem(999_998)),
    });
    await approve(certificates, warmUpCreated);
    if (!(await watch.waitFor([warmUp], 60_000)) || !watch.issuedAt.has(warmUp))
      throw new Error(
        `${contender} did not sign a warm-up CSR within 60 s (${watch.failed.get(warmUp) ?? "no outcome"}); see ${logFile}`,
      );
    progress(
      `separate process [${contender}, ${label}]: ${throughputCsrs} CSRs, ${throughputInFlight} in flight`,
    );
    const cpuBefore = cpuSnapshot(controlPlane);
    const firstCreate = performance.now();
    await runBounded(throughputCsrs, throughputInFlight, async (i) => {
      createdAt[i] = performance.now();
      const created = await withRetries(
        () => certificates.createCertificateSigningRequest({ body: body(names[i]!, requests[i]!) }),
        counter,
      );
      await withRetries(() => approve(certificates, created), counter);
    });
    const complete = await watch.waitFor(names, issueTimeoutMs);
    // Both command lines name the control plane's kubeconfig, so cpuSnapshot counts them
    // ("kube-controller" for KCM, "node" for csr-signer).
    const cpu = cpuSpent(cpuBefore, cpuSnapshot(controlPlane));
    const createToIssued: number[] = [];
    let lastIssued = firstCreate;
    names.forEach((name, i) => {
      const issued = watch.issuedAt.get(name);
      if (issued === undefined) return;
      createToIssued.push(issued - createdAt[i]!);
      lastIssued = Math.max(lastIssued, issued);
    });
    createToIssued.sort((a, b) => a - b);
    for (const [name, reason] of [...watch.failed].slice(0, 3)) progress(`  FAILED ${name}: ${reason}`);
    const result: PeerResult = {
      contender,
      label,
      qps,
      issued: createToIssued.length,
      failed: watch.failed.size - (watch.failed.has(warmUp) ? 1 : 0),
      complete,
      perSecond: createToIssued.length / ((lastIssued - firstCreate) / 1000),
      createToIssued,
      missedDeadline:
        createToIssued.filter((t) => t > istiodDeadlineMs).length + (throughputCsrs - createToIssued.length),
      cpu,
    };
    progress(
      `  issued ${result.issued}/${throughputCsrs} (${result.perSecond.toFixed(1)}/s); ` +
        `p50 ${ms(percentile(createToIssued, 0.5))}, p99 ${ms(percentile(createToIssued, 0.99))}`,
    );
    return result;
  } finally {
    watch.stop();
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await Promise.race([exited, sleep(5_000)]);
    liveChildren.delete(child);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await deleteAllCsrsAndEvents(admin);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase 2: memory of the controller alone, in a child process.

interface ChildMemory {
  type: string;
  at: number;
  rss: number;
  peakRss: number;
  vmHwm?: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  cachedCsrs: number;
  cachedOurs: number;
  ready: boolean;
}

interface ChildRun {
  label: string;
  readyMs: number;
  settleMs: number;
  stabilised: boolean;
  /** The last sample once RSS settled. */
  settled: ChildMemory;
  /** The last sample before the full GC (after the probe, when there is one). */
  end: ChildMemory;
  /** Highest 100 ms sample and the kernel's VmHWM over the child's whole life. */
  peakRss: number;
  vmHwm: number | undefined;
  afterGc: ChildMemory | undefined;
  /** 500 ms samples after the first ready /readyz in which the controller reported not ready. */
  notReadySamples: number;
  samplesAfterReady: number;
  probe?: { issuedMs: number | undefined; waitedMs: number };
  events?: Record<string, number>;
  warnings: Map<string, number>;
}

const probeWaitMs = Number(process.env.BENCH_PROBE_WAIT_MS ?? istiodDeadlineMs);

const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

async function runChild(
  label: string,
  controlPlane: ControlPlane,
  logFile: string,
  whileRunning?: () => Promise<Partial<ChildRun>>,
): Promise<ChildRun> {
  const spawnedAt = performance.now();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--expose-gc", join(repositoryRoot, "bench", "rss-child.ts")],
    {
      cwd: repositoryRoot,
      env: {
        ...process.env,
        BENCH_KUBECONFIG: controlPlane.kubeconfigPath,
        BENCH_SIGNER_NAME: signerName,
        BENCH_LOG_FILE: logFile,
      },
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  liveChildren.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const messages: ChildMemory[] = [];
  const listeners = new Set<(message: Record<string, unknown>) => void>();
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      process.stderr.write(`rss-child: ${line}\n`);
      return;
    }
    if (message.type === "memory" || message.type === "started" || message.type === "gc")
      messages.push(message as unknown as ChildMemory);
    for (const listener of listeners) listener(message);
  });
  const next = (type: string, timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`rss-child (${label}): no "${type}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (message: Record<string, unknown>): void => {
        if (message.type !== type) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(message);
      };
      listeners.add(listener);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`rss-child (${label}) exited with ${child.exitCode ?? child.signalCode}`));
      });
    });
  try {
    const listening = await next("listening", 60_000);
    const probe = String(listening.probe);
    const deadline = performance.now() + 180_000;
    for (;;) {
      const status = await fetch(`http://${probe}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
        (response) => response.status,
        () => 0,
      );
      if (status === 200) break;
      if (performance.now() > deadline) throw new Error(`rss-child (${label}): /readyz not ok after 180 s`);
      await sleep(50);
    }
    const readyAt = performance.now();
    const readyAtWallClock = Date.now();
    progress(
      `  [${label}] child ready (/readyz ok) ${ms(readyAt - spawnedAt)} after spawn; waiting for RSS to settle`,
    );
    // Settled: at least 5 s after ready, and the last 3 s of RSS within 2 % of each other (cap 45 s).
    let stabilised = false;
    while (performance.now() - readyAt < 45_000) {
      await sleep(500);
      if (performance.now() - readyAt < 5_000) continue;
      const now = Date.now();
      const window = messages.filter((message) => message.at >= now - 3_000).map((message) => message.rss);
      if (window.length >= 5 && (Math.max(...window) - Math.min(...window)) / Math.max(...window) < 0.02) {
        stabilised = true;
        break;
      }
    }
    const settleMs = performance.now() - readyAt;
    const settled = messages.at(-1)!;
    const extra = (await whileRunning?.()) ?? {};
    const end = messages.at(-1)!;
    child.stdin!.write("gc\n");
    const afterGc = (await next("gc", 15_000)) as unknown as ChildMemory;
    const afterReady = messages.filter(
      (message) => message.type === "memory" && message.at > readyAtWallClock,
    );
    return {
      label,
      readyMs: readyAt - spawnedAt,
      settleMs,
      stabilised,
      settled,
      end,
      peakRss: Math.max(...messages.map((message) => message.peakRss)),
      vmHwm: afterGc.vmHwm,
      afterGc,
      notReadySamples: afterReady.filter((message) => !message.ready).length,
      samplesAfterReady: afterReady.length,
      warnings: new Map(),
      ...extra,
    };
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    liveChildren.delete(child);
  }
}

function logWarnings(logFile: string): Map<string, number> {
  try {
    return warningCounts(readFileSync(logFile, "utf8").split("\n"));
  } catch {
    return new Map();
  }
}

async function countEvents(admin: KubeConfig): Promise<Record<string, number>> {
  const list = await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: "default" });
  const counts: Record<string, number> = {};
  for (const event of list.items) counts[event.reason ?? ""] = (counts[event.reason ?? ""] ?? 0) + 1;
  return counts;
}

/** RSS of a bare Node that imported @kubernetes/client-node (after a full GC), with or without tsx. */
async function importCostRss(withTsx: boolean): Promise<number | undefined> {
  const script =
    'await import("@kubernetes/client-node"); globalThis.gc(); console.log(process.memoryUsage().rss);';
  const child = spawn(
    process.execPath,
    [...(withTsx ? ["--import", "tsx"] : []), "--expose-gc", "--input-type=module", "-e", script],
    { cwd: repositoryRoot, stdio: ["ignore", "pipe", "inherit"] },
  );
  liveChildren.add(child);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  liveChildren.delete(child);
  const rss = Number(output.trim());
  return Number.isFinite(rss) && rss > 0 ? rss : undefined;
}

/** Creates `count` unapproved Istio-shaped CSRs as istiod, `cacheInFlight` at a time; returns the duration. */
async function createPendingCsrs(
  istiod: KubeConfig,
  prefix: string,
  forSigner: string,
  count: number,
): Promise<number> {
  const certificates = istiod.makeApiClient(CertificatesV1Api);
  const requests = Array.from({ length: count }, (_, i) => istioRequestPem(i));
  const counter = { retries: 0 };
  const started = performance.now();
  await runBounded(count, cacheInFlight, async (i) => {
    await withRetries(
      () =>
        certificates.createCertificateSigningRequest({
          body: csrBody(`${prefix}${i}`, requests[i]!, forSigner),
        }),
      counter,
    );
  });
  const elapsed = performance.now() - started;
  progress(
    `  ${count} CSRs for ${forSigner} created in ${ms(elapsed)} (${(count / (elapsed / 1000)).toFixed(0)}/s)`,
  );
  return elapsed;
}

// ---------------------------------------------------------------------------------------------------------
// Main.

const foreignSignerName = "other.csr-signer.test/bar";
let controlPlane: ControlPlane | undefined;
const scratch = mkdtempSync(join(tmpdir(), "csr-signer-bench-"));
let exitCode = 0;
try {
  progress("starting etcd + kube-apiserver");
  controlPlane = await startControlPlane();
  progress(`control plane ready in ${ms(controlPlane.startupMs)}`);
  const admin = controlPlane.kubeConfig();
  const apiServerVersion = (await admin.makeApiClient(VersionApi).getCode()).gitVersion;
  await installSignerManifests(controlPlane);
  const ca = await makeTestCertificateAuthority({ name: "bench", rootKeyType: "ecdsa-p256" });
  await createCaSecret(admin, caSecretName, ca.files);
  await createSigner(admin, signerObjectName, {
    signerName,
    certificateAuthority: { secretName: caSecretName },
    policy: {
      requesters: { registrationAuthorities: ["istio-system/istiod"] },
      tenants: { namespaces: ["foo"] },
      spiffe: { trustDomain: "cluster.local" },
    },
  });
  await grantSignerVerbs(admin, {
    subject: serviceAccountSubject("istio-system", "istiod"),
    signerNames: [signerName, peerSignerName],
    verbs: ["approve"],
  });
  const istiod = asServiceAccount(admin, "istio-system", "istiod");

  // Phase 1.
  const throughput: ThroughputResult[] = [];
  for (const [index, qps] of qpsModes.entries())
    throughput.push(await throughputPhase(controlPlane, admin, istiod, qps, index));

  // Phase 3 (run here, next to phase 1, so all see the same etcd): the baseline, on the same footing.
  const peer: PeerResult[] = [];
  const peerBinary = runPeer ? kubeControllerManagerBinary() : undefined;
  if (runPeer && peerBinary === undefined)
    throw new Error(
      "kube-controller-manager is not built: run `make testbin-controller-manager` (or BENCH_PEER=0)",
    );
  if (peerBinary !== undefined)
    for (const [index, qps] of qpsModes.entries())
      for (const contender of ["csr-signer", "kube-controller-manager"] as const)
        peer.push(
          await separateProcessPhase(
            contender,
            controlPlane,
            admin,
            istiod,
            peerBinary,
            ca.files,
            qps,
            index,
          ),
        );

  // Phase 2: baseline; 10,000 CSRs of a signer it does not serve (cache only); 10,000 pending CSRs of its own.
  const importCost = { plain: await importCostRss(false), tsx: await importCostRss(true) };
  progress("memory: baseline child (no CSRs in the API server)");
  const baselineLog = join(scratch, "baseline.log");
  const baseline = await runChild("baseline, no CSRs", controlPlane, baselineLog);
  baseline.warnings = logWarnings(baselineLog);

  progress(`memory: ${cacheCsrs} CSRs of a signer the controller does not serve`);
  const foreignCreateMs = await createPendingCsrs(istiod, "foreign-", foreignSignerName, cacheCsrs);
  const sample = (await admin.makeApiClient(CertificatesV1Api).listCertificateSigningRequest({ limit: 1 }))
    .items[0];
  const objectJsonBytes = JSON.stringify(sample ?? {}).length;
  const requestPemBytes = istioRequestPem(0).length;
  const foreignLog = join(scratch, "foreign.log");
  const foreign = await runChild(`${cacheCsrs} CSRs of another signer`, controlPlane, foreignLog);
  foreign.warnings = logWarnings(foreignLog);
  await deleteAllCsrsAndEvents(admin);

  progress(`memory: ${cacheCsrs} pending (unapproved) CSRs of its own signer`);
  await createPendingCsrs(istiod, "pending-", signerName, cacheCsrs);
  const pendingLog = join(scratch, "pending.log");
  const pending = await runChild(
    `${cacheCsrs} pending CSRs of its signer`,
    controlPlane,
    pendingLog,
    async () => {
      // One fresh istiod CSR (create + approve) while the pending ones are cached: how long until it is served?
      const watch = await watchIssuance(admin, "probe-");
      const certificates = istiod.makeApiClient(CertificatesV1Api);
      try {
        progress(`  probe: one fresh CSR created and approved as istiod; waiting up to ${ms(probeWaitMs)}`);
        const started = performance.now();
        const created = await certificates.createCertificateSigningRequest({
          body: csrBody("probe-0", istioRequestPem(999_999)),
        });
        await approve(certificates, created);
        await watch.waitFor(["probe-0"], probeWaitMs);
        const issued = watch.issuedAt.get("probe-0");
        const waitedMs = performance.now() - started;
        progress(`  probe: ${issued === undefined ? "not issued" : `issued after ${ms(issued - started)}`}`);
        return {
          probe: { issuedMs: issued === undefined ? undefined : issued - started, waitedMs },
          events: await countEvents(admin),
        };
      } finally {
        watch.stop();
      }
    },
  );
  pending.warnings = logWarnings(pendingLog);

  // ---------------------------------------------------------------------------------------------------
  // Report.
  const totalMs = performance.now() - benchStarted;
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  const thousands = (value: number): string => value.toLocaleString("en-US");
  const out: string[] = [];
  out.push("### Controller on a real API server (`make bench-controller`)", "");
  out.push(
    `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ` +
      `kube-apiserver ${apiServerVersion} + etcd 3.6 (--unsafe-no-fsync) on the same machine; csr-signer ${sourceRevision()}. ` +
      `The submitter (acting as istiod), kube-apiserver, etcd and the controller all share these ` +
      `${cpus().length} cores, so the figures are lower bounds for a controller with a core of its own. ` +
      `Whole run: ${ms(totalMs)}.`,
    "",
  );
  out.push(
    `**Throughput and latency.** ${thousands(throughputCsrs)} Istio-shaped CSRs (ECDSA P-256 keys, O="", one SPIFFE URI SAN, ` +
      `the 4 Istio usages, expirationSeconds 86400; ECDSA P-256 CA), each created and then approved through ` +
      `/approval as istiod (impersonated), ${throughputInFlight} in flight, from the same process as the ` +
      `controller (one instance, 4 workers, no leader election). Latency: client clock right before create ` +
      `until status.certificate is seen on a watch of CSRs.`,
    "",
  );
  out.push(`| | ${throughput.map((r) => r.label).join(" | ")} |`);
  out.push(`|---|${throughput.map(() => "---").join("|")}|`);
  const row = (name: string, cell: (r: ThroughputResult) => string): void => {
    out.push(`| ${name} | ${throughput.map(cell).join(" | ")} |`);
  };
  row("issued / failed", (r) => `${r.issued} / ${r.failed}${r.complete ? "" : " (timed out)"}`);
  row("submission (create + approve all)", (r) => ms(r.submitMs));
  row("first create → last certificate", (r) => ms(r.firstCreateToLastIssuedMs));
  row("**sustained CSRs/s**", (r) => `**${r.perSecond.toFixed(1)}**`);
  row("**create → certificate p50 / p90 / p99 / max**", (r) =>
    [0.5, 0.9, 0.99, 1].map((p) => ms(percentile(r.createToIssued, p))).join(" / "),
  );
  row("create → certificate mean", (r) =>
    ms(r.createToIssued.reduce((a, b) => a + b, 0) / Math.max(1, r.createToIssued.length)),
  );
  row("approval acknowledged → certificate p50 / p99", (r) =>
    [0.5, 0.99].map((p) => ms(percentile(r.approvedToIssued, p))).join(" / "),
  );
  row(`over istiod's 60 s deadline`, (r) => String(r.missedDeadline));
  row(
    "controller's csr_signer_issuance_latency_seconds: count, mean, ~p50 / ~p90 / ~p99 (bucket interpolation)",
    (r) =>
      `${r.controllerHistogram.count}, ${ms(r.controllerHistogram.mean)}, ${ms(r.controllerHistogram.p50)} / ` +
      `${ms(r.controllerHistogram.p90)} / ${ms(r.controllerHistogram.p99)}`,
  );
  row("mean reconcile time (controller_runtime_reconcile_time_seconds)", (r) => ms(r.reconcile.meanMs));
  row(
    "reconciles (result) / errors / queue retries",
    (r) =>
      `${Object.entries(r.reconcile.perResult)
        .map(([k, v]) => `${v} ${k}`)
        .join(", ")} / ${r.reconcile.errors} / ${r.reconcile.retries}`,
  );
  row("Events the controller wrote (by reason)", (r) =>
    Object.entries(r.events)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(", "),
  );
  row("CPU seconds: bench process (controller + submitter) / kube-apiserver / etcd", (r) =>
    [r.cpu.bench, r.cpu["kube-apiserver"], r.cpu.etcd].map((v) => (v ?? 0).toFixed(1)).join(" / "),
  );
  row(
    "event-loop delay in that process p99 / max",
    (r) => `${ms(r.eventLoopP99Ms)} / ${ms(r.eventLoopMaxMs)}`,
  );
  row("controller warnings/errors logged", (r) =>
    r.warnings.size === 0
      ? "none"
      : [...r.warnings].map(([message, count]) => `${count}× ${message.replaceAll("|", "\\|")}`).join("; "),
  );
  out.push("");

  if (peer.length > 0) {
    out.push(
      `**Baseline: kube-controller-manager's signer, on the same footing.** Each signer alone in its own ` +
        `process with the admin kubeconfig and no leader election: csr-signer as \`csr-signer controller\` runs ` +
        `(4 workers, under tsx) and kube-controller-manager ${apiServerVersion} with only \`--controllers=csrsigning\` ` +
        `(5 workers, hard-coded) signing for ${peerSignerName} with the same CA. The same submitter feeds each the ` +
        `same ${thousands(throughputCsrs)} requests (create, then approve as istiod, ${throughputInFlight} in flight; ` +
        `for kube-controller-manager the usages are the three its signer accepts), after one warm-up certificate. ` +
        `kube-controller-manager checks no policy and writes no Events. Its client limit cannot be switched off, so ` +
        `the unlimited run raises both to 5,000 QPS.`,
      "",
    );
    const columns = peer.map((r) => `${r.contender}, ${r.label}`);
    out.push(`| | ${columns.join(" | ")} |`);
    out.push(`|---|${columns.map(() => "---").join("|")}|`);
    const peerRow = (name: string, cell: (r: PeerResult) => string): void => {
      out.push(`| ${name} | ${peer.map(cell).join(" | ")} |`);
    };
    peerRow("issued / failed", (r) => `${r.issued} / ${r.failed}${r.complete ? "" : " (timed out)"}`);
    peerRow("**sustained CSRs/s**", (r) => `**${r.perSecond.toFixed(1)}**`);
    peerRow("**create → certificate p50 / p90 / p99 / max**", (r) =>
      [0.5, 0.9, 0.99, 1].map((p) => ms(percentile(r.createToIssued, p))).join(" / "),
    );
    peerRow(`over istiod's 60 s deadline`, (r) => String(r.missedDeadline));
    peerRow("CPU seconds: signer process / kube-apiserver / etcd", (r) =>
      [
        r.contender === "csr-signer" ? r.cpu.node : r.cpu["kube-controller"],
        r.cpu["kube-apiserver"],
        r.cpu.etcd,
      ]
        .map((v) => (v ?? 0).toFixed(1))
        .join(" / "),
    );
    out.push("");
    const ratios: string[] = [];
    for (const qps of qpsModes) {
      const ours = peer.find((r) => r.qps === qps && r.contender === "csr-signer");
      const theirs = peer.find((r) => r.qps === qps && r.contender === "kube-controller-manager");
      if (!ours || !theirs) continue;
      const p = (r: PeerResult, q: number): number => percentile(r.createToIssued, q);
      ratios.push(
        `${ours.label}: throughput ${(ours.perSecond / theirs.perSecond).toFixed(2)}x, ` +
          `p50 latency ${(p(ours, 0.5) / p(theirs, 0.5)).toFixed(2)}x, p99 latency ${(p(ours, 0.99) / p(theirs, 0.99)).toFixed(2)}x`,
      );
    }
    out.push(
      `**Ratio csr-signer / kube-controller-manager** (throughput: higher is better; latency: lower is better): ${ratios.join("; ")}.`,
      "",
    );
  }

  out.push(
    `**Memory.** The controller alone in a child process (bench/rss-child.ts, set up as \`csr-signer ` +
      `controller\` runs it: 4 workers, 50 QPS / burst 100, JSON log to a file; under tsx), RSS sampled every ` +
      `100 ms, plus the kernel's VmHWM. Three runs: no CSRs; ${thousands(cacheCsrs)} CSRs for a signer it does not serve ` +
      `(cached by its informer, never queued); ${thousands(cacheCsrs)} unapproved CSRs of its own signer (queued once, ` +
      `nothing signed). All Istio-shaped, created as istiod before the child starts (request PEM ` +
      `${requestPemBytes} bytes, ${objectJsonBytes} bytes of JSON per CSR object; ${ms(foreignCreateMs)} for ` +
      `${thousands(cacheCsrs)} creates at ${cacheInFlight} in flight).`,
    "",
  );
  out.push(
    "| | CSRs cached | spawn → /readyz | RSS settled | RSS at end | peak RSS (samples / VmHWM) | heapUsed settled | heapUsed after full GC |",
  );
  out.push("|---|---|---|---|---|---|---|---|");
  for (const run of [baseline, foreign, pending]) {
    out.push(
      `| ${run.label} | ${thousands(run.settled.cachedCsrs)} | ${ms(run.readyMs)} | ${mib(run.settled.rss)}` +
        `${run.stabilised ? "" : " (not settled)"} | ${mib(run.end.rss)} | ${mib(run.peakRss)} / ${mib(run.vmHwm)} | ` +
        `${mib(run.settled.heapUsed)} | ${mib(run.afterGc?.heapUsed)} |`,
    );
  }
  const perCsr = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined ? "n/a" : `${((a - b) / cacheCsrs / 1024).toFixed(1)} KiB`;
  for (const run of [foreign, pending]) {
    out.push(
      `| per CSR, ${run.label.replace(`${cacheCsrs} `, "")} − baseline | | | ${perCsr(run.settled.rss, baseline.settled.rss)} | ` +
        `${perCsr(run.end.rss, baseline.end.rss)} | ${perCsr(run.peakRss, baseline.peakRss)} / ${perCsr(run.vmHwm, baseline.vmHwm)} | ` +
        `${perCsr(run.settled.heapUsed, baseline.settled.heapUsed)} | ${perCsr(run.afterGc?.heapUsed, baseline.afterGc?.heapUsed)} |`,
    );
  }
  out.push("");
  const probe = pending.probe;
  const notReadyShare = (run: ChildRun): string =>
    `${((run.notReadySamples / Math.max(1, run.samplesAfterReady)) * 100).toFixed(0)} %`;
  out.push(
    `For scale: a bare Node that only imported @kubernetes/client-node has ${mib(importCost.plain)} RSS ` +
      `(${mib(importCost.tsx)} with tsx, as the child runs); per-CSR differences do not depend on it. ` +
      `With the ${thousands(cacheCsrs)} pending CSRs, the child wrote ${thousands(pending.events?.WaitingApproval ?? 0)} WaitingApproval ` +
      `Events in the ${ms(pending.settleMs + (probe?.waitedMs ?? 0))} after /readyz (the recorder's own budget, 5/s with repeats and ` +
      `overflow dropped, inside the 50 QPS limiter), reported not ready in ${notReadyShare(pending)} of the samples after its first ` +
      `ready, and a fresh CSR created and approved by istiod then ${probe?.issuedMs === undefined ? `got no certificate within ${ms(probe?.waitedMs ?? Number.NaN)}` : `got its certificate after ${ms(probe.issuedMs)}`}. ` +
      `Child warnings/errors: ${[baseline, foreign, pending].every((run) => run.warnings.size === 0) ? "none" : [baseline, foreign, pending].map((run) => `${run.label}: ${[...run.warnings].map(([m, c]) => `${c}× ${m}`).join("; ") || "none"}`).join("; ")}.`,
    "",
  );
  const primary = throughput[0]!;
  const unlimited = throughput.find((r) => r.qps === 0);
  const writesPerCertificate =
    (Object.values(primary.events).reduce((a, b) => a + b, 0) + primary.issued) / Math.max(1, primary.issued);
  const limitBound = primary.qps > 0 ? primary.qps / writesPerCertificate : Infinity;
  const serverCpu = (r: ThroughputResult): number => (r.cpu["kube-apiserver"] ?? 0) + (r.cpu.etcd ?? 0);
  const sentences = [
    `Interpretation: ${primary.qps > 0 ? `as deployed (${primary.qps} QPS client limit)` : "without a client rate limit"} one controller ` +
      `sustains ${primary.perSecond.toFixed(0)} CSRs/s, so a burst of ${thousands(throughputCsrs)} Istio CSRs is served within ` +
      `${ms(percentile(primary.createToIssued, 1))} (p99 ${ms(percentile(primary.createToIssued, 0.99))}; ` +
      `${primary.missedDeadline} over istiod's 60 s deadline).`,
  ];
  if (primary.perSecond >= 0.8 * limitBound)
    sentences.push(
      `That is the client rate limit at work: ${writesPerCertificate.toFixed(1)} API writes per certificate ` +
        `(status patch + Events) cap it at ${limitBound.toFixed(0)}/s, whatever the signing speed.`,
    );
  if (unlimited && unlimited !== primary)
    sentences.push(
      `Without the limit the same shared cores give ${unlimited.perSecond.toFixed(0)} CSRs/s at p99 ` +
        `${ms(percentile(unlimited.createToIssued, 0.99))}, kube-apiserver + etcd using ${serverCpu(unlimited).toFixed(1)} CPU-s ` +
        `against ${(unlimited.cpu.bench ?? 0).toFixed(1)} for controller + submitter.`,
    );
  sentences.push(
    `Each cached CSR costs about ${perCsr(foreign.settled.rss, baseline.settled.rss)} of RSS ` +
      `(${perCsr(foreign.afterGc?.heapUsed, baseline.afterGc?.heapUsed)} of live heap; ~` +
      `${((((foreign.settled.rss - baseline.settled.rss) / cacheCsrs) * 100_000) / 2 ** 20).toFixed(0)} MiB per 100,000 by extrapolation); ` +
      `pending CSRs of its own signer cost ${perCsr(pending.settled.rss, baseline.settled.rss)} each.`,
  );
  out.push(sentences.join(" "));
  console.log(out.join("\n"));
  console.log(
    `\nBENCH_JSON ${JSON.stringify({
      throughput: throughput.map((r) => ({
        label: r.label,
        perSecond: r.perSecond,
        p50: percentile(r.createToIssued, 0.5),
        p90: percentile(r.createToIssued, 0.9),
        p99: percentile(r.createToIssued, 0.99),
        max: percentile(r.createToIssued, 1),
        cpu: r.cpu,
        events: r.events,
        watchRestarts: r.watchRestarts,
        clientRetries: r.clientRetries,
      })),
      memory: [baseline, foreign, pending].map((r) => ({
        label: r.label,
        settledRss: r.settled.rss,
        endRss: r.end.rss,
        peakRss: r.peakRss,
        vmHwm: r.vmHwm,
        heapUsed: r.settled.heapUsed,
        heapUsedAfterGc: r.afterGc?.heapUsed,
        stabilised: r.stabilised,
        settleMs: r.settleMs,
        notReadySamples: r.notReadySamples,
        samplesAfterReady: r.samplesAfterReady,
        probe: r.probe,
        events: r.events,
      })),
      peer: peer.map((r) => ({
        contender: r.contender,
        label: r.label,
        perSecond: r.perSecond,
        p50: percentile(r.createToIssued, 0.5),
        p99: percentile(r.createToIssued, 0.99),
        max: percentile(r.createToIssued, 1),
        cpu: r.cpu,
      })),
      importCost,
      totalMs,
    })}`,
  );
} catch (error) {
  exitCode = 1;
  console.error(error);
} finally {
  for (const child of liveChildren) child.kill("SIGKILL");
  await controlPlane?.stop().catch((error: unknown) => console.error(`control plane stop: ${String(error)}`));
  rmSync(scratch, { recursive: true, force: true });
  progress("torn down");
}
process.exit(exitCode);

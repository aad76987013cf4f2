/**
 * Phase 1: throughput and latency with ONE controller in the benchmark's own process (the CLI's default workers, no
 * leader election, the harness's service-account identity), so that the controller's own histograms,
 * reconcile counters and event-loop delay can be read directly. It runs the TypeScript under tsx; the
 * comparison with kube-controller-manager (bench/controller/peer.ts) runs the deployed bundle.
 * Run once per client limit in BENCH_QPS_MODES (the CLI's 100 QPS / burst 200, and none).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { ConnectionReusingKubeConfig } from "../../src/kube/client.js";
import type { ControlPlane } from "../../test/support/control-plane.js";
import {
  controllerNamespace,
  startController,
  waitForSignerCondition,
  type RunningController,
} from "../../test/support/controller.js";
import { impersonatingKubeConfig, serviceAccountIdentity } from "../../test/support/identities.js";
import {
  benchWorkers,
  countEvents,
  deleteAllCsrsAndEvents,
  istiodDeadlineMs,
  issueTimeoutMs,
  ms,
  percentile,
  progress,
  runBounded,
  signerName,
  signerObjectName,
  throughputCsrs,
  throughputInFlight,
  warningCounts,
  withRetries,
} from "./common.js";
import { cpuSnapshot, cpuSpent } from "./cpu.js";
import { approve, csrBody, istioRequestPem, watchIssuance } from "./istio.js";
import { delay } from "../../test/support/wait.js";

export interface ThroughputResult {
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

export async function throughputPhase(
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
    workers: benchWorkers,
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
      await delay(50);
      figures = await controllerFigures(running);
    }
    await delay(1_000); // Events are written after the status patch, fire-and-forget
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

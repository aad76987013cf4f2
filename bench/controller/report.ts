/**
 * The Markdown section for BENCHMARKS.md (stdout) and one BENCH_JSON line with the raw figures, from
 * whichever phases ran.
 */
import { cpus, totalmem } from "node:os";
import {
  alternativeCsrSignerNodeFlags,
  controllerNodeFlags,
  controllerRuntimeDescription,
} from "../rss-child.js";
import { defaultWorkers } from "../../src/cli/controller-command.js";
import {
  benchWorkers,
  cacheCsrs,
  cacheInFlight,
  mib,
  ms,
  percentile,
  sourceRevision,
  throughputCsrs,
  throughputInFlight,
} from "./common.js";
import { peerSignerName, type PeerResult } from "./peer.js";
import { peerMethod, peerReport, signerCpuPerCertificateMs } from "./peer-report.js";
import { perfReport } from "./perf-window.js";
import type { ChildRun, MemoryResult } from "./rss.js";
import type { ThroughputResult } from "./throughput.js";

export interface BenchResults {
  apiServerVersion: string | undefined;
  totalMs: number;
  throughput: ThroughputResult[];
  peer: PeerResult[];
  memory: MemoryResult | undefined;
}

const perCsr = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined ? "n/a" : `${((a - b) / cacheCsrs / 1024).toFixed(1)} KiB`;

export function printReport({ apiServerVersion, totalMs, throughput, peer, memory }: BenchResults): void {
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
  if (throughput.length > 0) {
    out.push(
      `**Throughput and latency.** ${thousands(throughputCsrs)} Istio-shaped CSRs (ECDSA P-256 keys, O="", one SPIFFE URI SAN, ` +
        `the 4 Istio usages, expirationSeconds 86400; ECDSA P-256 CA), each created and then approved through ` +
        `/approval as istiod (impersonated), ${throughputInFlight} in flight, from the same process as the ` +
        `controller (one instance, ${benchWorkers} workers, no leader election; the TypeScript under tsx, so that its own ` +
        `histograms and event-loop delay can be read: the comparison below runs the deployed bundle). ` +
        `Latency: client clock right before create ` +
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
  }

  const alt = peer.some((r) => r.contender === "csr-signer-alt")
    ? ` csr-signer-alt, for an A/B comparison, runs the same command line from the bundle ` +
      `\`${process.env.BENCH_ALT_BUNDLE || "dist/csr-signer.mjs"}\`${process.env.BENCH_ALT_BUNDLE ? "" : " (the same bundle)"}, ` +
      `node flags \`${alternativeCsrSignerNodeFlags().join(" ")}\`.`
    : "";
  if (peer.length > 0)
    out.push(
      ...peerReport(
        peer,
        `**${peer.some((r) => r.contender === "kube-controller-manager") ? "Baseline: kube-controller-manager's signer, on the same footing." : "Separate processes, on the same footing."}** Each signer alone in its own ` +
          `process with the admin kubeconfig and no leader election: csr-signer as \`csr-signer controller\` runs ` +
          `(${benchWorkers} workers, ${controllerRuntimeDescription}${controllerNodeFlags().length > 0 ? `, node flags \`${controllerNodeFlags().join(" ")}\`` : ""}) and kube-controller-manager ${apiServerVersion} with only \`--controllers=csrsigning\` ` +
          `(5 workers, hard-coded) signing for ${peerSignerName} with the same CA. The same submitter feeds each the ` +
          `same ${thousands(throughputCsrs)} requests (create, then approve as istiod, ${throughputInFlight} in flight; ` +
          `for kube-controller-manager the usages are the three its signer accepts): ${peerMethod()}. ` +
          `kube-controller-manager checks no policy and writes no Events. Its client limit cannot be switched off, so ` +
          `the unlimited run raises both to 5,000 QPS. CPU is each process's utime + stime from /proc (all its ` +
          `threads), the same way for both: from 2 s after the warm-up certificates (the client limiters refilled) to the last certificate seen ` +
          `(per certificate: divided by the certificates issued), and for the signer also from its start (Node's ` +
          `start-up, module loading and compiling its hot code cost far more than Go's). The machine's own drift ` +
          `moves every process's CPU from one round to the next. Each CPU ratio is also given as the geometric ` +
          `mean of the rounds' ratios with a 95% interval, and once more with each signer's CPU over the ` +
          `submitter's (this process) in the same window: that cancels much of the drift, but it is close to CPU ` +
          `per second of the round, so it compares CPU per certificate only where the throughputs are equal.${alt}`,
      ),
      ...perfReport(peer, (r) => signerCpuPerCertificateMs(r) * 1000),
    );

  if (memory) {
    const { baseline, foreign, pending, importCost } = memory;
    out.push(
      `**Memory.** The controller alone in a child process: \`csr-signer controller --leader-elect=false\` with ` +
        `its default flags (${defaultWorkers} workers, 100 QPS / burst 200, JSON log to a file), run ${controllerRuntimeDescription}` +
        `${controllerNodeFlags().length > 0 ? ` with node flags \`${controllerNodeFlags().join(" ")}\`` : ""}; ` +
        `bench/heap-reporter.mjs, preloaded, reports RSS every 100 ms, the kernel's VmHWM and the heap. Three runs: no CSRs; ${thousands(cacheCsrs)} CSRs for a signer it does not serve ` +
        `(cached by its informer, never queued); ${thousands(cacheCsrs)} unapproved CSRs of its own signer (each queued once, ` +
        `when its 10 s WaitingApproval grace period ends; nothing signed). All Istio-shaped, created as istiod before the child starts (request PEM ` +
        `${memory.requestPemBytes} bytes, ${memory.objectJsonBytes} bytes of JSON per CSR object; ${ms(memory.foreignCreateMs)} for ` +
        `${thousands(cacheCsrs)} creates at ${cacheInFlight} in flight).`,
      "",
    );
    out.push(
      "| | CSRs cached | spawn → /readyz | RSS settled | RSS at end | peak RSS (samples / VmHWM) | heapUsed settled | heapUsed / RSS after full GC |",
    );
    out.push("|---|---|---|---|---|---|---|---|");
    for (const run of [baseline, foreign, pending]) {
      out.push(
        `| ${run.label} | ${thousands(run.cachedCsrs)} | ${ms(run.readyMs)} | ${mib(run.settled.rss)}` +
          `${run.stabilised ? "" : " (not settled)"} | ${mib(run.end.rss)} | ${mib(run.peakRss)} / ${mib(run.vmHwm)} | ` +
          `${mib(run.settled.heapUsed)} | ${mib(run.afterGc?.heapUsed)} / ${mib(run.afterGc?.rss)} |`,
      );
    }
    for (const run of [foreign, pending]) {
      out.push(
        `| per CSR, ${run.label.replace(`${cacheCsrs} `, "")} − baseline | | | ${perCsr(run.settled.rss, baseline.settled.rss)} | ` +
          `${perCsr(run.end.rss, baseline.end.rss)} | ${perCsr(run.peakRss, baseline.peakRss)} / ${perCsr(run.vmHwm, baseline.vmHwm)} | ` +
          `${perCsr(run.settled.heapUsed, baseline.settled.heapUsed)} | ${perCsr(run.afterGc?.heapUsed, baseline.afterGc?.heapUsed)} / ${perCsr(run.afterGc?.rss, baseline.afterGc?.rss)} |`,
      );
    }
    out.push("");
    const probe = pending.probe;
    const notReadyShare = (run: ChildRun): string =>
      `${((run.notReadySamples / Math.max(1, run.samplesAfterReady)) * 100).toFixed(0)} %`;
    out.push(
      `For scale, RSS of a bare Node after a full GC: ${mib(importCost.plain)} having imported @kubernetes/client-node ` +
        `(${mib(importCost.tsx)} with tsx)${importCost.bundle === undefined ? "" : `, ${mib(importCost.bundle)} having loaded the whole bundle`}; ` +
        `per-CSR differences do not depend on it. ` +
        `With the ${thousands(cacheCsrs)} pending CSRs, the child wrote ${thousands(pending.events?.WaitingApproval ?? 0)} WaitingApproval ` +
        `Events in the ${ms(pending.settleMs + (probe?.waitedMs ?? 0))} after /readyz (the recorder's own budget, 5/s with repeats and ` +
        `overflow dropped, outside the client limit), reported not ready in ${notReadyShare(pending)} of the samples after its first ` +
        `ready, and a fresh CSR created and approved by istiod then ${probe?.issuedMs === undefined ? `got no certificate within ${ms(probe?.waitedMs ?? Number.NaN)}` : `got its certificate after ${ms(probe.issuedMs)}`}. ` +
        `Child warnings/errors: ${[baseline, foreign, pending].every((run) => run.warnings.size === 0) ? "none" : [baseline, foreign, pending].map((run) => `${run.label}: ${[...run.warnings].map(([m, c]) => `${c}× ${m}`).join("; ") || "none"}`).join("; ")}.`,
      "",
    );
  }
  const sentences: string[] = [];
  const primary = throughput[0];
  if (primary) {
    const unlimited = throughput.find((r) => r.qps === 0);
    // Events do not take client-limit tokens (the recorder has its own budget): one status patch each.
    const writesPerCertificate = 1;
    const limitBound = primary.qps > 0 ? primary.qps / writesPerCertificate : Infinity;
    const serverCpu = (r: ThroughputResult): number => (r.cpu["kube-apiserver"] ?? 0) + (r.cpu.etcd ?? 0);
    sentences.push(
      `Interpretation: ${primary.qps > 0 ? `as deployed (${primary.qps} QPS client limit)` : "without a client rate limit"} one controller ` +
        `sustains ${primary.perSecond.toFixed(0)} CSRs/s, so a burst of ${thousands(throughputCsrs)} Istio CSRs is served within ` +
        `${ms(percentile(primary.createToIssued, 1))} (p99 ${ms(percentile(primary.createToIssued, 0.99))}; ` +
        `${primary.missedDeadline} over istiod's 60 s deadline).`,
    );
    if (primary.perSecond >= 0.8 * limitBound)
      sentences.push(
        `That is the client rate limit at work: one status patch per certificate (Events have a budget of their own) ` +
          `caps it at ${limitBound.toFixed(0)}/s after the burst, whatever the signing speed.`,
      );
    if (unlimited && unlimited !== primary)
      sentences.push(
        `Without the limit the same shared cores give ${unlimited.perSecond.toFixed(0)} CSRs/s at p99 ` +
          `${ms(percentile(unlimited.createToIssued, 0.99))}, kube-apiserver + etcd using ${serverCpu(unlimited).toFixed(1)} CPU-s ` +
          `against ${(unlimited.cpu.bench ?? 0).toFixed(1)} for controller + submitter.`,
      );
  }
  if (memory) {
    const { baseline, foreign, pending } = memory;
    sentences.push(
      `Each cached CSR costs about ${perCsr(foreign.settled.rss, baseline.settled.rss)} of RSS ` +
        `(${perCsr(foreign.afterGc?.heapUsed, baseline.afterGc?.heapUsed)} of live heap; ~` +
        `${((((foreign.settled.rss - baseline.settled.rss) / cacheCsrs) * 100_000) / 2 ** 20).toFixed(0)} MiB per 100,000 by extrapolation); ` +
        `pending CSRs of its own signer cost ${perCsr(pending.settled.rss, baseline.settled.rss)} each.`,
    );
  }
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
      memory: (memory ? [memory.baseline, memory.foreign, memory.pending] : []).map((r) => ({
        label: r.label,
        settledRss: r.settled.rss,
        endRss: r.end.rss,
        peakRss: r.peakRss,
        vmHwm: r.vmHwm,
        heapUsed: r.settled.heapUsed,
        heapUsedAfterGc: r.afterGc?.heapUsed,
        rssAfterGc: r.afterGc?.rss,
        stabilised: r.stabilised,
        settleMs: r.settleMs,
        notReadySamples: r.notReadySamples,
        samplesAfterReady: r.samplesAfterReady,
        probe: r.probe,
        events: r.events,
      })),
      peer: peer.map((r) => ({
        contender: r.contender,
        round: r.round,
        label: r.label,
        perSecond: r.perSecond,
        p50: percentile(r.createToIssued, 0.5),
        p99: percentile(r.createToIssued, 0.99),
        max: percentile(r.createToIssued, 1),
        cpu: r.cpu,
        signerCpuSinceStart: r.signerCpuSinceStart,
        apiserverRequests: Object.fromEntries(r.apiserverRequests),
      })),
      importCost: memory?.importCost,
      totalMs,
    })}`,
  );
}

/**
 * The baseline: kube-controller-manager's own CSR signer (`--controllers=csrsigning`, 5 workers, the
 * kubernetes.io/kube-apiserver-client signer with the same CA) and csr-signer, each alone in its own
 * process on the same control plane, fed the same requests the same way (only the usages are the three
 * that signer accepts), with the same client limit as the CLI default (100 QPS / burst 200) and with the limit raised out of
 * the way (it cannot be switched off). csr-signer runs as deployed: `node dist/csr-signer.mjs controller`.
 * For A/B runs, csr-signer-alt is a second csr-signer on the same footing, another bundle or node flags
 * (common.ts); node-floor is the least a Node signer does per certificate (node-floor.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CertificatesV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import type { ControlPlane } from "../../test/support/control-plane.js";
import { controllerNamespace } from "../../test/support/controller.js";
import { alternativeCsrSignerNodeArgs, csrSignerNodeArgs } from "../rss-child.js";
import { nodeFloorNodeArgs } from "./node-floor-bundle.js";
import {
  benchWorkers,
  caSecretName,
  deleteAllCsrsAndEvents,
  istiodDeadlineMs,
  issueTimeoutMs,
  liveChildren,
  ms,
  peerWarmUpCsrs,
  percentile,
  progress,
  runBounded,
  signerName,
  throughputCsrs,
  throughputInFlight,
  withRetries,
} from "./common.js";
import { apiserverRequestCounts, requestsBetween, type RequestCounts } from "./apiserver-requests.js";
import { cpuSnapshot, cpuSpent } from "./cpu.js";
import { perfBreakdownOf, perfNodeFlags, startPerfRecording, type PerfPart } from "./perf-window.js";
import { approve, csrBody, istioRequestPem, watchIssuance } from "./istio.js";
import { repositoryRoot, testBinary } from "../../test/support/testbin.js";
import { delay } from "../../test/support/wait.js";

/** The usages kubernetes.io/kube-apiserver-client accepts (KCM refuses server auth there). */
const peerUsages = ["digital signature", "key encipherment", "client auth"];
export const peerSignerName = "kubernetes.io/kube-apiserver-client";

export interface PeerResult {
  contender: Contender;
  /** Which interleaved round of the comparison (0-based). */
  round: number;
  label: string;
  qps: number;
  issued: number;
  failed: number;
  complete: boolean;
  perSecond: number;
  createToIssued: number[];
  missedDeadline: number;
  /** CPU seconds per process from 2 s after the warm-up certificates to the last certificate. */
  cpu: Record<string, number>;
  /** The signer process's CPU seconds from its start to the last certificate (start-up included). */
  signerCpuSinceStart: number;
  /** What kube-apiserver served over the same window, submitter's requests included. */
  apiserverRequests: RequestCounts;
  /** With BENCH_PERF: the signer's CPU µs per certificate over the same window, by part (perf-window.ts). */
  perf?: Record<PerfPart, number>;
}

/** The name /proc gives each signer's process (Node names its main thread MainThread, cpu.ts says "node"). */
export const signerProcessName = (contender: Contender): string =>
  contender === "kube-controller-manager" ? "kube-controller" : "node";

/**
 * The signers compared on the same footing: each in its own process, fed by the same submitter
 * (csr-signer-alt: a second csr-signer for A/B measurements, see common.ts; node-floor: the Node
 * floor, node-floor.ts).
 */
export type Contender = "csr-signer" | "csr-signer-alt" | "kube-controller-manager" | "node-floor";

/** Where `make testbin-controller-manager` put kube-controller-manager, or undefined when it is not built. */
export function kubeControllerManagerBinary(): string | undefined {
  try {
    return testBinary("KUBE_BIN_DIR", "kube-controller-manager");
  } catch {
    return undefined; // not built: the peer phase is skipped (make testbin-controller-manager builds it)
  }
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
  } else if (contender === "node-floor") {
    command = process.execPath;
    args = nodeFloorNodeArgs([
      `--kubeconfig=${controlPlane.kubeconfigPath}`,
      `--namespace=${controllerNamespace}`,
      `--ca-secret=${caSecretName}`,
      `--signer-name=${signerName}`,
      `--kube-api-qps=${qps}`,
      `--kube-api-burst=${qps * 2}`,
    ]);
  } else {
    // The CLI as the image runs it: the bundle, with the Dockerfile's node flags (bench/rss-child.ts).
    command = process.execPath;
    args = (contender === "csr-signer-alt" ? alternativeCsrSignerNodeArgs : csrSignerNodeArgs)([
      "controller",
      `--kubeconfig=${controlPlane.kubeconfigPath}`,
      `--namespace=${controllerNamespace}`,
      "--leader-elect=false",
      `--workers=${benchWorkers}`,
      `--kube-api-qps=${qps}`,
      `--kube-api-burst=${qps * 2}`,
      "--metrics-address=",
      "--probe-address=",
      "--cleanup=false",
    ]);
  }
  // With BENCH_PERF, Node names its JIT code for perf (the flag goes before the script).
  if (command === process.execPath) args = [...perfNodeFlags, ...args];
  const log = openSync(logFile, "w"); // after the arguments, which may be refused
  const child = spawn(command, args, { cwd: repositoryRoot, stdio: ["ignore", log, log], detached: true });
  liveChildren.add(child);
  closeSync(log);
  return { child, logFile };
}

export async function separateProcessPhase(
  contender: Contender,
  controlPlane: ControlPlane,
  admin: KubeConfig,
  istiod: KubeConfig,
  kcmBinary: string,
  caFiles: Record<string, string>,
  qps: number,
  round: number,
  runIndex: number,
  scratch: string,
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
  const prefix = `${{ "csr-signer": "own", "csr-signer-alt": "alt", "kube-controller-manager": "peer", "node-floor": "floor" }[contender]}-${runIndex}-`;
  const names = Array.from({ length: throughputCsrs }, (_, i) => `${prefix}${i}`);
  const requests = names.map((_, i) => istioRequestPem(i));
  const watch = await watchIssuance(admin, prefix);
  const certificates = istiod.makeApiClient(CertificatesV1Api);
  const createdAt: number[] = [];
  const counter = { retries: 0 };
  try {
    // Warm-up: ready once it has signed one request (caches synced, workers running); then the rest of
    // the warm-up certificates, as the measured ones come, so that the measurement starts with hot code.
    const warmUp = `${prefix}warm-up`;
    const warmUpCreated = await certificates.createCertificateSigningRequest({
      body: body(warmUp, istioRequestPem(999_998)),
    });
    await approve(certificates, warmUpCreated);
    if (!(await watch.waitFor([warmUp], 60_000)) || !watch.issuedAt.has(warmUp))
      throw new Error(
        `${contender} did not sign a warm-up CSR within 60 s (${watch.failed.get(warmUp) ?? "no outcome"}); see ${logFile}`,
      );
    const warmUpNames = Array.from({ length: peerWarmUpCsrs - 1 }, (_, i) => `${prefix}warm-up-${i}`);
    await runBounded(warmUpNames.length, throughputInFlight, async (i) => {
      const created = await withRetries(
        () =>
          certificates.createCertificateSigningRequest({
            body: body(warmUpNames[i]!, istioRequestPem(throughputCsrs + i)),
          }),
        counter,
      );
      await withRetries(() => approve(certificates, created), counter);
    });
    if (!(await watch.waitFor(warmUpNames, issueTimeoutMs)))
      throw new Error(`${contender} did not sign its ${peerWarmUpCsrs} warm-up CSRs; see ${logFile}`);
    // BENCH_PERF: attached during the pause, so that it samples from the window's first moment.
    const recording = startPerfRecording(
      child.pid!,
      `${contender}-${qps > 0 ? `qps-${qps}` : "raised"}-round-${round + 1}`,
    );
    // The warm-up spent client-limit tokens: both signers' burst (twice the QPS) is saved up again
    // in 2 s, so the measured requests meet a full limiter, as in a process that has just started.
    await delay(2_000);
    progress(
      `separate process [${contender}, ${label}, round ${round + 1}]: ${throughputCsrs} CSRs, ${throughputInFlight} in flight`,
    );
    const requestsBefore = await apiserverRequestCounts(admin);
    const cpuBefore = cpuSnapshot(controlPlane);
    recording?.openWindow();
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
    // ("kube-controller" for KCM, "node" for csr-signer, its alt and the floor).
    const cpuAfter = cpuSnapshot(controlPlane);
    const perfSamples = await recording?.closeWindow();
    const cpu = cpuSpent(cpuBefore, cpuAfter);
    const apiserverRequests = requestsBetween(requestsBefore, await apiserverRequestCounts(admin));
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
      round,
      label,
      qps,
      issued: createToIssued.length,
      failed: names.filter((name) => watch.failed.has(name)).length,
      complete,
      perSecond: createToIssued.length / ((lastIssued - firstCreate) / 1000),
      createToIssued,
      missedDeadline:
        createToIssued.filter((t) => t > istiodDeadlineMs).length + (throughputCsrs - createToIssued.length),
      cpu,
      signerCpuSinceStart: cpuAfter.others.get(signerProcessName(contender)) ?? Number.NaN,
      apiserverRequests,
      ...(perfSamples !== undefined ? { perf: perfBreakdownOf(perfSamples, createToIssued.length) } : {}),
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
    await Promise.race([exited, delay(5_000)]);
    liveChildren.delete(child);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await deleteAllCsrsAndEvents(admin);
  }
}

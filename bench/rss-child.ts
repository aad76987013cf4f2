/**
 * The controller alone in its own process, for `make bench-controller`'s memory measurement: the
 * parent (bench/controller.bench.ts) spawns it with
 *   BENCH_KUBECONFIG  admin kubeconfig file of the test control plane
 *   BENCH_SIGNER_NAME the bench Signer's signerName (to count the CSRs of our signer in the cache)
 *   BENCH_LOG_FILE    where the controller's JSON log goes (info and above)
 * and reads JSON lines from stdout:
 *   {"type":"listening","metrics":"127.0.0.1:p","probe":"127.0.0.1:p"}  as soon as the servers are bound
 *   {"type":"started",...}                                             when start() resolved (caches listed)
 *   {"type":"memory",...}                                              every 500 ms: rss now, peak of the
 *                                                                      100 ms samples, kernel VmHWM, heap
 *   {"type":"gc",...}                                                  after "gc\n" on stdin (needs --expose-gc)
 *   {"type":"reset",...}                                               after "reset\n": the peak and VmHWM
 *                                                                      start again from the current RSS
 * SIGTERM stops the controller and exits. The controller runs as the CLI runs it (`csr-signer
 * controller`): ConnectionReusingKubeConfig from the file, 50 QPS / 100 burst, 4 workers.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { SignerController } from "../src/controller/controller.js";
import { ConnectionReusingKubeConfig } from "../src/kube/client.js";
import { jsonLogger } from "../src/logger.js";

const kubeconfigPath = process.env.BENCH_KUBECONFIG;
const signerName = process.env.BENCH_SIGNER_NAME ?? "";
const logFile = process.env.BENCH_LOG_FILE ?? "/dev/null";
if (!kubeconfigPath) throw new Error("BENCH_KUBECONFIG is not set");

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** Kernel's high-water mark of this process's resident set (catches peaks between samples). */
function vmHwmBytes(): number | undefined {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) * 1024 : undefined;
}

let peakRss = process.memoryUsage.rss();
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 100);

const kubeConfig = new ConnectionReusingKubeConfig();
kubeConfig.loadFromFile(kubeconfigPath);
kubeConfig.setRateLimit(50, 100); // the CLI's --kube-api-qps / --kube-api-burst defaults
const controller = new SignerController({
  kubeConfig,
  namespace: "csr-signer",
  workers: 4,
  leaderElection: false,
  metricsAddress: "127.0.0.1:0",
  probeAddress: "127.0.0.1:0",
  logger: jsonLogger({ level: "info", write: (line) => appendFileSync(logFile, line) }),
});

/** The CSR cache, read through a private field: a benchmark's look inside, not an API. */
function cachedCsrs(): { metadata?: { name?: string }; spec?: { signerName?: string } }[] {
  const informer = (controller as unknown as { csrInformer?: { list(): [] } }).csrInformer;
  return informer?.list() ?? [];
}

function memory(type: string): Record<string, unknown> {
  const usage = process.memoryUsage();
  peakRss = Math.max(peakRss, usage.rss);
  const csrs = cachedCsrs();
  return {
    type,
    at: Date.now(),
    rss: usage.rss,
    peakRss,
    vmHwm: vmHwmBytes(),
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    cachedCsrs: csrs.length,
    cachedOurs: csrs.filter((csr) => csr.spec?.signerName === signerName).length,
    ready: controller.ready,
  };
}

const starting = controller.start();
// addresses() is filled once the servers are bound, before the informers have listed: announce the
// probe address then, so the parent can poll /readyz while the caches fill.
while (controller.addresses().length < 2) {
  await Promise.race([starting, new Promise((resolve) => setTimeout(resolve, 10))]);
}
const [metrics, probe] = controller.addresses();
send({ type: "listening", metrics, probe, pid: process.pid });
const reporter = setInterval(() => send(memory("memory")), 500);
await starting;
send(memory("started"));

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "reset") {
    peakRss = process.memoryUsage.rss();
    writeFileSync("/proc/self/clear_refs", "5"); // "5" resets the kernel's peak RSS (VmHWM)
    send(memory("reset"));
    return;
  }
  if (line.trim() !== "gc") return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  send({ ...memory("gc"), collected: gc !== undefined });
});

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  clearInterval(reporter);
  clearInterval(sampler);
  await controller.stop();
  await kubeConfig.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
// The parent gone (stdin closed): do not linger.
process.stdin.on("end", () => void stop());

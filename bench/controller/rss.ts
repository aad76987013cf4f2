/**
 * Phase 2: the controller's memory, alone in a child process that runs it as deployed
 * (`csr-signer controller` from the bundle, bench/rss-child.ts). Three runs: no CSRs; BENCH_CACHE_CSRS
 * CSRs for a signer it does not serve (cached by its informer, never queued); as many unapproved CSRs of
 * its own signer (each queued once, when its 10 s WaitingApproval grace period ends; nothing signed). All are created before the child starts, so the synced
 * cache behind the first ready /readyz holds every one of them. With the pending ones, one more CSR is
 * created and approved to see how fast it is served.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { ControlPlane } from "../../test/support/control-plane.js";
import { controllerNamespace } from "../../test/support/controller.js";
import {
  bundlePath,
  controllerRuntime,
  spawnMeasuredController,
  waitForSettledRss,
  type ChildMemory,
} from "../rss-child.js";
import {
  cacheCsrs,
  cacheInFlight,
  countEvents,
  deleteAllCsrsAndEvents,
  foreignSignerName,
  istiodDeadlineMs,
  liveChildren,
  ms,
  progress,
  runBounded,
  signerName,
  warningCounts,
  withRetries,
} from "./common.js";
import { approve, csrBody, istioRequestPem, watchIssuance } from "./istio.js";
import { repositoryRoot } from "../../test/support/testbin.js";

export interface ChildRun {
  label: string;
  /** CSRs in the API server when the child started: all in its cache once /readyz is ok. */
  cachedCsrs: number;
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
  /** 500 ms samples after the first ready /readyz in which /readyz was not ok. */
  notReadySamples: number;
  samplesAfterReady: number;
  probe?: { issuedMs: number | undefined; waitedMs: number };
  events?: Record<string, number>;
  warnings: Map<string, number>;
}

export interface MemoryResult {
  baseline: ChildRun;
  foreign: ChildRun;
  pending: ChildRun;
  /** RSS of a bare Node after loading only this, and a full GC. */
  importCost: { plain?: number; tsx?: number; bundle?: number };
  foreignCreateMs: number;
  objectJsonBytes: number;
  requestPemBytes: number;
}

const probeWaitMs = Number(process.env.BENCH_PROBE_WAIT_MS ?? istiodDeadlineMs);

async function runChild(
  label: string,
  controlPlane: ControlPlane,
  cachedCsrs: number,
  logFile: string,
  whileRunning?: () => Promise<Partial<ChildRun>>,
): Promise<ChildRun> {
  const controller = await spawnMeasuredController({
    kubeconfigPath: controlPlane.kubeconfigPath,
    namespace: controllerNamespace,
    logFile,
  });
  liveChildren.add(controller.child);
  const messages = controller.samples;
  try {
    const readyMs = await controller.ready();
    const readyAt = performance.now();
    const readyAtWallClock = Date.now();
    progress(`  [${label}] child ready (/readyz ok) ${ms(readyMs)} after spawn; waiting for RSS to settle`);
    const stabilised = await waitForSettledRss(messages);
    const settleMs = performance.now() - readyAt;
    const settled = messages.at(-1)!;
    const extra = (await whileRunning?.()) ?? {};
    const end = messages.at(-1)!;
    const afterGc = await controller.collectGarbage();
    const afterReady = messages.filter(
      (message) => message.type === "memory" && message.at > readyAtWallClock,
    );
    return {
      label,
      cachedCsrs,
      readyMs,
      settleMs,
      stabilised,
      settled,
      end,
      peakRss: Math.max(...messages.map((message) => message.peakRss)),
      vmHwm: afterGc.vmHwm,
      afterGc,
      notReadySamples: afterReady.filter((message) => !message.ready).length,
      samplesAfterReady: afterReady.length,
      warnings: logWarnings(logFile),
      ...extra,
    };
  } finally {
    await controller.stop();
    liveChildren.delete(controller.child);
  }
}

function logWarnings(logFile: string): Map<string, number> {
  try {
    return warningCounts(readFileSync(logFile, "utf8").split("\n"));
  } catch {
    return new Map(); // no log written: nothing to count
  }
}

/** RSS of a bare Node (after a full GC) that loaded only @kubernetes/client-node, with or without tsx, or the bundle. */
async function importCostRss(what: "plain" | "tsx" | "bundle"): Promise<number | undefined> {
  // Importing the bundle loads every module the CLI needs; it runs no command (argv[1] is not the bundle).
  const imported = what === "bundle" ? JSON.stringify(bundlePath) : '"@kubernetes/client-node"';
  const script = `await import(${imported}); globalThis.gc(); console.log(process.memoryUsage().rss);`;
  const child = spawn(
    process.execPath,
    [...(what === "tsx" ? ["--import", "tsx"] : []), "--expose-gc", "--input-type=module", "-e", script],
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

export async function rssPhase(
  controlPlane: ControlPlane,
  admin: KubeConfig,
  istiod: KubeConfig,
  scratch: string,
): Promise<MemoryResult> {
  const importCost = {
    plain: await importCostRss("plain"),
    tsx: await importCostRss("tsx"),
    ...(controllerRuntime === "bundle" ? { bundle: await importCostRss("bundle") } : {}),
  };
  progress("memory: baseline child (no CSRs in the API server)");
  const baseline = await runChild("baseline, no CSRs", controlPlane, 0, join(scratch, "baseline.log"));

  progress(`memory: ${cacheCsrs} CSRs of a signer the controller does not serve`);
  const foreignCreateMs = await createPendingCsrs(istiod, "foreign-", foreignSignerName, cacheCsrs);
  const sample = (await admin.makeApiClient(CertificatesV1Api).listCertificateSigningRequest({ limit: 1 }))
    .items[0];
  const objectJsonBytes = JSON.stringify(sample ?? {}).length;
  const requestPemBytes = istioRequestPem(0).length;
  const foreign = await runChild(
    `${cacheCsrs} CSRs of another signer`,
    controlPlane,
    cacheCsrs,
    join(scratch, "foreign.log"),
  );
  await deleteAllCsrsAndEvents(admin);

  progress(`memory: ${cacheCsrs} pending (unapproved) CSRs of its own signer`);
  await createPendingCsrs(istiod, "pending-", signerName, cacheCsrs);
  const pending = await runChild(
    `${cacheCsrs} pending CSRs of its signer`,
    controlPlane,
    cacheCsrs,
    join(scratch, "pending.log"),
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
  return { baseline, foreign, pending, importCost, foreignCreateMs, objectJsonBytes, requestPemBytes };
}

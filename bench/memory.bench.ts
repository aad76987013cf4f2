/**
 * make bench-memory: the controller's memory under the padded-CSR attack of issue 10 (item 2).
 * kube-apiserver accepts a CSR whose spec.request is one valid PEM block followed by ~1.3 MB of
 * padding. On a real kube-apiserver + etcd, the controller runs alone in a child process as deployed
 * (`node dist/csr-signer.mjs controller`, bench/rss-child.ts), RSS sampled every 100 ms plus the
 * kernel's VmHWM:
 *   1. idle: an empty cluster (one Signer), RSS once settled;
 *   2. during the run: 200 padded CSRs for a signer name that is not ours plus 200 padded CSRs for
 *      our Signer (approved, so each is refused RequestTooLarge) created while it runs;
 *   3. across a restart: a fresh child that lists all 400 from the API server.
 * Target: peak RSS at most idle + 50 MiB in 2 and 3. Prints a Markdown section for BENCHMARKS.md on
 * stdout; progress goes to stderr. Knobs: BENCH_PADDED_CSRS (200 of each), BENCH_PADDING_BYTES (1300000).
 */
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import { mergePatch } from "../test/support/kube-client.js";
import { startControlPlane, type ControlPlane } from "../test/support/control-plane.js";
import {
  createCaSecret,
  createSigner,
  installSignerManifests,
  submitCsr,
  waitForSignerCondition,
} from "../test/support/controller.js";
import { grantClusterRole, serviceAccountSubject } from "../test/support/identities.js";
import { buildTestCertificateRequest, makeTestCertificateAuthority, testKey } from "../test/support/pki.js";
import {
  controllerNodeFlags,
  controllerRuntimeDescription,
  spawnMeasuredController,
  waitForSettledRss,
  type ChildMemory,
} from "./rss-child.js";
import { repositoryRoot } from "../test/support/testbin.js";
import { waitFor } from "../test/support/wait.js";
import { mib, progress } from "./controller/common.js";

const paddedCsrs = Number(process.env.BENCH_PADDED_CSRS ?? 200);
const paddingBytes = Number(process.env.BENCH_PADDING_BYTES ?? 1_300_000);
const targetMiB = 50;
const signerName = "bench.csr-signer.test/memory";
const foreignSignerName = "example.com/not-ours";
const heap = (s: Sample): string =>
  `heap ${mib(s.heapUsed)} used / ${mib(s.heapTotal)} total, external ${mib(s.external)}`;

type Sample = ChildMemory;

/** The controller as deployed, in its own process (bench/rss-child.ts); `samples` fills as it reports. */
async function spawnController(controlPlane: ControlPlane) {
  const controller = await spawnMeasuredController({
    kubeconfigPath: controlPlane.kubeconfigPath,
    namespace: "csr-signer",
    logFile: "/dev/null",
  });
  const samples = controller.samples;
  return {
    samples,
    /** Resolves once /readyz is ok: the informers have listed everything in the API server. */
    ready: () => controller.ready(300_000),
    /** RSS once settled (waitForSettledRss: the last 3 s within 2 %, at least 5 s, at most 45 s). */
    async settled(): Promise<Sample> {
      await waitForSettledRss(samples);
      return samples.at(-1)!;
    },
    /** Peaks start again from now (the idle phase's start-up peak is not the attack's). */
    async resetPeak(): Promise<void> {
      await controller.resetPeak();
    },
    /** The 500 ms sample with the highest RSS (its heap figures say where the memory was). */
    highest(): Sample {
      return samples.reduce((a, b) => (b.rss > a.rss ? b : a));
    },
    peak(): { sampled: number; vmHwm: number } {
      const last = samples.at(-1)!;
      return { sampled: last.peakRss, vmHwm: last.vmHwm ?? last.peakRss };
    },
    stop: () => controller.stop(),
  };
}

async function createPaddedCsrs(admin: KubeConfig, prefix: string, forSigner: string, approve: boolean) {
  const pem = buildTestCertificateRequest({
    key: testKey("ecdsa-p256"),
    subjectAltNames: { dns: ["x.example.test"] },
  });
  const requestPem = `${pem}${"#".repeat(paddingBytes)}\n`;
  const certificates = admin.makeApiClient(CertificatesV1Api);
  // One at a time: several 1.7 MB request bodies at once make kube-apiserver's HTTP/2 server reset
  // streams (ENHANCE_YOUR_CALM). Approval by merge patch, so it does not upload the request again.
  for (let i = 0; i < paddedCsrs; i++) {
    const name = `${prefix}-${i}`;
    await submitCsr(admin, {
      name,
      signerName: forSigner,
      requestPem,
      usages: ["digital signature", "server auth"],
    });
    if (!approve) continue;
    const approved = {
      type: "Approved",
      status: "True",
      reason: "BenchApproved",
      message: "approved by the benchmark",
      lastUpdateTime: new Date(),
    };
    await certificates.patchCertificateSigningRequestApproval(
      { name, body: { status: { conditions: [approved] } } },
      mergePatch,
    );
  }
}

async function failedCount(admin: KubeConfig): Promise<number> {
  const list = await admin.makeApiClient(CertificatesV1Api).listCertificateSigningRequest({ limit: 50 });
  let count = 0;
  let token = list.metadata?._continue;
  const countPage = (items: typeof list.items): void => {
    for (const csr of items)
      if (csr.spec.signerName === signerName && csr.status?.conditions?.some((c) => c.type === "Failed"))
        count++;
  };
  countPage(list.items);
  while (token) {
    const page = await admin
      .makeApiClient(CertificatesV1Api)
      .listCertificateSigningRequest({ limit: 50, _continue: token });
    countPage(page.items);
    token = page.metadata?._continue;
  }
  return count;
}

const controlPlane = await startControlPlane();
try {
  const admin = controlPlane.kubeConfig();
  await installSignerManifests(controlPlane);
  await grantClusterRole(
    admin,
    serviceAccountSubject("csr-signer", "csr-signer"),
    [
      {
        apiGroups: ["certificates.k8s.io"],
        resources: ["signers"],
        resourceNames: [signerName],
        verbs: ["sign"],
      },
    ],
    "bench-memory-sign",
  );
  const ca = await makeTestCertificateAuthority({ name: "bench-memory" });
  await createCaSecret(admin, "bench-memory-cacerts", ca.files);
  await createSigner(admin, "bench-memory", {
    signerName,
    certificateAuthority: { secretName: "bench-memory-cacerts" },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  });

  progress("phase 1: idle controller");
  const first = await spawnController(controlPlane);
  await first.ready();
  await waitForSignerCondition(admin, "bench-memory", "Ready", "True", undefined, 60_000);
  const idle = await first.settled();
  const idlePeak = first.peak();
  progress(
    `idle RSS ${mib(idle.rss)} (start-up peak ${mib(idlePeak.sampled)}, VmHWM ${mib(idlePeak.vmHwm)})`,
  );
  await first.resetPeak();

  progress(
    `phase 2: ${paddedCsrs} padded foreign CSRs and ${paddedCsrs} padded CSRs of our Signer while it runs`,
  );
  await createPaddedCsrs(admin, "padded-foreign", foreignSignerName, false);
  await createPaddedCsrs(admin, "padded-ours", signerName, true);
  // All of ours refused means all 400 are cached: the foreign ones were created first, and the
  // informer's watch delivers CSRs in resourceVersion order.
  await waitFor(
    `all ${paddedCsrs} padded CSRs of our Signer Failed`,
    async () => ((await failedCount(admin)) >= paddedCsrs ? true : undefined),
    600_000,
    { intervalMs: 1_000 },
  );
  const duringRun = await first.settled();
  const duringPeak = first.peak();
  const duringHighest = first.highest();
  await first.stop();
  progress(
    `during the run: peak ${mib(duringPeak.sampled)} (VmHWM ${mib(duringPeak.vmHwm)}), settled ${mib(duringRun.rss)}; ${heap(duringHighest)} at the highest sample, ${heap(duringRun)} settled`,
  );

  progress("phase 3: restart with all of them in the API server");
  // The restart's peak includes start-up, as a restarted pod's does.
  const second = await spawnController(controlPlane);
  await second.ready(); // ready once the informers have listed all 400
  const afterRestart = await second.settled();
  const restartPeak = second.peak();
  const restartHighest = second.highest();
  await second.stop();
  progress(
    `after restart: peak ${mib(restartPeak.sampled)} (VmHWM ${mib(restartPeak.vmHwm)}), settled ${mib(afterRestart.rss)}; ${heap(restartHighest)} at the highest sample, ${heap(afterRestart)} settled`,
  );

  const target = idle.rss + targetMiB * 2 ** 20;
  const row = (label: string, peak: { sampled: number; vmHwm: number }, settled: Sample): string =>
    `| ${label} | ${mib(settled.rss)} | ${mib(peak.sampled)} | ${mib(peak.vmHwm)} | +${mib(Math.max(peak.sampled, peak.vmHwm) - idle.rss)} | ${(
      (Math.max(peak.sampled, peak.vmHwm) - idle.rss) /
      (targetMiB * 2 ** 20)
    ).toFixed(2)} |`;
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const version = readFileSync(join(repositoryRoot, "package.json"), "utf8").match(
    /"version": "([^"]+)"/,
  )?.[1];
  process.stdout.write(
    [
      `### Memory under padded CSRs (issue 10, item 2)`,
      ``,
      `Machine: ${cpus().length} x ${cpu}, ${mib(totalmem())} RAM; Node ${process.version}; csr-signer ${version ?? "?"}; ` +
        `kube-apiserver from \`make testbin\`. ${paddedCsrs} CSRs for a foreign signer name plus ${paddedCsrs} for our ` +
        `Signer (approved, refused RequestTooLarge), each one valid PEM block followed by ${paddingBytes.toLocaleString("en")} ` +
        `bytes of padding. The controller alone in a child process (bench/rss-child.ts), run ${controllerRuntimeDescription}` +
        `${controllerNodeFlags().length > 0 ? ` with node flags \`${controllerNodeFlags().join(" ")}\`` : ""}; RSS sampled every 100 ms, ` +
        `plus the kernel's VmHWM. Target: peak at most idle + ${targetMiB} MiB (idle ${mib(idle.rss)}, so ${mib(target)}).`,
      ``,
      `| phase | RSS settled | peak RSS (100 ms samples) | VmHWM | peak - idle | ratio to the ${targetMiB} MiB budget |`,
      `|---|---|---|---|---|---|`,
      `| idle (one Signer, no CSRs; peaks are start-up's) | ${mib(idle.rss)} | ${mib(idlePeak.sampled)} | ${mib(idlePeak.vmHwm)} | | |`,
      row("during the run (400 padded CSRs created)", duringPeak, duringRun),
      row("restart (relist of the 400)", restartPeak, afterRestart),
      ``,
    ].join("\n"),
  );
} finally {
  await controlPlane.stop();
}

/**
 * make bench-controller: the whole controller against a real kube-apiserver + etcd on this machine.
 *
 * 1. Throughput and latency (bench/controller/throughput.ts): 1,000 Istio-shaped CSRs (ECDSA P-256,
 *    O="", one SPIFFE URI SAN, the four Istio usages, expirationSeconds 86400) created and then approved
 *    through /approval as istiod does (impersonated istio-system/istiod), 20 in flight, against ONE
 *    in-process controller with the CLI's default workers (under tsx, to read its own histograms and event-loop delay).
 *    Latency per CSR = client clock right before create -> status.certificate seen on a WATCH of CSRs.
 *    Run twice: with the CLI's client rate limit (--kube-api-qps 100, --kube-api-burst 200, what a
 *    deployed controller has) and without any client rate limit (what the code itself can do).
 * 2. Memory (bench/controller/rss.ts): the controller as deployed (`node dist/csr-signer.mjs controller`,
 *    bench/rss-child.ts) alone in a child process, once with an empty CSR cache, once with 10,000 CSRs
 *    of a signer it does not serve, once with 10,000 unapproved Istio-shaped CSRs of its signer; RSS
 *    sampled every 100 ms, plus the kernel's VmHWM and heapUsed before and after a full GC. With the
 *    10,000 pending, one more CSR is created and approved to see how fast it is served.
 * 3. The baseline (bench/controller/peer.ts): kube-controller-manager's own CSR signer
 *    (`--controllers=csrsigning`) and csr-signer as deployed, each in its own process on the same
 *    control plane, fed the same requests the same way, at the same 100 QPS / burst 200 client limit (the CLI default) and
 *    with the limit raised out of the way; BENCH_PEER_ROUNDS (3) interleaved rounds, each process fresh
 *    and first given BENCH_WARM_UP (1000) certificates, then 2 s for its client limiter to refill,
 *    reported by their medians (peer-report.ts), with kube-apiserver's own request counts per
 *    certificate (apiserver_request_total, apiserver-requests.ts). Needs
 *    `make testbin-controller-manager` (bench-controller depends on it); skipped when BENCH_PEER=0.
 * 4. Pod certificates (bench/controller/pod-certificates.ts): BENCH_PCRS (1000) PodCertificateRequests
 *    created as a kubelet creates them, on the footing of phase 1 (in-process controller, the default workers, 20
 *    in flight, once per client limit); the bench Signer has spec.podCertificates.
 * Prints a Markdown section for BENCHMARKS.md on stdout (bench/controller/report.ts); progress goes to
 * stderr. Knobs (for quick runs): BENCH_CSRS (1000), BENCH_CACHE_CSRS (10000), BENCH_QPS_MODES ("100,0"),
 * BENCH_PEER (1), BENCH_PEER_ROUNDS (3), BENCH_WARM_UP (1000), BENCH_PHASES ("throughput,pcr,peer,rss"), BENCH_PCRS (1000), BENCH_CONTENDERS ("csr-signer,
 * kube-controller-manager"; "csr-signer-alt" adds a second csr-signer for A/B runs: BENCH_ALT_BUNDLE, its
 * bundle, the work tree's by default, and BENCH_ALT_NODE_FLAGS; "node-floor" adds the Node floor,
 * bench/controller/node-floor.ts), BENCH_CONTROLLER_RUNTIME (bundle; "tsx" runs the child processes
 * under tsx, for comparison; the floor is always a bundle), BENCH_NODE_FLAGS (node flags for
 * csr-signer's and the floor's processes, not csr-signer-alt's, after the Dockerfile's), BENCH_PERF (a
 * directory: each signer sampled by Linux perf over each round's measured window, summed up by part
 * over every thread and the kernel; bench/controller/perf-window.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VersionApi } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../test/support/control-plane.js";
import { createCaSecret, createSigner, installSignerManifests } from "../test/support/controller.js";
import { asServiceAccount, grantSignerVerbs, serviceAccountSubject } from "../test/support/identities.js";
import { makeTestCertificateAuthority } from "../test/support/pki.js";
import {
  benchStarted,
  caSecretName,
  contenders,
  liveChildren,
  ms,
  peerRounds,
  phases,
  progress,
  qpsModes,
  runPeer,
  signerName,
  signerObjectName,
} from "./controller/common.js";
import {
  kubeControllerManagerBinary,
  peerSignerName,
  separateProcessPhase,
  type PeerResult,
} from "./controller/peer.js";
import { checkPerfAvailable, perfDirectory } from "./controller/perf-window.js";
import { printReport } from "./controller/report.js";
import { rssPhase, type MemoryResult } from "./controller/rss.js";
import { throughputPhase, type ThroughputResult } from "./controller/throughput.js";
import {
  podCertificatePhase,
  podCertificateReport,
  type PodCertificateResult,
} from "./controller/pod-certificates.js";
import { alternativeCsrSignerBundle, ensureBundle } from "./rss-child.js";

let controlPlane: ControlPlane | undefined;
const scratch = mkdtempSync(join(tmpdir(), "csr-signer-bench-"));
let exitCode = 0;
try {
  ensureBundle();
  // Refused before anything starts, not when the alt's first round comes.
  if (contenders.includes("csr-signer-alt") && phases.has("peer")) alternativeCsrSignerBundle();
  // BENCH_PERF: perf checked before anything starts, and refused where no round would read it.
  if (perfDirectory && !(runPeer && phases.has("peer")))
    throw new Error("BENCH_PERF samples the peer phase only: add peer to BENCH_PHASES (and BENCH_PEER=1)");
  if (runPeer && phases.has("peer")) checkPerfAvailable();
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
    podCertificates: {},
  });
  await grantSignerVerbs(admin, {
    subject: serviceAccountSubject("istio-system", "istiod"),
    signerNames: [signerName, peerSignerName],
    verbs: ["approve"],
  });
  const istiod = asServiceAccount(admin, "istio-system", "istiod");

  // Phase 1.
  const throughput: ThroughputResult[] = [];
  if (phases.has("throughput"))
    for (const [index, qps] of qpsModes.entries())
      throughput.push(await throughputPhase(controlPlane, admin, istiod, qps, index));

  // Phase 4 (run here, on phase 1's footing): PodCertificateRequests.
  const podCertificates: PodCertificateResult[] = [];
  if (phases.has("pcr"))
    for (const [index, qps] of qpsModes.entries())
      podCertificates.push(await podCertificatePhase(controlPlane, admin, qps, index));

  // Phase 3 (run here, next to phase 1, so all see the same etcd): the baseline, on the same footing.
  const peer: PeerResult[] = [];
  const runComparison = runPeer && phases.has("peer");
  const peerBinary = contenders.includes("kube-controller-manager") ? kubeControllerManagerBinary() : "";
  if (runComparison && peerBinary === undefined)
    throw new Error(
      "kube-controller-manager is not built: run `make testbin-controller-manager` (or BENCH_PEER=0)",
    );
  if (runComparison && peerBinary !== undefined)
    for (let round = 0; round < peerRounds; round++)
      for (const [modeIndex, qps] of qpsModes.entries()) {
        // Alternating order: neither signer always runs first (or right after the other).
        const order = round % 2 === 0 ? contenders : [...contenders].reverse();
        for (const contender of order)
          peer.push(
            await separateProcessPhase(
              contender,
              controlPlane,
              admin,
              istiod,
              peerBinary,
              ca.files,
              qps,
              round,
              round * qpsModes.length + modeIndex,
              scratch,
            ),
          );
      }

  // Phase 2: baseline; 10,000 CSRs of a signer it does not serve (cache only); 10,000 pending CSRs of its own.
  let memory: MemoryResult | undefined;
  if (phases.has("rss")) memory = await rssPhase(controlPlane, admin, istiod, scratch);

  printReport({ apiServerVersion, totalMs: performance.now() - benchStarted, throughput, peer, memory });
  process.stdout.write(podCertificateReport(podCertificates));
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

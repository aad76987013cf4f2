/**
 * The PodCertificateRequest phase of `make bench-controller` (BENCH_PHASES includes "pcr"): the same
 * footing as the CSR throughput phase (one in-process controller, the CLI's default workers, 20 requests in flight,
 * once per client limit of BENCH_QPS_MODES), fed as kubelets feed it. A Node and 20 Pods bound to it
 * in the bench Signer's tenant namespace; BENCH_PCRS (1000) requests, each with a fresh ECDSA P-256
 * key and a stub PKCS#10 request (as kubelet 1.36 makes them, generated before the clock starts),
 * created as system:node:<name> (Node authorizer and NodeRestriction check each against its Pod).
 * Latency per request: client clock right before create until the Issued condition is seen on a
 * watch of the namespace's PodCertificateRequests.
 */
import { generateKeyPairSync } from "node:crypto";
import {
  CertificatesV1beta1Api,
  CoreV1Api,
  Watch,
  type KubeConfig,
  type V1beta1PodCertificateRequest,
} from "@kubernetes/client-node";
import type { ConnectionReusingKubeConfig } from "../../src/kube/client.js";
import type { ControlPlane } from "../../test/support/control-plane.js";
import {
  controllerNamespace,
  startController,
  waitForSignerCondition,
} from "../../test/support/controller.js";
import { asNode, impersonatingKubeConfig, serviceAccountIdentity } from "../../test/support/identities.js";
import { stubRequest } from "../../test/support/pod-certificates.js";
import { cpuSnapshot, cpuSpent } from "./cpu.js";
import {
  benchWorkers,
  issueTimeoutMs,
  ms,
  percentile,
  progress,
  runBounded,
  signerName,
  signerObjectName,
  throughputInFlight,
  withRetries,
} from "./common.js";

export const podCertificateRequests = Number(process.env.BENCH_PCRS ?? 1000);
/** The bench Signer's tenant namespace (bench/controller.bench.ts). */
const namespace = "foo";
const nodeName = "bench-node";
const pods = 20;

export interface PodCertificateResult {
  label: string;
  issued: number;
  refused: number;
  complete: boolean;
  firstCreateToLastIssuedMs: number;
  perSecond: number;
  createToIssued: number[];
  cpu: Record<string, number>;
}

interface PodFixture {
  name: string;
  uid: string;
  serviceAccountUID: string;
}

/** The Node, the tenant namespace's service account and Pods the requests name (made once). */
async function podFixtures(admin: KubeConfig): Promise<{ nodeUID: string; pods: PodFixture[] }> {
  const core = admin.makeApiClient(CoreV1Api);
  const node = await core.createNode({ body: { metadata: { name: nodeName } } });
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined); // may exist
  const account = await core.createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name: "web" } },
  });
  const fixtures: PodFixture[] = [];
  for (let i = 0; i < pods; i++) {
    const pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: `web-${i}` },
        spec: { nodeName, serviceAccountName: "web", containers: [{ name: "app", image: "app:1" }] },
      },
    });
    fixtures.push({ name: `web-${i}`, uid: pod.metadata!.uid!, serviceAccountUID: account.metadata!.uid! });
  }
  return { nodeUID: node.metadata!.uid!, pods: fixtures };
}

let fixtures: Promise<{ nodeUID: string; pods: PodFixture[] }> | undefined;

/** Decided requests by name, as seen on a watch of the namespace (Issued or refused, with the time). */
async function watchDecisions(
  admin: KubeConfig,
  onDecision: (name: string, issued: boolean) => void,
): Promise<() => void> {
  const list = await admin
    .makeApiClient(CertificatesV1beta1Api)
    .listNamespacedPodCertificateRequest({ namespace, limit: 1 });
  const request = await new Watch(admin).watch(
    `/apis/certificates.k8s.io/v1beta1/namespaces/${namespace}/podcertificaterequests`,
    { resourceVersion: list.metadata?.resourceVersion ?? "" },
    (type: string, object: V1beta1PodCertificateRequest) => {
      if (type !== "MODIFIED" && type !== "ADDED") return;
      const condition = object.status?.conditions?.find((c) => c.status === "True");
      if (condition && object.metadata?.name) onDecision(object.metadata.name, condition.type === "Issued");
    },
    () => undefined, // the phase's own timeout reports a watch that ended early
  );
  return () => request.abort();
}

export async function podCertificatePhase(
  controlPlane: ControlPlane,
  admin: KubeConfig,
  qps: number,
  runIndex: number,
): Promise<PodCertificateResult> {
  const label = qps > 0 ? `client limit ${qps} QPS / burst ${qps * 2} (CLI default)` : "no client rate limit";
  fixtures ??= podFixtures(admin);
  const { nodeUID, pods: podList } = await fixtures;
  progress(`pod certificates [${label}]: generating ${podCertificateRequests} P-256 keys and stub requests`);
  const stubs = Array.from({ length: podCertificateRequests }, () =>
    stubRequest(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey).toString("base64"),
  );
  const identity = serviceAccountIdentity(controllerNamespace, "csr-signer");
  const controllerKubeConfig = impersonatingKubeConfig(admin, identity.user, identity.groups);
  if (qps > 0) (controllerKubeConfig as ConnectionReusingKubeConfig).setRateLimit(qps, qps * 2);
  const running = await startController(controlPlane, [signerName], {
    workers: benchWorkers,
    leaderElection: false,
    kubeConfig: controllerKubeConfig,
  });
  await waitForSignerCondition(admin, signerObjectName, "Ready", "True");
  const decidedAt = new Map<string, number>();
  let refused = 0;
  const waiters = new Set<() => void>();
  const stopWatch = await watchDecisions(admin, (name, issued) => {
    if (decidedAt.has(name)) return;
    decidedAt.set(name, performance.now());
    if (!issued) refused++;
    for (const waiter of waiters) waiter();
  });
  const kubelet = asNode(admin, nodeName).makeApiClient(CertificatesV1beta1Api);
  const names: string[] = [];
  const createdAt: number[] = [];
  const counter = { retries: 0 };
  progress(
    `pod certificates [${label}]: ${podCertificateRequests} requests, ${throughputInFlight} in flight`,
  );
  try {
    const cpuBefore = cpuSnapshot(controlPlane);
    const firstCreate = performance.now();
    await runBounded(podCertificateRequests, throughputInFlight, async (i) => {
      const pod = podList[i % podList.length]!;
      createdAt[i] = performance.now();
      const created = await withRetries(
        () =>
          kubelet.createNamespacedPodCertificateRequest({
            namespace,
            body: {
              metadata: { name: `bench-${runIndex}-${i}` },
              spec: {
                signerName,
                podName: pod.name,
                podUID: pod.uid,
                serviceAccountName: "web",
                serviceAccountUID: pod.serviceAccountUID,
                nodeName,
                nodeUID,
                maxExpirationSeconds: 86_400,
                stubPKCS10Request: stubs[i]!,
              } as V1beta1PodCertificateRequest["spec"],
            },
          }),
        counter,
      );
      names[i] = created.metadata!.name!;
    });
    const complete = await new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (names.every((name) => decidedAt.has(name))) finish(true);
      };
      const timer = setTimeout(() => finish(false), issueTimeoutMs);
      const finish = (done: boolean): void => {
        clearTimeout(timer);
        waiters.delete(check);
        resolve(done);
      };
      waiters.add(check);
      check();
    });
    const cpu = cpuSpent(cpuBefore, cpuSnapshot(controlPlane));
    const createToIssued = names
      .map((name, i) => (decidedAt.has(name) ? decidedAt.get(name)! - createdAt[i]! : undefined))
      .filter((value): value is number => value !== undefined)
      .sort((a, b) => a - b);
    const lastIssued = Math.max(...names.map((name) => decidedAt.get(name) ?? 0));
    const span = lastIssued - firstCreate;
    const issued = createToIssued.length - refused;
    const result: PodCertificateResult = {
      label,
      issued,
      refused,
      complete,
      firstCreateToLastIssuedMs: span,
      perSecond: issued / (span / 1000),
      createToIssued,
      cpu,
    };
    progress(
      `  issued ${issued}/${podCertificateRequests} in ${ms(span)} (${result.perSecond.toFixed(1)}/s); ` +
        `p50 ${ms(percentile(createToIssued, 0.5))}, p99 ${ms(percentile(createToIssued, 0.99))}`,
    );
    return result;
  } finally {
    stopWatch();
    await running.stop();
    await admin
      .makeApiClient(CertificatesV1beta1Api)
      .deleteCollectionNamespacedPodCertificateRequest({ namespace });
  }
}

/** The Markdown section for BENCHMARKS.md. */
export function podCertificateReport(results: PodCertificateResult[]): string {
  if (results.length === 0) return "";
  const cell = (value: (r: PodCertificateResult) => string): string => results.map(value).join(" | ");
  const latency = (r: PodCertificateResult): string =>
    [0.5, 0.9, 0.99, 1].map((p) => ms(percentile(r.createToIssued, p))).join(" / ");
  const cpu = (r: PodCertificateResult): string =>
    Object.entries(r.cpu)
      .map(([name, seconds]) => `${name} ${seconds.toFixed(1)}`)
      .join(", ");
  return [
    "",
    `**${podCertificateRequests} PodCertificateRequests** (fresh ECDSA P-256 key and stub PKCS#10 request each, ` +
      `created as system:node:${nodeName} for ${pods} Pods bound to it, ${throughputInFlight} in flight; ` +
      `in-process controller, ${benchWorkers} workers). Latency: client clock right before create until the Issued ` +
      "condition is seen on a watch.",
    "",
    `| | ${cell((r) => r.label)} |`,
    `|---|${results.map(() => "---").join("|")}|`,
    `| issued / refused | ${cell((r) => `${r.issued} / ${r.refused}${r.complete ? "" : " (timed out)"}`)} |`,
    `| **sustained requests/s** | ${cell((r) => `**${r.perSecond.toFixed(1)}**`)} |`,
    `| **create → Issued p50 / p90 / p99 / max** | ${cell(latency)} |`,
    `| CPU s | ${cell(cpu)} |`,
    "",
  ].join("\n");
}

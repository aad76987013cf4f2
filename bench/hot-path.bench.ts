/**
 * `make bench-hot-path`: the controller's CPU per certificate in-process, without an API server: its
 * own work apart from HTTP, TLS and kube-apiserver, which share `make bench-controller`'s two cores
 * with it. Rounds still move 10-20 % (the garbage collector runs when it will). Each
 * Istio-shaped CSR goes through what the controller runs for it: three watch events decoded with
 * JSON.parse (created, approved by istiod, the echo of our certificate write) into the CSR cache's
 * transform and cache-event handlers, the work queue and a worker, the reconciler and signing
 * (parse and verify, policy, issuance, the audit log lines to /dev/null, metrics, Events into a
 * recorder whose writer drops them), and the status body serialized as the PUT would send it. The
 * write itself, HTTP and TLS are left out: `make bench-controller` measures those. Beside it, the
 * Node floor's in-process part (node-floor.ts without HTTP): the same JSON.parse of three events,
 * parse and verify, issuance, the PUT body. The difference is csr-signer's own work per certificate.
 *
 * Knobs: BENCH_HOT_PATH_CSRS (3000 per round), BENCH_HOT_PATH_ROUNDS (5), BENCH_HOT_PATH_WARM_UP
 * (3000). Prints Markdown.
 */
import { openSync, writeSync } from "node:fs";
import { cpus } from "node:os";
import { CsrFirstSeen } from "../src/controller/csr-first-seen.js";
import { cachedCsr } from "../src/controller/csr-cache.js";
import type { CsrApi } from "../src/controller/csr-api.js";
import { replacedStatus, type CsrObject } from "../src/controller/csr-object.js";
import { CsrReconciler } from "../src/controller/csr-reconciler.js";
import { enqueueOnCacheEvents } from "../src/controller/enqueue-on-cache-events.js";
import { ControllerMetrics } from "../src/controller/metrics.js";
import type { NodeAddressIndex } from "../src/controller/node-address-index.js";
import { ProgressMonitor } from "../src/controller/progress-monitor.js";
import { runWorker } from "../src/controller/run-worker.js";
import { WorkQueue } from "../src/controller/work-queue.js";
import { KubernetesEventRecorder } from "../src/kube/events.js";
import type { InformerEvent } from "../src/kube/informer.js";
import { jsonLogger } from "../src/logger.js";
import { parseCertificateRequest } from "../src/pki/certificate-request.js";
import { loadCertificateAuthority } from "../src/pki/certificate-authority.js";
import { issueLeafCertificate, systemIssuanceEnvironment } from "../src/pki/issuance.js";
import { csrOnlyInformers } from "../test/support/csr-only-informers.js";
import { makeTestCertificateAuthority } from "../test/support/pki.js";
import { signerRegistryFor } from "../test/support/ready-signer-registry.js";
import { istioRequestPem } from "./controller/istio.js";

const csrsPerRound = Number(process.env.BENCH_HOT_PATH_CSRS ?? 3000);
const rounds = Number(process.env.BENCH_HOT_PATH_ROUNDS ?? 5);
/** Certificates each way before the measured rounds: V8 keeps optimising the hot code for a few thousand. */
const warmUp = Number(process.env.BENCH_HOT_PATH_WARM_UP ?? 3000);
const signerName = "bench.csr-signer.test/foo";
const workers = 8;
const istiod = "system:serviceaccount:istio-system:istiod";
const usages = ["digital signature", "key encipherment", "server auth", "client auth"];

const ca = await makeTestCertificateAuthority({ name: "hot-path", rootKeyType: "ecdsa-p256" });
const requests = Array.from({ length: 50 }, (_, index) =>
  Buffer.from(istioRequestPem(index)).toString("base64"),
);

/** A watch event's JSON as kube-apiserver sends it for the CSR (managedFields included). */
function eventJson(
  type: string,
  name: string,
  index: number,
  phase: "created" | "approved" | "issued",
): string {
  const managedFields = [
    {
      manager: "pilot-discovery",
      operation: "Update",
      apiVersion: "certificates.k8s.io/v1",
      time: "2026-12-02T10:00:00Z",
      fieldsType: "FieldsV1",
      fieldsV1: {
        "f:spec": { "f:expirationSeconds": {}, "f:request": {}, "f:signerName": {}, "f:usages": {} },
      },
    },
  ];
  const conditions =
    phase === "created"
      ? undefined
      : [
          {
            type: "Approved",
            status: "True",
            reason: "Approved",
            message: "approved by istiod",
            lastUpdateTime: "2026-12-02T10:00:00Z",
            lastTransitionTime: "2026-12-02T10:00:00Z",
          },
        ];
  return JSON.stringify({
    type,
    object: {
      kind: "CertificateSigningRequest",
      apiVersion: "certificates.k8s.io/v1",
      metadata: {
        name,
        uid: `uid-${name}`,
        resourceVersion: String(index * 3 + (phase === "created" ? 1 : phase === "approved" ? 2 : 3)),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        managedFields,
      },
      spec: {
        request: requests[index % requests.length],
        signerName,
        expirationSeconds: 86400,
        usages,
        username: istiod,
        uid: "istiod-uid",
        groups: ["system:serviceaccounts", "system:serviceaccounts:istio-system", "system:authenticated"],
      },
      status:
        phase === "created"
          ? {}
          : { conditions, ...(phase === "issued" ? { certificate: "Q0VSVElGSUNBVEU=" } : {}) },
    },
  });
}

const devNull = openSync("/dev/null", "w");

/** csr-signer's path for `count` CSRs; resolves with the main thread's CPU µs per certificate. */
async function controllerRound(count: number, prefix: string): Promise<number> {
  const registry = await signerRegistryFor("foo", {
    caFiles: ca.files,
    namespaces: ["foo"],
    spec: {
      signerName,
      policy: {
        requesters: { registrationAuthorities: ["istio-system/istiod"] },
        tenants: { namespaces: ["foo"] },
        spiffe: { trustDomain: "cluster.local" },
      },
    },
  });
  const cache = new Map<string, CsrObject>();
  let deliver: (event: InformerEvent, csr: CsrObject) => void = () => undefined;
  const ours = (name: string): boolean => registry.forSignerName(name) !== undefined;
  const arrive = (json: string): void => {
    const { object } = JSON.parse(json) as { object: CsrObject };
    const cached = cachedCsr(object, ours);
    cache.set(object.metadata!.name!, cached);
    deliver("upsert", cached);
  };
  let issued = 0;
  let allIssued!: () => void;
  const done = new Promise<void>((resolve) => (allIssued = resolve));
  const api: CsrApi = {
    read: async () => undefined,
    patchStatus: async () => "ok",
    patchStatusJson: async () => "ok",
    replaceStatus: async (csr, status) => {
      JSON.stringify(replacedStatus(csr, status)); // the PUT's body
      const name = csr.metadata!.name!;
      const index = Number(name.slice(prefix.length));
      setImmediate(() => {
        arrive(eventJson("MODIFIED", name, index, "issued"));
        if (++issued === count) allIssued();
      });
      return "ok";
    },
  };
  const metrics = new ControllerMetrics();
  const logger = jsonLogger({ write: (line) => void writeSync(devNull, line) });
  const events = new KubernetesEventRecorder(
    { createEvent: async () => undefined },
    "csr-signer",
    "bench",
    logger,
  );
  const firstSeen = new CsrFirstSeen();
  const reconciler = new CsrReconciler(
    registry,
    { get: (name) => cache.get(name) },
    api,
    events,
    metrics,
    logger,
    systemIssuanceEnvironment,
    undefined,
    10_000,
    firstSeen,
  );
  const queue = new WorkQueue(undefined, undefined, metrics.queueMetrics("certificatesigningrequest"));
  enqueueOnCacheEvents(
    csrOnlyInformers((handler) => (deliver = handler)),
    registry,
    { csrs: queue, signers: { add: () => undefined } as unknown as WorkQueue },
    reconciler,
    {} as NodeAddressIndex,
    firstSeen,
  );
  const progress = new ProgressMonitor(600_000);
  const loops = Array.from({ length: workers }, () =>
    runWorker(queue, (key) => reconciler.reconcile(key), {
      name: "csr",
      progress,
      logger,
      metrics: { controller: "certificatesigningrequest", recorder: metrics },
      takingDropsDelayed: true,
    }),
  );
  const started = process.cpuUsage();
  for (let index = 0; index < count; index++) {
    const name = `${prefix}${index}`;
    arrive(eventJson("ADDED", name, index, "created"));
    arrive(eventJson("MODIFIED", name, index, "approved"));
    if (index % 20 === 19) await new Promise((resolve) => setImmediate(resolve)); // 20 in flight, as istiod's burst
  }
  await done;
  const spent = process.cpuUsage(started);
  queue.shutDown();
  await Promise.all(loops);
  return (spent.user + spent.system) / count;
}

/** The Node floor's in-process part for `count` CSRs: CPU µs per certificate. */
async function floorRound(count: number, prefix: string): Promise<number> {
  const authority = loadCertificateAuthority(ca.files, new Date());
  const started = process.cpuUsage();
  for (let index = 0; index < count; index++) {
    const name = `${prefix}${index}`;
    JSON.parse(eventJson("ADDED", name, index, "created"));
    const { object } = JSON.parse(eventJson("MODIFIED", name, index, "approved")) as {
      object: { spec: { request: string; usages: never[] }; status: object };
    };
    const request = parseCertificateRequest(Buffer.from(object.spec.request, "base64"));
    const issuedCertificate = await issueLeafCertificate(authority, request, {
      subject: request.subject,
      subjectAltNames: request.subjectAltNames,
      usages: object.spec.usages,
      lifetime: { defaultSeconds: 86_400, maximumSeconds: 86_400 },
      includeRoot: false,
    });
    JSON.stringify({
      ...object,
      status: { ...object.status, certificate: Buffer.from(issuedCertificate.chainPem).toString("base64") },
    });
    JSON.parse(eventJson("MODIFIED", name, index, "issued"));
  }
  const spent = process.cpuUsage(started);
  return (spent.user + spent.system) / count;
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const controller: number[] = [];
const floor: number[] = [];
await controllerRound(warmUp, "warm-"); // compile the hot code first
await floorRound(warmUp, "warm-floor-");
for (let round = 0; round < rounds; round++) {
  controller.push(await controllerRound(csrsPerRound, `c${round}-`));
  floor.push(await floorRound(csrsPerRound, `f${round}-`));
}
const each = (values: number[]): string => values.map((value) => value.toFixed(0)).join(" / ");
process.stdout.write(
  [
    "### The controller's hot path in-process (`make bench-hot-path`)",
    "",
    `Machine: ${cpus()[0]?.model.trim() ?? "unknown"}, ${cpus().length} cores; Node ${process.version}; ` +
      `${rounds} rounds of ${csrsPerRound} Istio-shaped CSRs each way, interleaved, after ${warmUp} warm-up each way; CPU µs per certificate (main process, all threads).`,
    "",
    "| | median | rounds |",
    "|---|---|---|",
    `| csr-signer (cache, queue, worker, reconcile, policy, issuance, logs, metrics, Events) | **${median(controller).toFixed(0)} µs** | ${each(controller)} |`,
    `| Node floor (JSON.parse of three events, parse and verify, issuance, the PUT body) | **${median(floor).toFixed(0)} µs** | ${each(floor)} |`,
    `| csr-signer's own work (the difference) | **${(median(controller) - median(floor)).toFixed(0)} µs** | |`,
    "",
  ].join("\n"),
);

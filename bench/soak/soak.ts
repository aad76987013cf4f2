/**
 * make soak: reliability under sustained load with faults injected the whole time, on the real control
 * plane (test/support/control-plane.ts), with two controller replicas as separate processes under
 * leader election (bench/soak/replicas.ts), a load generator (bench/soak/load.ts), faults on a seeded
 * schedule (bench/soak/faults.ts), and a ledger read from the API server and the certificates
 * themselves (bench/soak/observers.ts, bench/soak/ledger.ts). Prints the table for RELIABILITY.md.
 *
 * Knobs: SOAK_SECONDS (600), SOAK_SEED (random, printed), SOAK_RATE (CSRs/s, 50), SOAK_REFUSE_SHARE
 * (0.1). For diagnosis only (a run with either set is not the soak: the table says so): SOAK_FAULTS
 * ("none", or the fault kinds to draw from, comma-separated) and SOAK_CONTROLLER_ARGS (flags added to
 * both replicas' command line, e.g. "--kube-api-qps=100"). Exit code 1 when a target is missed. Logs and the full ledger go to a folder under
 * $CSR_SIGNER_CACHE/soak/ (printed), never into the work tree.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../../test/support/control-plane.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  installSignerManifests,
} from "../../test/support/controller.js";
import {
  allowToRequestCertificates,
  grantClusterRole,
  grantSignerVerbs,
  serviceAccountSubject,
} from "../../test/support/identities.js";
import { makeTestCertificateAuthority, type TestCertificateAuthority } from "../../test/support/pki.js";
import { delay, waitFor } from "../../test/support/wait.js";
import { progress, sourceRevision } from "../controller/common.js";
import { controllerRuntimeDescription, ensureBundle } from "../rss-child.js";
import { CpuSampler } from "./cpu.js";
import {
  faultKinds,
  faultSchedule,
  injectFault,
  restoreControlPlane,
  unrecoveredFault,
  type FaultKind,
  type FaultRecord,
} from "./faults.js";
import { acquisitionsOf, buildLedger, signaturesOf } from "./ledger.js";
import {
  LoadGenerator,
  signerNameOf,
  tenantNamespace,
  tenants,
  workloadServiceAccount,
  type Tenant,
} from "./load.js";
import { BundlePoller, LeasePoller, OutcomeWatch } from "./observers.js";
import { Random } from "./random.js";
import { formatReport } from "./report.js";
import { Replicas } from "./replicas.js";
import { formatTimeline, timeline } from "./timeline.js";

const seconds = Number(process.env.SOAK_SECONDS ?? 600);
const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const rate = Number(process.env.SOAK_RATE ?? 50);
const refuseShare = Number(process.env.SOAK_REFUSE_SHARE ?? 0.1);
const faultKindsChosen = chosenFaultKinds(process.env.SOAK_FAULTS);
const controllerArgs = (process.env.SOAK_CONTROLLER_ARGS ?? "").split(" ").filter(Boolean);
const leaseName = "csr-signer"; // the CLI's default --lease-name
const signerObjectName = (tenant: string): string => `soak-${tenant}`;
const caSecretName = (tenant: string): string => `soak-${tenant}-cacerts`;

const cache = process.env.CSR_SIGNER_CACHE || path.join(os.homedir(), ".cache", "csr-signer");
const outputDir = path.join(cache, "soak", new Date().toISOString().replace(/[:.]/g, "-"));
fs.mkdirSync(outputDir, { recursive: true });
const faultLog = fs.createWriteStream(path.join(outputDir, "faults.log"));
const log = (message: string): void => {
  const line = `${new Date().toISOString()} ${message}`;
  faultLog.write(line + "\n");
  progress(message);
};

let controlPlane: ControlPlane | undefined;
let replicas: Replicas | undefined;
let exitCode = 1;
try {
  progress(
    `soak: seed ${seed} (SOAK_SEED), ${seconds} s (SOAK_SECONDS), ${rate} CSRs/s; output ${outputDir}`,
  );
  if (faultKindsChosen.length < faultKinds.length || controllerArgs.length > 0)
    progress(
      `soak: diagnosis run, faults ${faultKindsChosen.join(", ") || "none"} (SOAK_FAULTS), controller flags added: ${controllerArgs.join(" ") || "none"} (SOAK_CONTROLLER_ARGS)`,
    );
  ensureBundle();
  controlPlane = await startControlPlane();
  const admin = controlPlane.kubeConfig();
  await installSignerManifests(controlPlane);
  const core = admin.makeApiClient(CoreV1Api);
  const authorities = new Map<string, TestCertificateAuthority>();
  for (const tenant of tenants) {
    await core.createNamespace({ body: { metadata: { name: tenantNamespace(tenant) } } });
    const authority = await makeTestCertificateAuthority({ name: `soak-${tenant}` });
    authorities.set(tenant, authority);
    await createCaSecret(admin, caSecretName(tenant), authority.files);
    await createSigner(admin, signerObjectName(tenant), {
      signerName: signerNameOf(tenant),
      certificateAuthority: { secretName: caSecretName(tenant) },
      issuance: { maxDuration: "168h" },
      policy: {
        requesters: { registrationAuthorities: ["istio-system/istiod"], tenantServiceAccounts: true },
        tenants: { namespaces: [tenantNamespace(tenant)] },
        spiffe: { trustDomain: "cluster.local" },
      },
    });
  }
  const signerNames = tenants.map(signerNameOf);
  // The controllers authenticate as the csr-signer service account (a client certificate naming it), so
  // they have exactly the RBAC of manifests/base, plus sign and attest on the soak's signer names.
  const controllerSubject = serviceAccountSubject(controllerNamespace, "csr-signer");
  await grantClusterRole(
    admin,
    controllerSubject,
    [
      {
        apiGroups: ["certificates.k8s.io"],
        resources: ["signers"],
        resourceNames: signerNames,
        verbs: ["sign", "attest"],
      },
    ],
    "soak-controller-sign",
  );
  const controllerKubeConfig = await controlPlane.clientCertificateKubeConfig(
    `system:serviceaccount:${controllerNamespace}:csr-signer`,
    ["system:serviceaccounts", `system:serviceaccounts:${controllerNamespace}`],
  );
  const controllerKubeconfigPath = path.join(controlPlane.dir, "controller.kubeconfig");
  fs.writeFileSync(controllerKubeconfigPath, controllerKubeConfig.exportConfig(), { mode: 0o600 });
  await grantSignerVerbs(admin, {
    subject: serviceAccountSubject("istio-system", "istiod"),
    signerNames,
    verbs: ["approve"],
  });
  await allowToRequestCertificates(
    admin,
    tenants.map((tenant) => serviceAccountSubject(tenantNamespace(tenant), workloadServiceAccount)),
  );
  // istiod and the workloads authenticate as their service accounts with client certificates, as
  // the controllers do: impersonation would cost the API server four authorizations per request
  // and keep every connection on HTTP/1.1.
  const asServiceAccount = (namespace: string, name: string): Promise<KubeConfig> =>
    controlPlane!.clientCertificateKubeConfig(`system:serviceaccount:${namespace}:${name}`, [
      "system:serviceaccounts",
      `system:serviceaccounts:${namespace}`,
    ]);
  const istiod = await asServiceAccount("istio-system", "istiod");
  const workloads = Object.fromEntries(
    await Promise.all(
      tenants.map(async (tenant) => [
        tenant,
        await asServiceAccount(tenantNamespace(tenant), workloadServiceAccount),
      ]),
    ),
  ) as Record<Tenant, KubeConfig>;

  replicas = new Replicas(controlPlane, controllerKubeconfigPath, outputDir, controllerArgs);
  const lease = new LeasePoller(admin, leaseName);
  lease.start();
  await Promise.all([replicas.start("a"), replicas.start("b")]);
  await waitFor("a Lease holder", async () => (lease.tenures.at(-1)?.holder ? true : undefined), 60_000);
  const bundles = new BundlePoller(admin);
  await waitFor(
    "every tenant's trust bundle to be published",
    async () => {
      await bundles.pollOnce();
      return [...bundles.roots.values()].every((roots) => roots.size > 0) || undefined;
    },
    60_000,
    { intervalMs: 500 },
  );
  bundles.start();
  const outcomes = new OutcomeWatch(admin);
  await outcomes.start();
  replicas.sampleRss();
  const cpu = new CpuSampler(controlPlane.dir, replicas, lease);
  cpu.start();

  const random = new Random(seed);
  const load = new LoadGenerator(istiod, workloads, admin, new Random(seed ^ 0x5eed), rate, refuseShare);
  const loadStartedAt = Date.now();
  log(`load started: ${rate} CSRs/s; Lease held by ${lease.tenures.at(-1)?.holder}`);
  load.start();

  const warmUpMs = Math.min(30_000, seconds * 100);
  const tailMs = Math.max(45_000, seconds * 150);
  const faultWindowMs = seconds * 1000 - warmUpMs - tailMs;
  const schedule = faultSchedule(random, faultWindowMs, [5_000, 15_000], faultKindsChosen);
  log(`fault schedule (${schedule.length}): ${schedule.join(", ")}`);
  await delay(warmUpMs);
  const faults: FaultRecord[] = [];
  const context = {
    controlPlane,
    admin,
    replicas,
    lease,
    random,
    authorities,
    caSecretName,
    signerObjectName,
    log,
  };
  for (const kind of schedule) {
    if (Date.now() - loadStartedAt > seconds * 1000 - tailMs) break;
    const startedAt = Date.now();
    // A fault the harness cannot undo (a restarted kube-apiserver not ready within 90 s on a loaded
    // machine) is a finding for the table, not the end of the run: recorded, no further faults, and
    // one more restart so the load can drain and the ledger be read.
    const fault = await injectFault(kind, context).catch(async (error: unknown) =>
      unrecoveredFault(kind, startedAt, error, await restoreControlPlane(kind, context.controlPlane)),
    );
    faults.push(fault);
    log(`  ${kind} done after ${((fault.endedAt - fault.startedAt) / 1000).toFixed(1)} s: ${fault.detail}`);
    if (fault.notRecovered !== undefined) {
      log("  no further faults: the system was not seen whole again");
      break;
    }
    await delay(random.between(5_000, 15_000));
  }
  const loadEndsAt = loadStartedAt + seconds * 1000;
  await delay(Math.max(0, loadEndsAt - Date.now()));
  log("load stopping; waiting for every request in flight");
  await load.stop();
  // Everything created is answered, or the wait ends (what is left is reported as pending, with its
  // reason). Asked of the watch's outcomes, not by listing every CSR each second: that list would take
  // the API server's and this process's CPU from the controllers while they drain the backlog.
  await waitFor(
    "every soak CSR to be answered",
    async () => ([...load.sent.keys()].every((name) => outcomes.outcomes.has(name)) ? true : undefined),
    60_000,
    { intervalMs: 1_000 },
  ).catch(() => undefined); // what is still pending is in the ledger
  // Undefined when even the final list failed (the API server still down after a fault): the ledger
  // then says what it cannot know instead of the run ending without its table.
  const remaining = await outcomes.remaining().catch((error: unknown) => {
    log(`the final list of soak CSRs failed: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  });
  cpu.stop();
  await outcomes.stop();
  await bundles.stop();
  await lease.stop();
  await replicas.stopAll();
  lease.addAcquisitions(acquisitionsOf(replicas.incarnations));

  const ledger = buildLedger({
    sent: load.sent,
    outcomes: outcomes.outcomes,
    remaining,
    faults,
    signatures: signaturesOf(replicas.incarnations),
    lease,
    bundles,
    incarnations: replicas.incarnations,
    counters: load.counters,
  });
  const progression = timeline({
    loadStartedAt,
    loadEndedAt: loadEndsAt,
    sent: load.sent,
    outcomes: outcomes.outcomes,
    faults,
    cpu,
  });
  fs.writeFileSync(
    path.join(outputDir, "ledger.json"),
    JSON.stringify(
      { seed, seconds, rate, faults, ledger, leaseTenures: lease.tenures, timeline: progression },
      null,
      2,
    ),
  );
  const report = formatReport(ledger, faults, cpu.mean(loadStartedAt, loadEndsAt), {
    seed,
    seconds,
    rate,
    revision: sourceRevision(),
    runtime: controllerRuntimeDescription,
    startedAt: new Date(loadStartedAt).toISOString(),
    diagnosis:
      faultKindsChosen.length < faultKinds.length || controllerArgs.length > 0
        ? `faults ${faultKindsChosen.join(", ") || "none"}, controller flags added: ${controllerArgs.join(" ") || "none"}`
        : undefined,
    loadAverage: os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(" "),
  });
  process.stdout.write(report.table + "\n");
  for (const line of report.details) progress(line);
  for (const line of formatTimeline(progression)) progress(line);
  progress(`ledger, fault log and controller logs: ${outputDir}`);
  exitCode = report.allMet ? 0 : 1;
} catch (error) {
  progress(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await replicas?.stopAll().catch(() => undefined); // best effort: the control plane's stop kills the rest
  await controlPlane?.stop();
  faultLog.end();
}
process.exit(exitCode);

/** SOAK_FAULTS: every kind (unset), none ("none"), or the kinds named (comma-separated). */
function chosenFaultKinds(text: string | undefined): FaultKind[] {
  if (text === undefined || text === "") return [...faultKinds];
  if (text === "none") return [];
  const named = text.split(",").map((kind) => kind.trim());
  const unknown = named.filter((kind) => !(faultKinds as readonly string[]).includes(kind));
  if (unknown.length > 0) throw new Error(`SOAK_FAULTS: unknown fault kinds ${unknown.join(", ")}`);
  return named as FaultKind[];
}

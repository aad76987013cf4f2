/**
 * `make bench-failover`: how long signing stops when the leader dies. Two replicas of the controller
 * as deployed (the bundle with the Dockerfile's node flags, separate processes, the default Lease
 * timings: 15 s duration, 10 s renew deadline, 2 s retry), on one Lease; the leader is killed with
 * SIGKILL (no release of the Lease, as when a node dies), and a CSR is approved at once. Two figures
 * per round, from the kill: until the other replica holds the Lease, and until that CSR has its
 * certificate. A fresh replica is then started, so each round begins with two.
 * BENCH_FAILOVER_ROUNDS (default 3). Results go to BENCHMARKS.md by hand.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { CoordinationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { findFreePorts, startControlPlane } from "../test/support/control-plane.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  installSignerManifests,
  submitApprovedServerCsr,
  waitForOutcome,
} from "../test/support/controller.js";
import { uniqueName } from "../test/support/identities.js";
import { makeTestCertificateAuthority } from "../test/support/pki.js";
import { waitFor } from "../test/support/wait.js";
import { csrSignerNodeArgs } from "./rss-child.js";

const rounds = Number(process.env.BENCH_FAILOVER_ROUNDS ?? 3);
const leaseName = "bench-failover";
const signerName = "bench.csr-signer.test/failover";

interface Replica {
  identity: string;
  child: ChildProcess;
  probePort: number;
}

async function startReplica(kubeconfigPath: string, identity: string): Promise<Replica> {
  const [probePort] = await findFreePorts(1);
  const child = spawn(
    process.execPath,
    csrSignerNodeArgs([
      "controller",
      `--kubeconfig=${kubeconfigPath}`,
      `--namespace=${controllerNamespace}`,
      "--leader-elect=true",
      `--lease-name=${leaseName}`,
      "--metrics-address=",
      `--probe-address=127.0.0.1:${probePort}`,
    ]),
    { env: { ...process.env, POD_NAME: identity }, stdio: "ignore" },
  );
  // Ready: caches synced, whether or not it leads.
  await waitFor(
    `${identity} ready`,
    async () => {
      const response = await fetch(`http://127.0.0.1:${probePort}/readyz`).catch(() => undefined);
      return response?.status === 200 ? true : undefined;
    },
    120_000,
  );
  return { identity, child, probePort: probePort! };
}

async function leaseHolder(admin: KubeConfig): Promise<string | undefined> {
  const lease = await admin
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: leaseName, namespace: controllerNamespace })
    .catch(() => undefined);
  return lease?.spec?.holderIdentity ?? undefined;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const controlPlane = await startControlPlane();
const replicas: Replica[] = [];
try {
  const admin = controlPlane.kubeConfig();
  await installSignerManifests(controlPlane);
  const ca = await makeTestCertificateAuthority({ name: "bench-failover" });
  await createCaSecret(admin, "bench-failover-cacerts", ca.files);
  await createSigner(admin, "bench-failover", {
    signerName,
    certificateAuthority: { secretName: "bench-failover-cacerts" },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  });
  let started = 0;
  for (let i = 0; i < 2; i++)
    replicas.push(await startReplica(controlPlane.kubeconfigPath, `replica-${started++}`));
  const warmUp = uniqueName("csr-warm-up");
  await submitApprovedServerCsr(admin, warmUp, signerName);
  await waitForOutcome(admin, warmUp, 60_000);

  const toLease: number[] = [];
  const toCertificate: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const holder = await waitFor("a leader", () => leaseHolder(admin), 60_000);
    const leader = replicas.find((replica) => replica.identity === holder);
    if (!leader)
      throw new Error(`the Lease is held by ${holder}, none of ${replicas.map((r) => r.identity)}`);
    const killedAt = performance.now();
    leader.child.kill("SIGKILL");
    replicas.splice(replicas.indexOf(leader), 1);
    const name = uniqueName("csr-failover");
    await submitApprovedServerCsr(admin, name, signerName);
    const leaseTaken = (async () => {
      await waitFor(
        "another leader",
        async () => ((await leaseHolder(admin)) !== holder ? true : undefined),
        60_000,
        {
          intervalMs: 100,
        },
      );
      return performance.now() - killedAt;
    })();
    const outcome = await waitForOutcome(admin, name, 60_000);
    const issued = performance.now() - killedAt;
    if (outcome.certificatePem === undefined)
      throw new Error(`${name} was not issued: ${JSON.stringify(outcome)}`);
    toLease.push(await leaseTaken);
    toCertificate.push(issued);
    console.log(
      `round ${round}: ${holder} killed; Lease taken after ${(toLease.at(-1)! / 1000).toFixed(1)} s, ` +
        `certificate after ${(issued / 1000).toFixed(1)} s`,
    );
    replicas.push(await startReplica(controlPlane.kubeconfigPath, `replica-${started++}`));
  }
  console.log(
    `failover over ${rounds} rounds (SIGKILL of the leader, Lease 15 s / 10 s / 2 s): Lease taken after ` +
      `median ${(median(toLease) / 1000).toFixed(1)} s (${toLease.map((ms) => (ms / 1000).toFixed(1)).join(", ")}), ` +
      `first certificate after median ${(median(toCertificate) / 1000).toFixed(1)} s ` +
      `(${toCertificate.map((ms) => (ms / 1000).toFixed(1)).join(", ")})`,
  );
} finally {
  for (const replica of replicas) replica.child.kill("SIGKILL");
  await controlPlane.stop();
}

/**
 * make bench-status-write: what kube-apiserver spends on the certificate write itself, a merge patch
 * of a CSR's /status (what csr-signer sent before) against a PUT of /status built from the cached
 * copy (replacedStatus, what it sends now when statusReplaceable allows). Per round, BENCH_WRITES
 * (1000) Istio-shaped CSRs are created and approved, read back and cut as the controller's cache
 * cuts them, then written by this one process, 20 at a time, one way; kube-apiserver's and etcd's
 * CPU (utime + stime from /proc) is read around the writes only. BENCH_ROUNDS (4) rounds of each,
 * alternating (patch, put, put, patch, ...), so neither always runs on a warmer server.
 */
import { CertificatesV1Api } from "@kubernetes/client-node";
import { cachedCsr } from "../src/controller/csr-cache.js";
import { statusReplaceable, type CsrObject } from "../src/controller/csr-object.js";
import { KubeApi } from "../src/kube/api-client.js";
import { kubernetesCsrApi } from "../src/kube/csr-api-binding.js";
import { startControlPlane } from "../test/support/control-plane.js";
import { createTestLeafCertificate, makeTestCertificateAuthority } from "../test/support/pki.js";
import { runBounded } from "./controller/common.js";
import { cpuSnapshot, cpuSpent } from "./controller/cpu.js";
import { approve, csrBody, istioRequestPem } from "./controller/istio.js";

const writes = Number(process.env.BENCH_WRITES ?? 1000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
const inFlight = 20;

const controlPlane = await startControlPlane();
try {
  const admin = controlPlane.kubeConfig();
  const certificates = admin.makeApiClient(CertificatesV1Api);
  const csrApi = kubernetesCsrApi(KubeApi.for(admin));
  const authority = (await makeTestCertificateAuthority({ name: "status-write" })).authority;
  const certificate = Buffer.from(await createTestLeafCertificate(authority)).toString("base64");
  const results: Record<"patch" | "put", { apiserver: number[]; etcd: number[] }> = {
    patch: { apiserver: [], etcd: [] },
    put: { apiserver: [], etcd: [] },
  };
  for (let round = 0; round < rounds * 2; round++) {
    const way = [0, 3].includes(round % 4) ? "patch" : "put";
    const names = Array.from({ length: writes }, (_, i) => `write-${round}-${i}`);
    const copies: CsrObject[] = [];
    await runBounded(writes, inFlight, async (i) => {
      const created = await certificates.createCertificateSigningRequest({
        body: csrBody(names[i]!, istioRequestPem(i)),
      });
      await approve(certificates, created);
      const stored = await certificates.readCertificateSigningRequest({ name: names[i]! });
      copies[i] = cachedCsr(stored, () => true);
    });
    if (!copies.every(statusReplaceable)) throw new Error("a bench CSR's cached copy is not replaceable");
    const before = cpuSnapshot(controlPlane);
    await runBounded(writes, inFlight, async (i) => {
      const copy = copies[i]!;
      const outcome =
        way === "put"
          ? await csrApi.replaceStatus(copy, { certificate })
          : await csrApi.patchStatus(copy.metadata!.name!, copy.metadata!.resourceVersion!, { certificate });
      if (outcome !== "ok") throw new Error(`${way} of ${copy.metadata!.name} answered ${outcome}`);
    });
    const spent = cpuSpent(before, cpuSnapshot(controlPlane));
    results[way].apiserver.push(((spent["kube-apiserver"] ?? 0) * 1000) / writes);
    results[way].etcd.push(((spent.etcd ?? 0) * 1000) / writes);
    process.stderr.write(
      `round ${round + 1}: ${way}, kube-apiserver ${results[way].apiserver.at(-1)!.toFixed(2)} ms per write\n`,
    );
    await KubeApi.for(admin).delete("/apis/certificates.k8s.io/v1/certificatesigningrequests");
  }
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const list = (values: number[]): string => values.map((v) => v.toFixed(2)).join(" / ");
  process.stdout.write(
    `| ${writes} writes, ${inFlight} in flight | kube-apiserver ms per write (each round) | mean | etcd ms per write (mean) |\n` +
      `|---|---|---|---|\n` +
      (["patch", "put"] as const)
        .map(
          (way) =>
            `| ${way === "patch" ? "merge patch of /status" : "PUT of /status"} | ${list(results[way].apiserver)} | ` +
            `**${mean(results[way].apiserver).toFixed(2)}** | ${mean(results[way].etcd).toFixed(2)} |`,
        )
        .join("\n") +
      "\n",
  );
} finally {
  await controlPlane.stop();
}
process.exit(0);

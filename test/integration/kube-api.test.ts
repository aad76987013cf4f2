/**
 * KubeApi, the JSON client every API call of the controller goes through, against the real API server:
 * errors carry the HTTP code, and the client rate limit holds back reads and writes but not Events,
 * the Lease's calls or Signer status writes.
 */
import { expect } from "chai";
import { KubeApi } from "../../src/kube/api-client.js";
import { apiErrorCode, type ConnectionReusingKubeConfig } from "../../src/kube/client.js";
import { kubernetesCsrApi } from "../../src/kube/csr-api-binding.js";
import { kubernetesLeaseStore, type Lease } from "../../src/kube/leader-election.js";
import { signerApiGroup, signerApiVersion, signerPlural } from "../../src/api/signer.js";
import { rateLimitedSignerStatusWriter } from "../../src/controller/signer-status-writer.js";
import {
  createSigner,
  deleteSigner,
  installSignerManifests,
  readCsr,
  submitApprovedServerCsr,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { settledNow } from "../support/wait.js";
import { createTestLeafCertificate, makeTestCertificateAuthority } from "../support/pki.js";
import { controlPlane } from "./setup.js";

const configMaps = "/api/v1/namespaces/default/configmaps";

/**
 * A client whose rate limit (a burst of one, then one request per 10 s) is drained, and the call
 * held back behind it (not awaited: it goes out 10 s later, after the test). Whatever waits for
 * that limiter now waits 10 s or more.
 */
async function drainedClientLimit(): Promise<{ api: KubeApi; heldBack: Promise<unknown> }> {
  const kubeConfig = controlPlane().kubeConfig() as ConnectionReusingKubeConfig;
  kubeConfig.setRateLimit(0.1, 1);
  const api = KubeApi.for(kubeConfig);
  await api.get(configMaps); // spends the burst
  const heldBack = api.get(configMaps);
  heldBack.catch(() => undefined);
  return { api, heldBack };
}

describe("KubeApi on the real API server", function () {
  it("answers a missing object with undefined and a refused write with its HTTP code", async function () {
    const api = KubeApi.for(controlPlane().kubeConfig());
    const name = uniqueName("kube-api");
    expect(await api.getIfExists(`${configMaps}/${name}`)).to.equal(undefined);
    const body = { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { a: "1" } };
    await api.create(configMaps, body);
    const conflict = await api.create(configMaps, body).catch((error: unknown) => error);
    expect(apiErrorCode(conflict)).to.equal(409);
    await api.delete(`${configMaps}/${name}`);
    expect(await api.getIfExists(`${configMaps}/${name}`)).to.equal(undefined);
  });

  it("holds reads and writes to the client rate limit, but not Events (they have a budget of their own)", async function () {
    // The second limited call waits 10 s, the Event not at all (it takes milliseconds; the wait is
    // kept short so that the held-back call ends soon after).
    const { api, heldBack } = await drainedClientLimit();
    const name = uniqueName("kube-api-event");
    const event = api.createOutsideRateLimit("/api/v1/namespaces/default/events", {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name },
      involvedObject: { apiVersion: "v1", kind: "Namespace", name: "default" },
      reason: "KubeApiTest",
      message: "an Event outside the client rate limit",
      type: "Normal",
      source: { component: "csr-signer-test" },
    });
    await event; // would hang (and time the test out) if Events waited for the limiter
    expect(await settledNow(heldBack)).to.equal(false);
    const written = await KubeApi.for(controlPlane().kubeConfig()).get<{ reason: string }>(
      `/api/v1/namespaces/default/events/${name}`,
    );
    expect(written.reason).to.equal("KubeApiTest");
  });

  // Under load a leader's renewal queued behind the CSR and PodCertificateRequest writes, landed
  // past its renew deadline and leadership flapped: the Lease has a limiter of its own, as
  // kube-controller-manager's leader-election client is a client of its own.
  it("Lease reads and writes do not wait behind requests that drained the client rate limit", async function () {
    // Each call queued behind `heldBack` would wait 10 s or more: three of them time the test out.
    this.timeout(8_000);
    const { api, heldBack } = await drainedClientLimit();
    const name = uniqueName("lease-own-limit");
    const store = kubernetesLeaseStore(api, "default", name);
    const renewTime = (ms: number): string => new Date(ms).toISOString().replace(/Z$/, "000Z");
    await store.create({
      metadata: { name, namespace: "default" },
      spec: { holderIdentity: "kube-api-test", leaseDurationSeconds: 15, renewTime: renewTime(Date.now()) },
    });
    const lease: Lease = (await store.read())!;
    const renewedAt = renewTime(Date.now() + 1_000);
    await store.replace({ ...lease, spec: { ...lease.spec, renewTime: renewedAt } });
    expect((await store.read())?.spec?.renewTime).to.equal(renewedAt);
    expect(await settledNow(heldBack)).to.equal(false);
  });

  // A burst of certificate writes at the client limit held the issued counts and conditions of every
  // Signer behind it, and each status write took a certificate write's turn: they have a limiter of
  // their own (5/s, burst 10), as the Lease's calls and Events do.
  it("Signer status writes do not wait behind requests that drained the client rate limit", async function () {
    this.timeout(8_000); // queued behind `heldBack`, the write would wait 10 s
    await installSignerManifests(controlPlane());
    const admin = controlPlane().kubeConfig();
    const objectName = uniqueName("status-own-limit");
    await createSigner(admin, objectName, {
      signerName: `status-limit.csr-signer.test/${objectName}`,
      certificateAuthority: { secretName: "none" },
      policy: { requesters: { users: ["nobody"] } },
    });
    try {
      const { api, heldBack } = await drainedClientLimit();
      const writer = rateLimitedSignerStatusWriter(api);
      expect(writer.waitMs(objectName), "a token saved up").to.equal(0);
      expect(await writer.write(objectName, { issuedCount: 7 })).to.equal("ok");
      const written = await KubeApi.for(admin).get<{ status?: { issuedCount?: number } }>(
        `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}/${objectName}`,
      );
      expect(written.status?.issuedCount).to.equal(7);
      expect(await settledNow(heldBack)).to.equal(false);
    } finally {
      await deleteSigner(admin, objectName);
    }
  });

  // Found by the fault soak (make soak): a leader frozen (SIGSTOP) while its certificate write waited in
  // the rate limiter sent it after SIGCONT, though another replica had taken the Lease meanwhile.
  it("a CSR status write whose lease was lost while it waited for the rate limiter is not sent", async function () {
    const admin = controlPlane().kubeConfig();
    const name = uniqueName("csr-lease-lost");
    await submitApprovedServerCsr(admin, name, "kube-api.csr-signer.test/lease");
    const csr = (await readCsr(admin, name))!;
    const kubeConfig = controlPlane().kubeConfig() as ConnectionReusingKubeConfig;
    kubeConfig.setRateLimit(2, 1); // a burst of one, then one request per 500 ms
    const api = KubeApi.for(kubeConfig);
    await api.get(configMaps); // spends the burst: the write below waits in the limiter
    const authority = (await makeTestCertificateAuthority({ name: "lease-lost" })).authority;
    const certificate = Buffer.from(await createTestLeafCertificate(authority)).toString("base64");
    let leading = true;
    const csrApi = kubernetesCsrApi(api, () => leading);
    const write = csrApi.patchStatus(name, csr.metadata!.resourceVersion!, { certificate });
    expect(await settledNow(write)).to.equal(false);
    leading = false; // the renew deadline passed while the write waited
    expect(await write).to.equal("not sent");
    expect((await readCsr(admin, name))?.status?.certificate).to.equal(undefined);
    // Leading again, with the same (still current) copy: the write goes out.
    leading = true;
    expect(await csrApi.patchStatus(name, csr.metadata!.resourceVersion!, { certificate })).to.equal("ok");
    expect((await readCsr(admin, name))?.status?.certificate).to.equal(certificate);
  });
});

/**
 * The controller's informers against the faults it must survive, on the real control plane:
 * a kube-apiserver restart (whose new watch cache answers the old resourceVersions 410 Gone, with etcd
 * history compacted meanwhile), and a silent stall (kube-apiserver frozen with SIGSTOP longer than the
 * watchdog allows).
 *
 * The control plane is shared with every other integration test file of the run: each fault is undone
 * in a finally (resumed, restarted) and the after hook makes sure kube-apiserver answers /readyz again.
 */
import https from "node:https";
import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { CertificatesV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import { makeTestCertificateAuthority } from "../support/pki.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readCsr,
  submitApprovedServerCsr,
  startController,
  waitForOutcome,
  type RunningController,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { uniqueName } from "../support/identities.js";
import { ResilientInformer } from "../../src/kube/informer.js";
import type { CsrObject } from "../../src/controller/csr-object.js";
import { compactEtcdHistory } from "../support/control-plane/etcd-compaction.js";
import { controlPlane } from "./setup.js";

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const watchdogMs = 2000;
const watchdogMessage = "watch silent too long; restarting it";

describe("informer faults: kube-apiserver restart (410 Gone relist), silent stall (watchdog)", function () {
  // The informers back off up to 45 s after repeated failures: room for that, though it rarely takes long.
  this.timeout(60_000);
  const suffix = uniqueName("i").slice(2);
  const signerName = `informer-faults.csr-signer.test/foo-${suffix}`;
  const objectName = `informer-faults-${suffix}`;
  const secretName = `informer-faults-cacerts-${suffix}`;
  let admin: KubeConfig;
  let running: RunningController;

  before(async function () {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    const ca = await makeTestCertificateAuthority({ name: `informer-faults-${suffix}` });
    await createCaSecret(admin, secretName, ca.files);
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    // Default resyncMs (10 min): a periodic replay must not be what rescues a CSR here, the watch must.
    running = await startController(controlPlane(), [signerName], { watchdogMs });
    await waitForReadyz(200);
  });

  after(async function () {
    this.timeout(120_000);
    await running?.stop();
    // Whatever happened above, leave kube-apiserver running and ready for the next test files.
    await controlPlane().resumeApiServer();
    await deleteSigner(admin, objectName);
  });

  /** The controller's /readyz status code (its probe server is the second address, after /metrics). */
  async function readyz(): Promise<number> {
    const probeAddress = running.controller.addresses()[1];
    const response = await fetch(`http://${probeAddress}/readyz`, { signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.status;
  }

  function waitForReadyz(status: number, timeoutMs = 50_000): Promise<true> {
    return waitFor(
      `the controller's /readyz to answer ${status}`,
      async () => ((await readyz()) === status ? true : undefined),
      timeoutMs,
    );
  }

  // The admin identity (CN=admin) is the requester: the Signer allows user "admin".
  const requestAndApprove = (name: string): Promise<void> => submitApprovedServerCsr(admin, name, signerName);

  async function expectIssued(name: string): Promise<void> {
    const outcome = await waitForOutcome(admin, name, 30_000);
    expect(outcome.failed, name).to.equal(undefined);
    expect(outcome.certificatePem, name).to.match(/^-----BEGIN CERTIFICATE-----/);
  }

  interface LogEntry {
    msg?: string;
    path?: string;
    silentMs?: number;
  }
  const logEntries = (from = 0): LogEntry[] =>
    running.logs.slice(from).map((line) => JSON.parse(line) as LogEntry);

  describe("kube-apiserver restarted (SIGTERM, same flags and port; etcd history compacted while it is down)", () => {
    const justBefore = Array.from({ length: 5 }, () => uniqueName("csr-before-restart"));
    let oldResourceVersion: string;
    /** What /readyz answered while kube-apiserver was down. */
    const whileDown = { becameNotReady: false, afterwards: [] as number[], problem: "" };

    before(async function () {
      this.timeout(120_000);
      await waitForReadyz(200);
      for (const name of justBefore) await requestAndApprove(name);
      oldResourceVersion = (await readCsr(admin, justBefore.at(-1)!))!.metadata!.resourceVersion!;
      // No waiting: the restart begins while these approvals may still be in flight.
      await controlPlane().restartApiServer({
        whileDown: async () => {
          try {
            await compactEtcd();
            await waitForReadyz(503, 5_000);
            whileDown.becameNotReady = true;
            // Still down: /readyz must keep saying so, not only blink.
            for (let sample = 0; sample < 10; sample++) {
              whileDown.afterwards.push(await readyz());
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
          } catch (error) {
            whileDown.problem = String(error);
          }
        },
      });
    });

    const compactEtcd = (): Promise<void> =>
      compactEtcdHistory(controlPlane().etcdUrl, `csr-signer-test/${suffix}`);

    it("the controller's /readyz answers 503 while kube-apiserver is down, and keeps answering it", () => {
      expect(whileDown.problem, "while kube-apiserver was down").to.equal("");
      expect(whileDown.becameNotReady, "/readyz answered 503 while kube-apiserver was down").to.equal(true);
      expect(whileDown.afterwards, "/readyz samples while kube-apiserver stayed down").to.satisfy(
        (codes: number[]) => codes.length > 0 && codes.every((code) => code === 503),
      );
    });

    it("the controller's /readyz answers 200 again once kube-apiserver is back", async () => {
      await waitForReadyz(200);
    });

    it("every CSR approved just before the restart is issued: nothing lost", async () => {
      for (const name of justBefore) await expectIssued(name);
    });

    it("a CSR created and approved after the restart is issued", async () => {
      const name = uniqueName("csr-after-restart");
      await requestAndApprove(name);
      await expectIssued(name);
    });

    it("the CSR informer relisted: its old resourceVersion is 410 Gone on the new kube-apiserver", async () => {
      // The condition the informer met: watching from before the restart is refused...
      const first = await firstWatchEvent(admin, csrPath, oldResourceVersion);
      expect(first.type).to.equal("ERROR");
      expect(first.object.code).to.equal(410);
      // ...and it recovered by listing again (the only reason it lists after the first time). Nothing
      // but this controller lists CSRs, and the request counters started from zero with the new process.
      await waitForReadyz(200);
      const lists = await requestCount("LIST", "certificatesigningrequests");
      expect(lists, "successful CSR LISTs on the restarted kube-apiserver").to.be.at.least(1);
    });
  });

  describe("kube-apiserver frozen (SIGSTOP) for longer than watchdogMs, then continued", () => {
    it("the watchdog aborts the silent watches, /readyz answers 503, and after SIGCONT the controller recovers and issues a new CSR", async function () {
      this.timeout(90_000);
      await waitForReadyz(200);
      const mark = running.logs.length;
      await controlPlane().pauseApiServer();
      let stalled: LogEntry | undefined;
      try {
        stalled = await waitFor(
          "the watchdog to abort the silent CSR watch",
          async () =>
            logEntries(mark).find((entry) => entry.msg === watchdogMessage && entry.path === csrPath),
          15_000,
        );
        await waitForReadyz(503, 15_000);
      } finally {
        await controlPlane().resumeApiServer();
      }
      expect(stalled?.silentMs, "silence the watchdog measured").to.be.greaterThan(watchdogMs);
      await waitForReadyz(200);
      const name = uniqueName("csr-after-stall");
      await requestAndApprove(name);
      await expectIssued(name);
    });
  });

  /** apiserver_request_total for one verb and resource, successful requests only. */
  async function requestCount(verb: string, resource: string): Promise<number> {
    const metrics = await adminGet(admin, "/metrics");
    let total = 0;
    for (const line of metrics.split("\n")) {
      if (
        line.startsWith("apiserver_request_total{") &&
        line.includes('code="200"') &&
        line.includes(`verb="${verb}"`) &&
        line.includes(`resource="${resource}"`)
      )
        total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return total;
  }
});

/** The first event of a watch from `resourceVersion`, as the admin. */
async function firstWatchEvent(
  kubeConfig: KubeConfig,
  path: string,
  resourceVersion: string,
): Promise<{ type: string; object: { code?: number; message?: string } }> {
  let controller: AbortController | undefined;
  try {
    return await new Promise((resolve, reject) => {
      new Watch(kubeConfig)
        .watch(
          path,
          { resourceVersion },
          (type: string, object: { code?: number; message?: string }) => resolve({ type, object }),
          (error: unknown) => reject(new Error(`the watch ended without an event: ${String(error)}`)),
        )
        .then((started) => (controller = started), reject);
    });
  } finally {
    controller?.abort();
  }
}

describe("informer faults: a watch ERROR event other than 410", function () {
  this.timeout(60_000);

  it("is a failure retried with backoff (logged with its code), not an immediate re-watch", async () => {
    const admin = controlPlane().kubeConfig();
    const relay = await startErrorInjectingRelay(admin);
    const logs: { message: string; fields: Record<string, unknown> }[] = [];
    const informer = new ResilientInformer<CsrObject>(relay.kubeConfig, {
      path: csrPath,
      maxStringBytes: 64 * 1024, // the controller's CSR informer reads lists and watches as bytes
      logger: (message, fields = {}) => logs.push({ message, fields }),
    });
    try {
      await informer.start();
      const failure = await waitFor("the ERROR event logged as a failure with a retry delay", async () =>
        logs.find((entry) => entry.message === "list/watch failed; retrying"),
      );
      expect(failure.fields.error).to.equal(
        "HTTP 500: watch ERROR event: 500 InternalError: injected by the test",
      );
      expect(failure.fields.retryInMs).to.be.a("number").and.greaterThan(0);
      // Logged at the first failure: the watch was not re-opened at once in between.
      expect(relay.watches()).to.equal(1);
    } finally {
      informer.stop();
      relay.close();
    }
  });
});

describe("informer faults: an object the transform cannot handle", function () {
  this.timeout(60_000);

  it("is logged and left out of the cache; the list and the watch go on for every other object", async () => {
    const admin = controlPlane().kubeConfig();
    const poison = uniqueName("csr-poison");
    const listed = uniqueName("csr-listed");
    const watched = uniqueName("csr-watched");
    const signerName = "example.com/transform-test";
    await submitApprovedServerCsr(admin, poison, signerName, "poison.example.test");
    await submitApprovedServerCsr(admin, listed, signerName, "listed.example.test");
    const logs: { message: string; fields: Record<string, unknown> }[] = [];
    const informer = new ResilientInformer<CsrObject>(admin, {
      path: csrPath,
      maxStringBytes: 64 * 1024,
      transform: (csr) => {
        if (csr.metadata?.name === poison) throw new Error("cannot project this one");
        return csr;
      },
      logger: (message, fields = {}) => logs.push({ message, fields }),
    });
    try {
      await informer.start();
      expect(informer.get(listed), "listed after the poison object").to.not.equal(undefined);
      expect(informer.get(poison)).to.equal(undefined);
      // The watch delivers the poison object's deletion between two new CSRs: all handled.
      await submitApprovedServerCsr(admin, uniqueName("csr-after"), signerName, "after.example.test");
      await admin.makeApiClient(CertificatesV1Api).deleteCertificateSigningRequest({ name: poison });
      await submitApprovedServerCsr(admin, watched, signerName, "watched.example.test");
      await waitFor("the CSR created after the poison object's watch events", async () =>
        informer.get(watched),
      );
      expect(informer.get(poison)).to.equal(undefined);
      const failures = logs.filter(
        (entry) => entry.message === "informer transform failed: object not cached",
      );
      expect(failures.length).to.be.greaterThan(0);
      expect(failures[0]!.fields.name).to.equal(poison);
      expect(logs.map((entry) => entry.message)).not.to.include("list/watch failed; retrying");
    } finally {
      informer.stop();
    }
  });
});

/**
 * A plain-HTTP relay to kube-apiserver (with the admin's client certificate) that puts one ERROR
 * event (code 500) at the head of every watch response, as kube-apiserver sends on a storage error.
 */
async function startErrorInjectingRelay(
  admin: KubeConfig,
): Promise<{ kubeConfig: KubeConfig; watches: () => number; close: () => void }> {
  const cluster = admin.getCurrentCluster()!;
  const user = admin.getCurrentUser()!;
  const decode = (base64: string): Buffer => Buffer.from(base64, "base64");
  const tls = { ca: decode(cluster.caData!), cert: decode(user.certData!), key: decode(user.keyData!) };
  let watches = 0;
  const server = http.createServer((request, response) => {
    const { host: _host, ...headers } = request.headers; // https.request sets the upstream's own
    const watching = new URL(request.url!, "http://relay").searchParams.get("watch") === "true";
    if (watching) watches++;
    const upstream = https.request(
      `${cluster.server}${request.url}`,
      { method: request.method, headers, ...tls },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        if (watching)
          response.write(
            JSON.stringify({
              type: "ERROR",
              object: {
                kind: "Status",
                apiVersion: "v1",
                status: "Failure",
                reason: "InternalError",
                message: "injected by the test",
                code: 500,
              },
            }) + "\n",
          );
        answer.pipe(response);
      },
    );
    upstream.on("error", () => response.destroy()); // the informer sees a failed request
    response.on("close", () => upstream.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "relay", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "relay" }],
    contexts: [{ name: "relay", cluster: "relay", user: "relay" }],
    currentContext: "relay",
  });
  return {
    kubeConfig,
    watches: () => watches,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** GET of a non-resource path (e.g. /metrics) with the admin's client certificate; its body as text. */
function adminGet(kubeConfig: KubeConfig, path: string): Promise<string> {
  const cluster = kubeConfig.getCurrentCluster();
  const user = kubeConfig.getCurrentUser();
  if (!cluster?.caData || !user?.certData || !user.keyData)
    throw new Error("admin kubeconfig without TLS data");
  const decode = (base64: string): Buffer => Buffer.from(base64, "base64");
  return new Promise((resolve, reject) => {
    const request = https.get(
      `${cluster.server}${path}`,
      { ca: decode(cluster.caData!), cert: decode(user.certData!), key: decode(user.keyData!), agent: false },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () =>
          response.statusCode === 200
            ? resolve(body)
            : reject(new Error(`GET ${path}: HTTP ${response.statusCode}: ${body.slice(0, 200)}`)),
        );
        response.on("error", reject);
      },
    );
    request.setTimeout(10_000, () => request.destroy(new Error(`GET ${path}: no answer within 10 s`)));
    request.on("error", reject);
  });
}

/**
 * /metrics as the manifests deploy it, against the real API server: HTTPS with a self-signed
 * certificate, a bearer token checked by TokenReview and SubjectAccessReview (no token 401, a token
 * without the csr-signer-metrics-reader ClusterRole 403, with it 200), answers cached; and the series
 * the alert rules (manifests/monitoring) read are present in a real scrape with the labels the rule
 * unit tests give them. With --metrics-cert-dir, the operator's certificate is served and a renewed
 * one taken without a restart.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { makeTestCertificateAuthority } from "../support/pki.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  kubectl,
  startController,
  submitApprovedServerCsr,
  type RunningController,
} from "../support/controller.js";
import { bindClusterRole, serviceAccountSubject, uniqueName } from "../support/identities.js";
import { waitFor } from "../support/wait.js";
import { repositoryRoot } from "../support/testbin.js";
import { controlPlane } from "./setup.js";
import { createSelfSignedServingCertificate } from "../../src/pki/self-signed-serving.js";

/** GET https://address/metrics (the self-signed certificate is not verified, as Prometheus' insecureSkipVerify). */
function scrape(
  address: string,
  token?: string,
): Promise<{ status: number; body: string; certificate: string }> {
  const separator = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: address.slice(0, separator),
        port: Number(address.slice(separator + 1)),
        path: "/metrics",
        rejectUnauthorized: false,
        agent: false,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (response) => {
        const certificate = String((response.socket as TLSSocket).getPeerCertificate().subject?.CN ?? "");
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body, certificate }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/** The value of the first sample of `name` whose labels include every one of `labels`. */
function sample(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of body.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)))
      return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

/** The series names and label names the promtool unit tests feed the rules (their input_series). */
function ruleTestInputSeries(): { name: string; labels: string[] }[] {
  const text = readFileSync(`${repositoryRoot}/manifests/monitoring/csr-signer-alerts.test.yaml`, "utf8");
  const series = [...text.matchAll(/series:\s*'([a-z_:]+)\{([^}]*)\}'/g)].map(([, name, labels]) => ({
    name: name!,
    // job and instance are the scrape's, added by Prometheus.
    labels: [...labels!.matchAll(/([a-z_]+)=/g)]
      .map(([, label]) => label!)
      .filter((label) => label !== "job" && label !== "instance"),
  }));
  return series.filter((entry) => entry.name !== "up"); // up is Prometheus' own, not the controller's
}

describe("metrics serving: HTTPS with TokenReview and SubjectAccessReview", function () {
  this.timeout(90_000);
  const suffix = uniqueName("ms").slice(3);
  const healthy = { object: `ms-ok-${suffix}`, signerName: `ms.csr-signer.test/ok-${suffix}` };
  const broken = { object: `ms-broken-${suffix}`, signerName: `ms.csr-signer.test/broken-${suffix}` };
  const reader = `metrics-reader-${suffix}`;
  const stranger = `metrics-stranger-${suffix}`;
  let admin: KubeConfig;
  let running: RunningController | undefined;
  let address: string;

  const spec = (signerName: string, secretName: string) => ({
    signerName,
    certificateAuthority: { secretName },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  });

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    const authority = await makeTestCertificateAuthority({ name: `ms-${suffix}` });
    await createCaSecret(admin, `ms-ok-${suffix}`, authority.files);
    await createSigner(admin, healthy.object, spec(healthy.signerName, `ms-ok-${suffix}`));
    // No such Secret: Ready=False, and its approved CSR waits (the approved-unsigned gauge).
    await createSigner(admin, broken.object, spec(broken.signerName, `ms-missing-${suffix}`));
    const core = admin.makeApiClient(CoreV1Api);
    for (const name of [reader, stranger])
      await core.createNamespacedServiceAccount({
        namespace: controllerNamespace,
        body: { metadata: { name } },
      });
    await bindClusterRole(
      admin,
      serviceAccountSubject(controllerNamespace, reader),
      "csr-signer-metrics-reader",
      {
        nonResourceURLs: ["/metrics"],
        verbs: ["get"],
      },
    );
    running = await startController(controlPlane(), [healthy.signerName, broken.signerName], {
      metricsSecure: true,
    });
    address = running.controller.addresses()[0]!;
  });

  after(async () => {
    await running?.stop();
    for (const signer of [healthy, broken]) await deleteSigner(admin, signer.object);
    const core = admin.makeApiClient(CoreV1Api);
    for (const name of [reader, stranger])
      await core
        .deleteNamespacedServiceAccount({ name, namespace: controllerNamespace })
        .catch(() => undefined); // already gone is fine
  });

  const token = (serviceAccount: string): string =>
    kubectl(controlPlane(), [
      "create",
      "token",
      serviceAccount,
      "-n",
      controllerNamespace,
      "--duration=1h",
    ]).trim();

  it("answers 401 without a token or with a bad one, over HTTPS with a self-signed certificate", async () => {
    const anonymous = await scrape(address);
    expect(anonymous.status).to.equal(401);
    expect(anonymous.certificate).to.equal("csr-signer-metrics");
    expect((await scrape(address, "not-a-token")).status).to.equal(401);
  });

  it("answers 403 to a service account without csr-signer-metrics-reader", async () => {
    const answer = await scrape(address, token(stranger));
    expect(answer.status).to.equal(403);
    expect(answer.body).not.to.contain("csr_signer");
  });

  it("serves the metrics to a service account bound to csr-signer-metrics-reader, reviewing it once", async () => {
    const readerToken = token(reader);
    const first = await scrape(address, readerToken);
    expect(first.status).to.equal(200);
    const posts = () =>
      running!.controller.metrics.restClient.requests
        .get()
        .then((metric) =>
          metric.values.filter((v) => v.labels.method === "POST").reduce((sum, v) => sum + v.value, 0),
        );
    const before = await posts();
    for (let i = 0; i < 3; i++) expect((await scrape(address, readerToken)).status).to.equal(200);
    // Cached: uncached, 3 scrapes would POST 6 reviews (an Event or two may be posted meanwhile).
    expect((await posts()) - before).to.be.lessThan(3);
  });

  it("exports runtime, client, workqueue, build and state series, including every one the alert rule tests use", async () => {
    await submitApprovedServerCsr(admin, uniqueName("ms-issued"), healthy.signerName);
    // Outside the policy's *.example.test: refused (csr_signer_certificates_refused_total).
    const refused = uniqueName("ms-refused");
    await submitApprovedServerCsr(admin, refused, healthy.signerName, `${refused}.elsewhere.test`);
    const waiting = uniqueName("ms-waiting");
    await submitApprovedServerCsr(admin, waiting, broken.signerName);
    await waitFor("an issued certificate", async () =>
      (await running!.controller.metrics.issued.get()).values.some(
        (v) => v.labels.signer === healthy.signerName,
      )
        ? true
        : undefined,
    );
    const readerToken = token(reader);
    const body = await waitFor("the broken signer's approved CSR in the gauges", async () => {
      const { body } = await scrape(address, readerToken);
      return (sample(body, "csr_signer_approved_unsigned_csrs", { signer: broken.signerName }) ?? 0) > 0
        ? body
        : undefined;
    });
    for (const name of [
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_seconds",
    ])
      expect(sample(body, name), name).to.be.a("number");
    // Samples only once a collection has been observed: the histogram is declared from the start.
    expect(body).to.contain("# TYPE nodejs_gc_duration_seconds histogram");
    expect(sample(body, "rest_client_requests_total", { code: "200", method: "GET" })).to.be.greaterThan(0);
    expect(sample(body, "rest_client_request_duration_seconds_count", { verb: "GET" })).to.be.greaterThan(0);
    // No paths or object names in client metric labels: only code, method and host.
    const host = new URL(controlPlane().server).host;
    for (const line of body.split("\n").filter((l) => l.startsWith("rest_client_"))) {
      const labels = Object.fromEntries([...line.matchAll(/([a-z_]+)="([^"]*)"/g)].map(([, k, v]) => [k, v]));
      expect(Object.keys(labels).sort(), line).to.satisfy((keys: string[]) =>
        ["code,host,method", "host,verb", "host,le,verb"].includes(keys.join(",")),
      );
      expect(labels.host, line).to.equal(host);
      expect(labels.method ?? labels.verb, line).to.match(/^(GET|POST|PUT|PATCH|DELETE)$/);
      if (labels.code !== undefined) expect(labels.code, line).to.match(/^([1-5][0-9][0-9]|<error>)$/);
    }
    for (const queue of ["certificatesigningrequest", "signer", "podcertificaterequest"])
      for (const name of ["workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"])
        expect(sample(body, name, { name: queue }), `${name} ${queue}`).to.be.at.least(0);
    const version = (
      JSON.parse(readFileSync(`${repositoryRoot}/package.json`, "utf8")) as { version: string }
    ).version;
    expect(
      sample(body, "csr_signer_build_info", { version, commit: "unknown", node_version: process.version }),
    ).to.equal(1);
    expect(
      sample(body, "csr_signer_signer_condition", { signer: broken.signerName, type: "Ready" }),
    ).to.equal(0);
    expect(
      sample(body, "csr_signer_signer_condition", { signer: healthy.signerName, type: "Ready" }),
    ).to.equal(1);
    expect(
      sample(body, "csr_signer_signer_condition", { signer: healthy.signerName, type: "Degraded" }),
    ).to.equal(0);
    expect(
      sample(body, "csr_signer_approved_unsigned_oldest_seconds", { signer: broken.signerName }),
    ).to.be.at.least(0);
    expect(sample(body, "csr_signer_approved_unsigned_csrs", { signer: healthy.signerName })).to.equal(0);
    for (const { name, labels } of ruleTestInputSeries()) {
      expect(body, `${name} in the scrape`).to.contain(`# TYPE ${name} `);
      const line = body.split("\n").find((l) => l.startsWith(`${name}{`));
      // A labelled series with no sample yet (no pod certificate refused here) shows only its TYPE
      // line: its label names are then read from the registered metric.
      const declared =
        (running!.controller.metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] })
          ?.labelNames ?? [];
      for (const label of labels)
        if (line) expect(line, `${name} has label ${label}`).to.contain(`${label}="`);
        else expect(declared, `${name} declares label ${label}`).to.include(label);
    }
    expect(body).not.to.contain("PRIVATE KEY");
  });
});

describe("metrics serving with the operator's certificate (--metrics-cert-dir), reloaded without a restart", function () {
  this.timeout(60_000);
  const folder = mkdtempSync(join(tmpdir(), "csr-signer-metrics-tls-"));
  let running: RunningController | undefined;

  after(async () => {
    await running?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it("serves tls.crt from the folder, then the renewed one once the files are replaced", async () => {
    const [first, second] = await Promise.all(
      ["operator-first", "operator-second"].map((name) =>
        createSelfSignedServingCertificate(name, ["localhost"]),
      ),
    );
    writeFileSync(join(folder, "tls.crt"), first!.certificatePem);
    writeFileSync(join(folder, "tls.key"), first!.keyPem);
    await installSignerManifests(controlPlane());
    running = await startController(controlPlane(), [], {
      metricsSecure: true,
      metricsCertDir: folder,
      metricsCertPollMs: 200,
    });
    const address = running.controller.addresses()[0]!;
    expect((await scrape(address)).certificate).to.equal("operator-first");
    // As cert-manager renews it: a new pair; each file replaced whole (rename), the key first.
    for (const [name, text] of [
      ["tls.key", second!.keyPem],
      ["tls.crt", second!.certificatePem],
    ] as const) {
      writeFileSync(join(folder, `.${name}.new`), text);
      renameSync(join(folder, `.${name}.new`), join(folder, name));
    }
    await waitFor("the renewed certificate served", async () =>
      (await scrape(address)).certificate === "operator-second" ? true : undefined,
    );
    expect(running.logs.join("")).to.contain("metrics serving certificate reloaded");
  });
});

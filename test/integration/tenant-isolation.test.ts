/**
 * One tenant's broken material stays that tenant's problem: a CA Secret OpenSSL cannot read, a
 * Signer status with a recorded root that is not PEM, CA files over the size cap. Each makes its
 * own Signer Ready=False with a reason, while the other tenants keep issuing and the probes answer.
 */
import { expect } from "chai";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { makeTestCertificateAuthority } from "../support/pki.js";
import {
  createCaSecret,
  controllerNamespace,
  createSigner,
  deleteSigner,
  installSignerManifests,
  startController,
  submitApprovedServerCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { uniqueName } from "../support/identities.js";
import { signerApiGroup, signerApiVersion, signerPlural } from "../../src/api/signer.js";
import { maximumCertificateAuthorityFileBytes } from "../../src/pki/ca-material-files.js";
import { mergePatch } from "../support/kube-client.js";
import { controlPlane } from "./setup.js";

type TestAuthority = Awaited<ReturnType<typeof makeTestCertificateAuthority>>;

/** ca-cert.pem with its P-256 curve OID replaced by an unknown one: X509 parses, the public key does not. */
function withUndecodablePublicKey(files: Record<string, string>): Record<string, string> {
  const pem = files["ca-cert.pem"]!;
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
  const p256 = Buffer.from("06082a8648ce3d030107", "hex");
  const at = der.indexOf(p256);
  if (at < 0) throw new Error("test CA certificate has no P-256 key");
  Buffer.from("06082a8648ce3d030163", "hex").copy(der, at);
  const base64 = der.toString("base64").replace(/(.{64})/g, "$1\n");
  return {
    ...files,
    "ca-cert.pem": `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`,
  };
}

async function probe(running: RunningController, path: string): Promise<number> {
  const [, probeAddress] = running.controller.addresses();
  return (await fetch(`http://${probeAddress}${path}`)).status;
}

async function caParses(running: RunningController, signerName: string, result: string): Promise<number> {
  const metric = await running.controller.metrics.caParses.get();
  return (
    metric.values.find((value) => value.labels.signer === signerName && value.labels.result === result)
      ?.value ?? 0
  );
}

/** Signer rounds finished so far (each reads its Signer's CA material). */
async function signerRounds(running: RunningController): Promise<number> {
  const metric = await running.controller.metrics.workDuration.get();
  return (
    metric.values.find(
      (value) =>
        value.metricName === "workqueue_work_duration_seconds_count" && value.labels.name === "signer",
    )?.value ?? 0
  );
}

describe("tenant isolation: one Signer's broken material never stalls the others", function () {
  this.timeout(90_000);
  const suffix = uniqueName("iso").slice(4);
  const healthy = { object: `iso-ok-${suffix}`, signerName: `iso.csr-signer.test/ok-${suffix}` };
  const badKey = { object: `iso-spki-${suffix}`, signerName: `iso.csr-signer.test/spki-${suffix}` };
  const badStatus = { object: `iso-status-${suffix}`, signerName: `iso.csr-signer.test/status-${suffix}` };
  const late = { object: `iso-late-${suffix}`, signerName: `iso.csr-signer.test/late-${suffix}` };
  const huge = { object: `iso-huge-${suffix}`, signerName: `iso.csr-signer.test/huge-${suffix}` };
  const garbage = { object: `iso-garbage-${suffix}`, signerName: `iso.csr-signer.test/garbage-${suffix}` };
  const all = [healthy, badKey, badStatus, late, huge, garbage];
  let admin: KubeConfig;
  let authority: TestAuthority;
  let running: RunningController | undefined;

  const spec = (signerName: string, secretName: string) => ({
    signerName,
    certificateAuthority: { secretName },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  });

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    authority = await makeTestCertificateAuthority({ name: `iso-${suffix}` });
    await createCaSecret(admin, `iso-ok-${suffix}`, authority.files);
    await createCaSecret(admin, `iso-spki-${suffix}`, withUndecodablePublicKey(authority.files));
    await createSigner(admin, healthy.object, spec(healthy.signerName, `iso-ok-${suffix}`));
    await createSigner(admin, badKey.object, spec(badKey.signerName, `iso-spki-${suffix}`));
    // A Signer whose status records a retiring root whose pem is not PEM at all.
    await createSigner(admin, badStatus.object, spec(badStatus.signerName, `iso-ok-${suffix}`));
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await admin.makeApiClient(CustomObjectsApi).patchClusterCustomObjectStatus(
      {
        group: signerApiGroup,
        version: signerApiVersion,
        plural: signerPlural,
        name: badStatus.object,
        body: {
          status: {
            trustBundle: {
              roots: [
                {
                  fingerprintSha256: "00".repeat(32),
                  subject: "CN=retired root",
                  notAfter: "2099-01-01T00:00:00Z",
                  pem: "this is not PEM",
                  firstPublished: now,
                  retiredAt: now,
                },
              ],
            },
          },
        },
      },
      mergePatch,
    );
    // Both broken Signers exist before the controller starts: the start path is covered too.
    running = await startController(
      controlPlane(),
      all.map((signer) => signer.signerName),
    );
  });

  after(async () => {
    await running?.stop();
    for (const signer of all) await deleteSigner(admin, signer.object);
  });

  it("a CA Secret whose SubjectPublicKeyInfo OpenSSL cannot decode: that Signer is Ready=False, the others issue", async () => {
    const signer = await waitForSignerCondition(
      admin,
      badKey.object,
      "Ready",
      "False",
      "CertificateAuthorityMalformedCertificate",
    );
    const ready = signer.status!.conditions!.find((c) => c.type === "Ready")!;
    expect(ready.message).to.contain(`iso-spki-${suffix}`).and.to.contain("ca-cert.pem");
    expect(ready.message).not.to.contain("PRIVATE KEY");
    await waitForSignerCondition(admin, healthy.object, "Ready", "True");
    const name = uniqueName("csr-iso-ok");
    await submitApprovedServerCsr(admin, name, healthy.signerName);
    expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
    expect(await probe(running!, "/healthz")).to.equal(200);
    expect(await probe(running!, "/readyz")).to.equal(200);
  });

  it("a Signer whose status.trustBundle.roots[].pem is not PEM: that Signer is Ready=False, the others issue", async () => {
    await waitForSignerCondition(admin, badStatus.object, "Ready", "False", "InvalidTrustBundleStatus");
    const name = uniqueName("csr-iso-ok");
    await submitApprovedServerCsr(admin, name, healthy.signerName);
    expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
  });

  it("a Signer created while another is broken gets its status and issues", async () => {
    await createSigner(admin, late.object, spec(late.signerName, `iso-ok-${suffix}`));
    await waitForSignerCondition(admin, late.object, "Ready", "True");
    const name = uniqueName("csr-iso-late");
    await submitApprovedServerCsr(admin, name, late.signerName);
    expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
  });

  it("a CA file over the size cap is refused before parsing (CertificateAuthorityTooLarge)", async () => {
    await createCaSecret(admin, `iso-huge-${suffix}`, {
      ...authority.files,
      "ca-cert.pem": "A".repeat(maximumCertificateAuthorityFileBytes + 1),
    });
    await createSigner(admin, huge.object, spec(huge.signerName, `iso-huge-${suffix}`));
    const signer = await waitForSignerCondition(
      admin,
      huge.object,
      "Ready",
      "False",
      "CertificateAuthorityTooLarge",
    );
    expect(signer.status!.conditions!.find((c) => c.type === "Ready")!.message).to.contain(
      `limited to ${maximumCertificateAuthorityFileBytes} bytes`,
    );
    expect(await caParses(running!, huge.signerName, "refused")).to.equal(0);
    expect(await caParses(running!, huge.signerName, "loaded")).to.equal(0);
  });

  it("bad CA bytes are parsed once, not on every round: the same content is refused from memory", async () => {
    // Under the size cap and the certificate-count cap: two large PEM-looking blocks that are not certificates.
    const line = `${"A".repeat(64)}\n`;
    const body = line.repeat(Math.floor((maximumCertificateAuthorityFileBytes - 200) / 2 / line.length));
    const block = `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----\n`;
    const junk = block.repeat(2);
    await createCaSecret(admin, `iso-garbage-${suffix}`, { ...authority.files, "ca-cert.pem": junk });
    await createSigner(admin, garbage.object, spec(garbage.signerName, `iso-garbage-${suffix}`));
    await waitForSignerCondition(
      admin,
      garbage.object,
      "Ready",
      "False",
      "CertificateAuthorityMalformedCertificate",
    );
    // Ten more rounds read the same bytes again: each event of its Secret (here an annotation, the
    // data unchanged) runs one round of the Signers that use it.
    const rounds = await signerRounds(running!);
    const core = admin.makeApiClient(CoreV1Api);
    for (let round = 0; round < 10; round++) {
      await core.patchNamespacedSecret(
        {
          name: `iso-garbage-${suffix}`,
          namespace: controllerNamespace,
          body: { metadata: { annotations: { "test.csr-signer.io/round": String(round) } } },
        },
        mergePatch,
      );
      await waitFor(`Signer round ${round + 1} after the Secret event`, async () =>
        (await signerRounds(running!)) > rounds + round ? true : undefined,
      );
    }
    await waitFor("ten more Signer rounds", async () =>
      (await signerRounds(running!)) >= rounds + 10 ? true : undefined,
    );
    expect(await caParses(running!, garbage.signerName, "refused")).to.equal(1);
    // The healthy tenant's material was parsed once too, and it still issues; the probes answer.
    expect(await caParses(running!, healthy.signerName, "loaded")).to.equal(1);
    const name = uniqueName("csr-iso-ok");
    await submitApprovedServerCsr(admin, name, healthy.signerName);
    expect((await waitForOutcome(admin, name)).certificatePem).to.be.a("string");
    expect(await probe(running!, "/healthz")).to.equal(200);
    expect(await probe(running!, "/readyz")).to.equal(200);
  });
});

import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  buildTestCertificateRequest,
  makeCertificateAuthorityOutlivingItsRoot,
  opensslVerify,
  testKey,
} from "../support/pki.js";
import {
  asServiceAccount,
  grantSignerVerbs,
  serviceAccountSubject,
  uniqueName,
} from "../support/identities.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readCsr,
  setApproval,
  startController,
  submitCsr,
  waitForCsrEvent,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { controlPlane } from "./setup.js";

/**
 * Adversarial reviews of issue 10 item 8: the controller's issuance path caps at the root too, and
 * refuses (transiently) rather than mint a leaf shorter than the minimum in the chain's last minutes.
 */
/** An istiod-style workload request: empty subject, one SPIFFE ID. */
function workloadRequest(): string {
  return buildTestCertificateRequest({
    key: testKey("ecdsa-p256"),
    subject: [{ type: "O", value: "" }],
    subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
  });
}

describe("controller: a leaf never outlives any certificate of its Signer's CA chain", function () {
  this.timeout(60_000);
  const suffix = uniqueName("t").slice(2);
  const signerName = `chain.csr-signer.test/short-root-${suffix}`;
  const objectName = `short-root-${suffix}`;
  let admin: KubeConfig;
  let running: RunningController | undefined;
  let rootsPem: string;
  let rootNotAfter: Date;
  /** The controller's clock: the wall clock shifted by this much (moved to the root's last minutes). */
  let clockOffsetMs = 0;
  const clock = (): Date => new Date(Date.now() + clockOffsetMs);

  before(async function () {
    this.timeout(120_000);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    // An intermediate valid 1 year under a root valid 3 days; the Signer allows 7-day leaves.
    const outliving = await makeCertificateAuthorityOutlivingItsRoot({
      rootLifetimeSeconds: 3 * 86400,
      intermediateLifetimeDays: 365,
    });
    rootsPem = outliving.files["root-cert.pem"]!;
    rootNotAfter = outliving.rootNotAfter;
    await createCaSecret(admin, `short-root-cacerts-${suffix}`, outliving.files);
    await grantSignerVerbs(admin, {
      subject: serviceAccountSubject("istio-system", "istiod"),
      signerNames: [signerName],
      verbs: ["approve"],
    });
    running = await startController(controlPlane(), [signerName], {
      environment: { now: clock, randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)) },
    });
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName: `short-root-cacerts-${suffix}` },
      issuance: { maxDuration: "168h" },
      policy: {
        requesters: { registrationAuthorities: ["istio-system/istiod"] },
        tenants: { namespaces: ["foo"] },
        spiffe: { trustDomain: "cluster.local" },
      },
    });
    await waitForSignerCondition(admin, objectName, "Ready", "True");
  });

  afterEach(function () {
    clockOffsetMs = 0;
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-10).join(""));
  });

  after(async () => {
    await running?.stop();
    await deleteSigner(admin, objectName);
  });

  it("caps a 7-day request at the root's NotAfter under an intermediate valid 1 year; openssl verifies it at its last second", async () => {
    const name = uniqueName("csr-workload");
    const istiod = asServiceAccount(admin, "istio-system", "istiod");
    await submitCsr(istiod, {
      name,
      signerName,
      requestPem: workloadRequest(),
      expirationSeconds: 7 * 86400,
    });
    await setApproval(istiod, name, "Approved");
    const outcome = await waitForOutcome(admin, name);
    expect(outcome.failed).to.equal(undefined);
    const leaf = new X509Certificate(outcome.certificatePem!);
    expect(leaf.validToDate.toISOString()).to.equal(rootNotAfter.toISOString());
    const lastSecond = String(Math.floor(leaf.validToDate.getTime() / 1000) - 1);
    expect(opensslVerify(outcome.certificatePem!, rootsPem, ["-attime", lastSecond])).to.match(/: OK/);
  });

  it("leaves a CSR pending (CertificateAuthorityExpiringSoon, retried) in the root's last 10 minutes, then issues once the CA has time left", async () => {
    clockOffsetMs = rootNotAfter.getTime() - 5 * 60_000 - Date.now();
    const name = uniqueName("csr-late");
    const istiod = asServiceAccount(admin, "istio-system", "istiod");
    await submitCsr(istiod, {
      name,
      signerName,
      requestPem: workloadRequest(),
    });
    await setApproval(istiod, name, "Approved");
    const event = await waitForCsrEvent(admin, name, "CertificateAuthorityExpiringSoon", "Warning");
    expect(event.message).to.contain("will retry").and.to.contain(rootNotAfter.toISOString());
    await waitForSignerCondition(admin, objectName, "Ready", "False", "CertificateAuthorityExpiringSoon");
    const pending = await readCsr(admin, name);
    expect(pending?.status?.certificate).to.equal(undefined);
    expect(pending?.status?.conditions?.map((c) => c.type)).to.deep.equal(["Approved"]);

    clockOffsetMs = 0; // as if the CA had been renewed: the retry issues
    const outcome = await waitForOutcome(admin, name);
    expect(outcome.failed).to.equal(undefined);
    expect(new X509Certificate(outcome.certificatePem!).validToDate.getTime()).to.be.at.most(
      rootNotAfter.getTime(),
    );
  });
});

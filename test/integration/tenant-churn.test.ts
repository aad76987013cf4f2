/**
 * One tenant rewriting its CA Secret in a loop (spec.certificateAuthority.secretNamespace: the tenant
 * writes those bytes), on the real API server: each rewrite carries a new intermediate, so the
 * Signer's status and its Event messages differ every time (the Event recorder's repeat window does
 * not catch them). Another tenant's refused CSR still gets its Failed condition and its Warning
 * Event meanwhile, the churning Signer's status writes stay within its pace, and its last state is
 * written once the loop stops.
 */
import { expect } from "chai";
import { CoreV1Api, Watch, type KubeConfig } from "@kubernetes/client-node";
import { signerApiGroup, signerApiVersion, signerPlural } from "../../src/api/signer.js";
import { statusChangeBurst, statusChangeRefillMs } from "../../src/controller/signer-status-pacing.js";
import { cacertsFiles, createIntermediateCertificateAuthority } from "../../src/pki/offline-ca.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readSigner,
  startController,
  submitApprovedServerCsr,
  waitForCsrEvent,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { makeTestCertificateAuthority } from "../support/pki.js";
import { grantTenantSecretRead, writeTenantSecret } from "../support/tenant-ca-secret.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

describe("a tenant churning its CA Secret does not silence or slow other tenants", function () {
  this.timeout(180_000);
  const suffix = uniqueName("c").slice(2);
  const domain = `tenant-churn-${suffix}.csr-signer.test`;
  const churning = `churning-${suffix}`;
  const other = `other-${suffix}`;
  let admin: KubeConfig;
  let controller: RunningController;

  before(async () => {
    const cp = controlPlane();
    admin = cp.kubeConfig();
    await installSignerManifests(cp);
    controller = await startController(cp, [`${domain}/*`]);
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(controller?.logs.slice(-20).join("\n"));
  });

  after(async () => {
    await controller?.stop();
    for (const name of [churning, other]) await deleteSigner(admin, name);
  });

  /** Counts the churning Signer's status writes (MODIFIED events of its object) until stopped. */
  async function countWrites(): Promise<{ count: () => number; stop: () => void }> {
    let writes = 0;
    const watch = await new Watch(admin).watch(
      `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}`,
      { fieldSelector: `metadata.name=${churning}` },
      (type: string) => {
        if (type === "MODIFIED") writes++;
      },
      () => undefined, // ended by stop(); a count that ends early only makes the bound easier to meet
    );
    return { count: () => writes, stop: () => watch.abort() };
  }

  it("tenant B's refused CSR gets its Failed condition and Warning Event while tenant A rewrites its Secret in a loop; A's status writes keep their pace and its last state is written", async () => {
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: churning } } });
    await grantTenantSecretRead(admin, churning, `${churning}-cacerts`);
    const ca = await makeTestCertificateAuthority({ name: churning });
    await writeTenantSecret(admin, churning, `${churning}-cacerts`, ca.files);
    await createSigner(admin, churning, {
      signerName: `${domain}/${churning}`,
      certificateAuthority: { secretName: `${churning}-cacerts`, secretNamespace: churning },
      policy: {
        requesters: { users: ["admin"] },
        tenants: { namespaces: [churning] },
        dnsNames: ["*.example.test"],
      },
      trustBundle: { minimumRootPublication: "0s" },
    });
    const otherCa = await makeTestCertificateAuthority({ name: other });
    await createCaSecret(admin, `${other}-cacerts`, otherCa.files);
    await createSigner(admin, other, {
      signerName: `${domain}/${other}`,
      certificateAuthority: { secretName: `${other}-cacerts` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    await waitForSignerCondition(admin, churning, "Ready", "True");
    await waitForSignerCondition(admin, other, "Ready", "True");

    // Tenant A: every rewrite a new intermediate under its published root (each a rotation the
    // controller takes at once, with a status change and a CertificateAuthorityRotated Event).
    const writes = await countWrites();
    const started = performance.now();
    let rewrites = 0;
    let stopped = false;
    let lastFingerprint = "";
    const churn = (async () => {
      while (!stopped) {
        const intermediate = await createIntermediateCertificateAuthority(ca.root, {
          subject: [{ type: "CN", value: `${churning} intermediate ${rewrites}` }],
          lifetimeSeconds: 30 * 86400,
          keyType: "ecdsa-p256",
        });
        await writeTenantSecret(
          admin,
          churning,
          `${churning}-cacerts`,
          cacertsFiles(intermediate, [ca.root.certificate], [ca.root.certificate]),
        );
        lastFingerprint = intermediate.certificate.fingerprintSha256;
        rewrites++;
      }
    })();
    try {
      // Long enough for an unpaced controller to fill the Event queue (it drains 5 a second).
      await waitFor(
        "300 rewrites of tenant A's Secret",
        async () => (rewrites >= 300 ? true : undefined),
        120_000,
      );
      // Tenant B: a CSR its policy refuses.
      const csr = uniqueName("csr-churn-other");
      await submitApprovedServerCsr(admin, csr, `${domain}/${other}`, "not-allowed.elsewhere.test");
      const outcome = await waitForOutcome(admin, csr);
      expect(outcome.failed, "a Failed condition").to.not.equal(undefined);
      const event = await waitForCsrEvent(admin, csr, outcome.failed!.reason, "Warning");
      expect(event.message).to.contain("not-allowed.elsewhere.test");
    } finally {
      stopped = true;
      await churn;
    }
    const elapsedMs = performance.now() - started;
    writes.stop();
    // Its pace: a burst, then one per refill period (one more for a write under way at the start).
    expect(writes.count()).to.be.at.most(statusChangeBurst + Math.ceil(elapsedMs / statusChangeRefillMs) + 1);
    expect(rewrites).to.be.at.least(300);
    // The last rewrite's CA is what status shows in the end: waiting changes are never lost.
    await waitFor(
      "tenant A's status to show its last CA",
      async () => {
        const status = (await readSigner(admin, churning)).status as
          { certificateAuthority?: { fingerprintSha256?: string } } | undefined;
        return status?.certificateAuthority?.fingerprintSha256 === lastFingerprint ? true : undefined;
      },
      30_000,
    );
  });
});

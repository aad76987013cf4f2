/**
 * A Signer whose CA key is an encrypted PKCS#8 file (ENCRYPTED PRIVATE KEY) in its Secret, opened
 * with the passphrase from another Secret (keyPassphraseSecretRef): not ready while the passphrase
 * Secret is missing, signing once it appears (the Secret event rebuilds the Signer), the passphrase in
 * no status, Event or log line.
 */
import { createPrivateKey } from "node:crypto";
import { expect } from "chai";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  createCaSecret,
  createSigner,
  csrEvents,
  deleteSigner,
  installSignerManifests,
  readSigner,
  startController,
  submitApprovedServerCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { makeTestCertificateAuthority, opensslVerify } from "../support/pki.js";
import { CacertsFiles } from "../../src/pki/certificate-authority.js";
import { controlPlane } from "./setup.js";

describe("an encrypted CA key with its passphrase from a Secret (real kube-apiserver)", function () {
  this.timeout(90_000);
  const suffix = uniqueName("enc").slice(4);
  const object = `enc-${suffix}`;
  const signerName = `enc.csr-signer.test/ca-${suffix}`;
  let admin: KubeConfig;
  let running: RunningController | undefined;

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    running = await startController(controlPlane(), [signerName]);
  });
  after(async () => {
    await running?.stop();
    await deleteSigner(admin, object);
  });

  it("waits for the passphrase Secret (KeyPassphraseUnavailable), then signs; the passphrase shows nowhere", async () => {
    const ca = await makeTestCertificateAuthority({ name: `enc-${suffix}` });
    const passphrase = `passphrase-${suffix}`;
    const encrypted = createPrivateKey(ca.files[CacertsFiles.key]!)
      .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
      .toString();
    await createCaSecret(admin, `enc-ca-${suffix}`, { ...ca.files, [CacertsFiles.key]: encrypted });
    await createSigner(admin, object, {
      signerName,
      certificateAuthority: {
        secretName: `enc-ca-${suffix}`,
        keyPassphraseSecretRef: { name: `enc-pass-${suffix}`, key: "passphrase" },
      },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    const waiting = await waitForSignerCondition(admin, object, "Ready", "False", "KeyPassphraseUnavailable");
    expect(waiting.status!.conditions!.find((c) => c.type === "Ready")!.message).to.include(
      `enc-pass-${suffix} key passphrase: the Secret is not found`,
    );
    await createCaSecret(admin, `enc-pass-${suffix}`, { passphrase: `${passphrase}\n` });
    await waitForSignerCondition(admin, object, "Ready", "True");
    const csr = `enc-leaf-${suffix}`;
    await submitApprovedServerCsr(admin, csr, signerName);
    const outcome = await waitForOutcome(admin, csr);
    expect(opensslVerify(outcome.certificatePem!, ca.files[CacertsFiles.roots]!)).to.match(/: OK/);
    const seen = [
      JSON.stringify((await readSigner(admin, object)).status),
      JSON.stringify(await csrEvents(admin, csr)),
      running!.logs.join("\n"),
    ];
    for (const text of seen) expect(text).not.to.include(passphrase);
  });
});

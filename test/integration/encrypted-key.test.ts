/**
 * A Signer whose CA key is an encrypted PKCS#8 file (ENCRYPTED PRIVATE KEY) in its Secret, opened
 * with the passphrase from another Secret (keyPassphraseSecretRef): not ready while the passphrase
 * Secret is missing, signing once it appears (the Secret event rebuilds the Signer), the passphrase in
 * no status, Event or log line. With the passphrase from a mounted file: a wrong one keeps the Signer
 * not ready (never signing, never shown), the right one written to the file makes it sign.
 */
import { createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
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
import { CacertsFiles } from "../../src/pki/ca-layouts.js";
import { controlPlane } from "./setup.js";

describe("an encrypted CA key with its passphrase from a Secret (real kube-apiserver)", function () {
  this.timeout(90_000);
  const suffix = uniqueName("enc").slice(4);
  const object = `enc-${suffix}`;
  const signerName = `enc.csr-signer.test/ca-${suffix}`;
  const fileObject = `enc-file-${suffix}`;
  const fileSignerName = `enc.csr-signer.test/file-${suffix}`;
  let admin: KubeConfig;
  let running: RunningController | undefined;

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    // Passphrase files re-read every 300 ms (the default is slower).
    running = await startController(controlPlane(), [signerName, fileSignerName], { caFolderPollMs: 300 });
  });
  after(async () => {
    await running?.stop();
    await deleteSigner(admin, object);
    await deleteSigner(admin, fileObject);
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

  it("with the passphrase from a mounted file: a wrong one keeps the Signer not ready, the right one written there makes it sign", async () => {
    const ca = await makeTestCertificateAuthority({ name: `enc-file-${suffix}` });
    const passphrase = `file-passphrase-${suffix}`;
    const wrong = `wrong-passphrase-${suffix}`;
    const encrypted = createPrivateKey(ca.files[CacertsFiles.key]!)
      .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
      .toString();
    await createCaSecret(admin, `enc-file-ca-${suffix}`, { ...ca.files, [CacertsFiles.key]: encrypted });
    const dir = mkdtempSync(path.join(tmpdir(), "csr-signer-passphrase-"));
    const passphraseFile = path.join(dir, "passphrase");
    writeFileSync(passphraseFile, `${wrong}\n`);
    try {
      await createSigner(admin, fileObject, {
        signerName: fileSignerName,
        certificateAuthority: { secretName: `enc-file-ca-${suffix}`, keyPassphraseFile: passphraseFile },
        policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
      });
      const refused = await waitForSignerCondition(
        admin,
        fileObject,
        "Ready",
        "False",
        "CertificateAuthorityMalformedKey",
      );
      const ready = refused.status!.conditions!.find((c) => c.type === "Ready")!;
      expect(ready.reason).to.equal("CertificateAuthorityMalformedKey");
      const early = `enc-file-early-${suffix}`;
      await submitApprovedServerCsr(admin, early, fileSignerName);

      writeFileSync(passphraseFile, `${passphrase}\n`); // Vault Agent rewrites the file
      await waitForSignerCondition(admin, fileObject, "Ready", "True");
      const outcome = await waitForOutcome(admin, early);
      expect(opensslVerify(outcome.certificatePem!, ca.files[CacertsFiles.roots]!)).to.match(/: OK/);
      const seen = [
        JSON.stringify(refused.status),
        JSON.stringify((await readSigner(admin, fileObject)).status),
        JSON.stringify(await csrEvents(admin, early)),
        running!.logs.join("\n"),
      ];
      for (const text of seen) {
        expect(text).not.to.include(passphrase);
        expect(text).not.to.include(wrong);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Signers whose CA key never leaves a PKCS#11 token (SoftHSM2, the real library) against the real
 * kube-apiserver: the runbook from an empty token to issued certificates (key generated in the
 * token, Ready=False WaitingForCertificate with the token key's CSR in status, a chain for another
 * key refused, the root signs, the chain Secret arrives, certificates verify with openssl against the
 * published bundle); PIN rotation (a wrong PIN is Pkcs11PinIncorrect, never shown, then recovers);
 * token loss and recovery (CSRs stay pending, never Failed). A software-key tenant issues throughout.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  csrEvents,
  deleteSigner,
  installSignerManifests,
  readCsr,
  readSigner,
  startController,
  submitApprovedServerCsr,
  waitForCsrEvent,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { makeTestCertificateAuthority, opensslVerify } from "../support/pki.js";
import { createSoftHsmToken, type SoftHsmToken } from "../support/softhsm.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";
import { CacertsFiles } from "../../src/pki/ca-layouts.js";
import { parseCertificateRequest } from "../../src/pki/certificate-request.js";
import { decodeSinglePem } from "../../src/pki/pem.js";
import { parseCertificate } from "../../src/pki/certificate.js";
import { generatePkcs11KeyPair } from "../../src/pki/pkcs11/index.js";
import { runCliInProcess as cli } from "../support/cli.js";

/** The folder SoftHSM keeps `token` in (tokens/<uuid>/, its label in token.object). */
function tokenFolder(token: SoftHsmToken): string {
  const tokens = path.join(path.dirname(token.configPath), "tokens");
  const folder = readdirSync(tokens).find((name) =>
    readFileSync(path.join(tokens, name, "token.object")).includes(Buffer.from(token.tokenLabel)),
  );
  if (!folder) throw new Error(`no SoftHSM folder for ${token.tokenLabel}`);
  return path.join(tokens, folder);
}

describe("Signers with the CA key in a PKCS#11 token (SoftHSM2, real kube-apiserver)", function () {
  this.timeout(120_000);
  const suffix = uniqueName("hsm").slice(4);
  const tenant = `hsm-tenant-${suffix}`;
  const hsm = {
    object: `hsm-${suffix}`,
    signerName: `hsm.csr-signer.test/mesh-${suffix}`,
    chain: `hsm-chain-${suffix}`,
  };
  const software = {
    object: `hsm-sw-${suffix}`,
    signerName: `hsm.csr-signer.test/sw-${suffix}`,
    secret: `hsm-sw-${suffix}`,
  };
  let admin: KubeConfig;
  let token: SoftHsmToken;
  let dir: string;
  let pinFile: string;
  let running: RunningController | undefined;
  /** The offline root's folder (`csr-signer ca root`): root-cert.pem, root-key.pem. */
  let rootDir: string;
  let csrCount = 0;
  const nextCsr = (what: string) => `hsm-${what}-${suffix}-${++csrCount}`;

  /** A software-key tenant must keep issuing whatever happens to the token. */
  async function softwareTenantIssues(): Promise<void> {
    const name = nextCsr("sw");
    await submitApprovedServerCsr(admin, name, software.signerName);
    expect((await waitForOutcome(admin, name)).certificatePem).to.include("BEGIN CERTIFICATE");
  }

  async function publishedBundle(): Promise<string> {
    return waitFor("the trust bundle ConfigMap", async () => {
      try {
        return (
          await admin
            .makeApiClient(CoreV1Api)
            .readNamespacedConfigMap({ name: `${hsm.object}-trust-bundle`, namespace: tenant })
        ).data?.["ca.crt"];
      } catch {
        return undefined; // not published yet
      }
    });
  }

  /** The PIN must never reach status, Events or logs. */
  async function expectPinNowhere(pins: string[], csrNames: string[]): Promise<void> {
    const status = JSON.stringify((await readSigner(admin, hsm.object)).status);
    const events = JSON.stringify(await Promise.all(csrNames.map((name) => csrEvents(admin, name))));
    for (const pin of pins) {
      expect(status).not.to.include(pin);
      expect(events).not.to.include(pin);
      expect(running!.logs.join("\n")).not.to.include(pin);
    }
  }

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: tenant } } });
    token = createSoftHsmToken("csr-signer-it");
    dir = mkdtempSync(path.join(tmpdir(), "csr-signer-pin-"));
    pinFile = path.join(dir, "pin");
    writeFileSync(pinFile, `${token.userPin}\n`);
    rootDir = path.join(dir, "root");
    const madeRoot = await cli(["ca", "root", "--out", rootDir, "--subject", `CN=hsm root ${suffix}`]);
    expect(madeRoot.exitCode, madeRoot.stderr).to.equal(0);
    const softwareCa = await makeTestCertificateAuthority({ name: `hsm-sw-${suffix}` });
    await createCaSecret(admin, software.secret, softwareCa.files);
    await createSigner(admin, software.object, {
      signerName: software.signerName,
      certificateAuthority: { secretName: software.secret },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    running = await startController(controlPlane(), [hsm.signerName, software.signerName], {
      tokenKeys: {
        timings: {
          initialRetryMs: 200,
          maximumRetryMs: 1000,
          incorrectPinRetryMs: 3000,
          probeIntervalMs: 500,
        },
      },
    });
    await waitForSignerCondition(admin, software.object, "Ready", "True");
  });

  after(async () => {
    await running?.stop();
    for (const name of [hsm.object, software.object]) await deleteSigner(admin, name);
    await admin
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: tenant })
      .catch(() => undefined); // best effort: the control plane is torn down anyway
    rmSync(dir, { recursive: true, force: true });
  });

  it("runbook: key generated in the token (ca request), WaitingForCertificate with its CSR, a chain for another key refused, the root's chain (ca sign-intermediate) signs", async () => {
    const requested = await cli([
      "ca",
      "request",
      "--pkcs11-module",
      token.modulePath,
      "--pkcs11-token-label",
      token.tokenLabel,
      "--pkcs11-key-label",
      "mesh-ca",
      "--pin-file",
      pinFile,
      "--out",
      path.join(dir, "request-from-cli.csr"),
    ]);
    expect(requested.exitCode, requested.stderr).to.equal(0);
    const tokenPublicKey = Buffer.from(
      parseCertificateRequest(readFileSync(path.join(dir, "request-from-cli.csr"))).subjectPublicKeyInfo,
    );

    await createSigner(admin, hsm.object, {
      signerName: hsm.signerName,
      certificateAuthority: {
        secretName: hsm.chain,
        pkcs11: { module: token.modulePath, tokenLabel: token.tokenLabel, keyLabel: "mesh-ca", pinFile },
      },
      policy: {
        requesters: { users: ["admin"] },
        tenants: { namespaces: [tenant] },
        dnsNames: ["*.example.test"],
        subject: { organizations: ["Example Mesh"] },
      },
    });
    const waiting = await waitForSignerCondition(
      admin,
      hsm.object,
      "Ready",
      "False",
      "WaitingForCertificate",
    );
    const condition = waiting.status!.conditions!.find((c) => c.type === "Ready")!;
    expect(condition.message).to.include(`Secret ${controllerNamespace}/${hsm.chain}`);
    const pending = await waitFor("status.pendingCertificateRequest", async () => {
      const signer = await readSigner(admin, hsm.object);
      return signer.status?.pendingCertificateRequest as
        { pem: string; key: string; publicKeyFingerprintSha256: string } | undefined;
    });
    expect(pending.key).to.include(`token ${token.tokenLabel} (key label mesh-ca)`);
    const request = parseCertificateRequest(Buffer.from(pending.pem));
    expect(
      Buffer.from(request.subjectPublicKeyInfo).equals(tokenPublicKey),
      "the CSR carries the token's key",
    ).to.equal(true);
    expect(request.requestsCertificateAuthority).to.equal(true);

    // A CSR arriving now waits: pending with a SignerNotReady Event, never Failed.
    const early = nextCsr("early");
    await submitApprovedServerCsr(admin, early, hsm.signerName);
    await waitForCsrEvent(admin, early, "SignerNotReady", "Warning");
    await softwareTenantIssues();

    // A chain for another key (someone else's intermediate) is refused.
    const stranger = await makeTestCertificateAuthority({ name: `hsm-stranger-${suffix}` });
    const { [CacertsFiles.key]: _strangerKey, ...strangerChain } = stranger.files;
    await createCaSecret(admin, hsm.chain, strangerChain);
    const mismatch = await waitForSignerCondition(
      admin,
      hsm.object,
      "Ready",
      "False",
      "CertificateAuthorityKeyMismatch",
    );
    expect(mismatch.status!.conditions!.find((c) => c.type === "Ready")!.message).to.include(
      `is not for the key in token ${token.tokenLabel}`,
    );
    expect(mismatch.status?.pendingCertificateRequest).to.have.property("pem", pending.pem);

    // The operator takes the CSR from status to the offline root; the chain (no key) goes into the Secret.
    const csrFile = path.join(dir, "intermediate.csr");
    writeFileSync(csrFile, pending.pem);
    const chainDir = path.join(dir, "chain");
    const signed = await cli([
      "ca",
      "sign-intermediate",
      "--root",
      rootDir,
      "--csr",
      csrFile,
      "--out",
      chainDir,
    ]);
    expect(signed.exitCode, signed.stderr).to.equal(0);
    const chainFiles = Object.fromEntries(
      readdirSync(chainDir).map((name) => [name, readFileSync(path.join(chainDir, name), "utf8")]),
    );
    expect(Object.keys(chainFiles).sort()).to.deep.equal(["ca-cert.pem", "cert-chain.pem", "root-cert.pem"]);
    await createCaSecret(admin, hsm.chain, chainFiles);
    const intermediate = parseCertificate(decodeSinglePem(chainFiles["ca-cert.pem"]!, "CERTIFICATE"));
    const rootPem = chainFiles["root-cert.pem"]!;
    const ready = await waitForSignerCondition(admin, hsm.object, "Ready", "True");
    expect(ready.status!.conditions!.find((c) => c.type === "Ready")!.message).to.include("(PKCS#11)");
    await waitFor("pendingCertificateRequest to be removed", async () =>
      (await readSigner(admin, hsm.object)).status?.pendingCertificateRequest === undefined
        ? true
        : undefined,
    );

    const earlyOutcome = await waitForOutcome(admin, early);
    const bundle = await publishedBundle();
    expect(bundle).to.include(rootPem.trim().split("\n")[1]!);
    expect(opensslVerify(earlyOutcome.certificatePem!, bundle, ["-purpose", "sslserver"])).to.match(/: OK/);
    const later = nextCsr("later");
    await submitApprovedServerCsr(admin, later, hsm.signerName);
    const issued = parseCertificate(
      decodeSinglePem(
        (await waitForOutcome(admin, later)).certificatePem!.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!,
        "CERTIFICATE",
      ),
    );
    expect(issued.issuer).to.equal(intermediate.subject);
    expect(opensslVerify((await waitForOutcome(admin, later)).certificatePem!, bundle)).to.match(/: OK/);
    await expectPinNowhere([token.userPin], [early, later]);
  });

  it("PIN rotation: the file has the new PIN before the token does: the old session signs on (Degraded Pkcs11PinIncorrect); once the token has it, the sessions swap", async () => {
    const oldPin = token.userPin;
    const newPin = randomBytes(6).toString("hex");
    writeFileSync(pinFile, `${newPin}\n`); // the file changed before the token did
    const degraded = await waitForSignerCondition(
      admin,
      hsm.object,
      "Degraded",
      "True",
      "Pkcs11PinIncorrect",
    );
    const condition = degraded.status!.conditions!.find((c) => c.type === "Degraded")!;
    expect(condition.message).to.include("refused the new PIN").and.not.to.include(newPin);
    expect(degraded.status!.conditions!.find((c) => c.type === "Ready")!.status).to.equal("True");
    // No outage: the session opened with the old PIN still signs.
    const during = nextCsr("pin");
    await submitApprovedServerCsr(admin, during, hsm.signerName);
    expect(
      opensslVerify((await waitForOutcome(admin, during)).certificatePem!, await publishedBundle()),
    ).to.match(/: OK/);
    await softwareTenantIssues();

    token.changeUserPin(newPin); // C_SetPIN on the token
    // The refused PIN is tried again only after incorrectPinRetryMs (HSMs lock users out after a
    // few bad logins; 5 minutes by default, shortened here): then it opens, and the sessions swap.
    await waitForSignerCondition(admin, hsm.object, "Degraded", "False");
    await waitForSignerCondition(admin, hsm.object, "Ready", "True");
    const after = nextCsr("pin-after");
    await submitApprovedServerCsr(admin, after, hsm.signerName);
    expect((await waitForOutcome(admin, after)).certificatePem).to.include("BEGIN CERTIFICATE");
    await expectPinNowhere([oldPin, newPin], [during, after]);
  });

  it("token loss: the Signer turns Ready=False with a token reason though idle, CSRs stay pending, and issuance resumes when the token is back", async () => {
    const folder = tokenFolder(token);
    const backup = path.join(dir, "token-backup");
    cpSync(folder, backup, { recursive: true });
    token.remove();

    // Noticed without any CSR (the controller's probe signature), then CSRs wait.
    const down = await waitForSignerCondition(admin, hsm.object, "Ready", "False");
    const during = nextCsr("lost");
    await submitApprovedServerCsr(admin, during, hsm.signerName);
    await waitForCsrEvent(admin, during, "SignerNotReady", "Warning");
    expect(down.status!.conditions!.find((c) => c.type === "Ready")!.reason).to.match(
      /^Pkcs11(TokenUnavailable|TokenNotFound)$/,
    );
    await softwareTenantIssues();
    await waitFor("the token to be retried (Pkcs11TokenNotFound)", async () =>
      (await readSigner(admin, hsm.object)).status?.conditions?.find((c) => c.type === "Ready")?.reason ===
      "Pkcs11TokenNotFound"
        ? true
        : undefined,
    );
    const csr = await readCsr(admin, during);
    expect(csr?.status?.certificate).to.equal(undefined);
    expect(csr?.status?.conditions?.map((c) => c.type)).not.to.include("Failed");

    cpSync(backup, folder, { recursive: true }); // the partition is back
    await waitForSignerCondition(admin, hsm.object, "Ready", "True");
    const outcome = await waitForOutcome(admin, during, 30_000);
    expect(opensslVerify(outcome.certificatePem!, await publishedBundle())).to.match(/: OK/);
    await softwareTenantIssues();
  });

  it("each token problem is that Signer's Ready=False reason; a PIN from a Secret is re-read when the Secret changes", async () => {
    const keyLabel = `reasons-${suffix}`;
    const keyId = randomBytes(8);
    await (
      await generatePkcs11KeyPair(
        {
          modulePath: token.modulePath,
          tokenLabel: token.tokenLabel,
          keyLabel,
          keyId: new Uint8Array(keyId),
        },
        token.userPin,
        "ecdsa-p256",
      )
    ).close();
    const pinSecret = `hsm-pin-${suffix}`;
    const wrongPin = randomBytes(6).toString("hex");
    await createCaSecret(admin, pinSecret, { pin: wrongPin });
    const good = { module: token.modulePath, tokenLabel: token.tokenLabel, keyLabel, pinFile };
    const cases: [string, Record<string, unknown>, string][] = [
      ["module", { ...good, module: "/nonexistent/libpkcs11.so" }, "Pkcs11ModuleLoadFailed"],
      ["token", { ...good, tokenLabel: `absent-${suffix}` }, "Pkcs11TokenNotFound"],
      ["key", { ...good, keyLabel: "absent" }, "Pkcs11KeyNotFound"],
      [
        "nopin",
        { ...good, pinFile: undefined, pinSecretRef: { name: `absent-${suffix}`, key: "pin" } },
        "Pkcs11PinUnavailable",
      ],
      [
        "secretpin",
        { ...good, pinFile: undefined, pinSecretRef: { name: pinSecret, key: "pin" } },
        "Pkcs11PinIncorrect",
      ],
      // Found by CKA_ID alone (hex in the spec): the key opens and waits for its certificate.
      [
        "byid",
        { module: token.modulePath, tokenLabel: token.tokenLabel, keyId: keyId.toString("hex"), pinFile },
        "WaitingForCertificate",
      ],
    ];
    const objectName = (what: string) => `hsm-${what}-${suffix}`;
    try {
      for (const [what, pkcs11] of cases)
        await createSigner(admin, objectName(what), {
          signerName: `hsm.csr-signer.test/${what}-${suffix}`,
          certificateAuthority: { secretName: `hsm-chain-${what}-${suffix}`, pkcs11 },
          policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
        });
      for (const [what, , reason] of cases) {
        const signer = await waitForSignerCondition(admin, objectName(what), "Ready", "False", reason);
        const message = signer.status!.conditions!.find((c) => c.type === "Ready")!.message;
        expect(message, what).not.to.include(token.userPin);
        expect(message, what).not.to.include(wrongPin);
      }
      await softwareTenantIssues();
      expect(
        (await readSigner(admin, hsm.object)).status?.conditions?.find((c) => c.type === "Ready")?.status,
      ).to.equal("True");
      // The Secret gets the right PIN: the Secret event rebuilds the Signer, the token opens, and it
      // waits for its certificate.
      await createCaSecret(admin, pinSecret, { pin: token.userPin });
      const opened = await waitForSignerCondition(
        admin,
        objectName("secretpin"),
        "Ready",
        "False",
        "WaitingForCertificate",
      );
      expect(opened.status?.pendingCertificateRequest)
        .to.have.property("pem")
        .that.includes("CERTIFICATE REQUEST");
      await expectPinNowhere([token.userPin, wrongPin], []);
    } finally {
      for (const [what] of cases) await deleteSigner(admin, objectName(what));
    }
  });
});

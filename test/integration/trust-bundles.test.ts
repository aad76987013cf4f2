/**
 * The rotation runbooks of a CA operator, in order, on a real API server. Every trust check is
 * `openssl verify` of a real leaf against the bundle read back from a tenant's ConfigMap.
 * The controller's clock is injected (offsetMs) so overlap windows pass in milliseconds.
 */
import { expect } from "chai";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { CertificatesV1beta1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { clusterTrustBundleName } from "../../src/bundle/trust-bundle.js";
import { trustBundleLabel } from "../../src/bundle/publishers.js";
import { runCli } from "../../src/cli/main.js";
import { apiErrorCode } from "../../src/kube/client.js";
import {
  cacertsFiles,
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
  type GeneratedCertificateAuthority,
} from "../../src/pki/offline-ca.js";
import { buildTestCertificateRequest, opensslVerify, testKey } from "../support/pki.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readSigner,
  setApproval,
  submitApprovedServerCsr,
  startController,
  submitCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { grantClusterRole, serviceAccountSubject, uniqueName } from "../support/identities.js";
import { controlPlane } from "./setup.js";

describe("trust bundles and CA rotation without restarts", function () {
  this.timeout(90_000);
  const suffix = uniqueName("b").slice(2);
  const signerName = `bundles.csr-signer.test/foo-${suffix}`;
  const objectName = `bundles-${suffix}`;
  const secretName = `bundles-cacerts-${suffix}`;
  const tenantLabel = `bundles-test-${suffix}`;
  const namespaceA = `bundles-a-${suffix}`;
  const configMapName = `${objectName}-trust-bundle`;
  let admin: KubeConfig;
  let core: CoreV1Api;
  let running: RunningController;
  let offsetMs = 0; // the controller's clock runs this far ahead
  const clock = () => new Date(Date.now() + offsetMs);
  let rootA: GeneratedCertificateAuthority;
  let rootB: GeneratedCertificateAuthority;
  const leaves: Record<string, string> = {};
  let a2Intermediate: GeneratedCertificateAuthority;

  async function intermediate(root: GeneratedCertificateAuthority, name: string) {
    return createIntermediateCertificateAuthority(root, {
      subject: [{ type: "CN", value: `${name}-${suffix}` }],
      lifetimeSeconds: 365 * 86400,
      keyType: "ecdsa-p256",
    });
  }

  async function issue(label: string): Promise<string> {
    const name = await submitApproved(label);
    const outcome = await waitForOutcome(admin, name);
    expect(outcome.failed, outcome.failed?.message).to.equal(undefined);
    leaves[label] = outcome.certificatePem!;
    return outcome.certificatePem!;
  }

  async function bundleIn(namespace: string): Promise<string | undefined> {
    try {
      return (await core.readNamespacedConfigMap({ name: configMapName, namespace })).data?.["ca.crt"];
    } catch (error) {
      if (apiErrorCode(error) === 404) return undefined;
      throw error;
    }
  }

  async function waitForBundle(
    namespace: string,
    predicate: (pem: string) => boolean,
    what: string,
  ): Promise<string> {
    return waitFor(`the bundle in ${namespace} to ${what}`, async () => {
      const pem = await bundleIn(namespace);
      return pem !== undefined && predicate(pem) ? pem : undefined;
    });
  }

  const count = (pem: string) => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;
  // Trust only: -no_check_time, since the controller's clock runs ahead of openssl's.
  const verifies = (leaf: string, bundle: string) => {
    try {
      opensslVerify(leaf, bundle, ["-no_check_time"]);
      return true;
    } catch {
      return false;
    }
  };

  /** The published ClusterTrustBundle of a signer name, as pods would mount it. */
  async function clusterTrustBundleOf(name: string): Promise<string> {
    return (
      await admin
        .makeApiClient(CertificatesV1beta1Api)
        .readClusterTrustBundle({ name: clusterTrustBundleName(name) })
    ).spec.trustBundle;
  }

  /** Creates and approves a CSR of the suite's Signer; returns its name (the outcome is awaited separately). */
  async function submitApproved(label: string): Promise<string> {
    const name = uniqueName(`csr-${label.toLowerCase()}`);
    await submitApprovedServerCsr(admin, name, signerName, `${label.toLowerCase()}.example.test`);
    return name;
  }

  /** `csr-signer istio mesh-config` for the suite's Signer: its stdout. */
  async function meshConfig(): Promise<string> {
    let stdout = "";
    let exitCode = 0;
    await runCli(
      ["istio", "mesh-config", "--kubeconfig", controlPlane().kubeconfigPath, "--signer", objectName],
      {
        stdout: (text) => void (stdout += text),
        stderr: () => undefined,
        readStdin: async () => "",
        setExitCode: (code) => void (exitCode = code),
        environment: { now: clock, randomBytes: (n) => new Uint8Array(n) },
      },
    );
    expect(exitCode).to.equal(0);
    return stdout;
  }
  /** The PEM text of mesh-config's output with its YAML indentation removed. */
  const unindented = (yaml: string) => yaml.replace(/^ {4}/gm, "");

  async function signingSubject(): Promise<string> {
    return (
      ((await readSigner(admin, objectName)).status as { certificateAuthority?: { subject: string } })
        .certificateAuthority?.subject ?? ""
    );
  }

  before(async function () {
    this.timeout(60_000);
    admin = controlPlane().kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    await installSignerManifests(controlPlane());
    await core.createNamespace({
      body: { metadata: { name: namespaceA, labels: { [tenantLabel]: "yes" } } },
    });
    rootA = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: `root-A-${suffix}` }],
      lifetimeSeconds: 10 * 365 * 86400,
      keyType: "ecdsa-p256",
    });
    rootB = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: `root-B-${suffix}` }],
      lifetimeSeconds: 10 * 365 * 86400,
      keyType: "ecdsa-p384",
    });
    const a1 = await intermediate(rootA, "A1");
    await createCaSecret(admin, secretName, cacertsFiles(a1, [rootA.certificate], [rootA.certificate]));
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName },
      issuance: { defaultDuration: "1h", maxDuration: "1h" },
      trustBundle: { minimumRootPublication: "10m" },
      policy: {
        requesters: { users: ["admin"] },
        tenants: { namespaceSelector: { matchLabels: { [tenantLabel]: "yes" } } },
        dnsNames: ["*.example.test"],
      },
    });
    running = await startController(controlPlane(), [signerName], {
      caFolderPollMs: 200,
      environment: { now: clock, randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)) },
    });
    await waitForSignerCondition(admin, objectName, "Ready", "True").catch((error: unknown) => {
      console.log(running.logs.slice(-12).join(""));
      throw error;
    });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-10).join(""));
  });

  after(async () => {
    await running?.stop();
    await deleteSigner(admin, objectName);
  });

  it("publishes the bundle to tenant namespaces and as a ClusterTrustBundle named after the signer", async () => {
    const bundle = await waitForBundle(namespaceA, (pem) => count(pem) === 1, "hold root A");
    expect(bundle).to.equal(rootA.certificate.pem);
    const ctb = await admin
      .makeApiClient(CertificatesV1beta1Api)
      .readClusterTrustBundle({ name: clusterTrustBundleName(signerName) });
    expect(ctb.spec.signerName).to.equal(signerName);
    expect(ctb.spec.trustBundle).to.equal(bundle);
    expect(verifies(await issue("A1-leaf"), bundle)).to.equal(true);
  });

  it("runbook 1, intermediate A1 -> A2 (same root): new leaves chain to A2; leaves before and after verify against the same bundle", async () => {
    const a2 = await intermediate(rootA, "A2");
    a2Intermediate = a2;
    await createCaSecret(admin, secretName, cacertsFiles(a2, [rootA.certificate], [rootA.certificate]));
    await waitFor("A2 to sign", async () =>
      (await signingSubject()) === `CN=A2-${suffix}` ? true : undefined,
    );
    const leaf = await issue("A2-leaf");
    expect(leaf).to.contain(a2.certificate.pem.trim());
    const bundle = (await bundleIn(namespaceA))!;
    expect(bundle).to.equal(rootA.certificate.pem);
    expect(verifies(leaves["A1-leaf"]!, bundle)).to.equal(true);
    expect(verifies(leaf, bundle)).to.equal(true);
  });

  it("a corrupt update (key of another CA) is refused: Degraded, and signing continues with A2", async () => {
    const other = await intermediate(rootA, "other");
    const a2Files = await readSecretFiles();
    await createCaSecret(admin, secretName, { ...a2Files, "ca-key.pem": other.keyPem });
    const signer = await waitForSignerCondition(
      admin,
      objectName,
      "Degraded",
      "True",
      "CertificateAuthorityKeyMismatch",
    );
    expect(signer.status!.conditions!.find((c) => c.type === "Degraded")!.message).to.contain(
      "ca-key.pem does not match",
    );
    await waitForSignerCondition(admin, objectName, "Ready", "True");
    const leaf = await issue("during-corruption");
    expect(verifies(leaf, (await bundleIn(namespaceA))!)).to.equal(true);
    expect(leaf).to.contain(a2Intermediate.certificate.pem.trim()); // still issued under A2
    await createCaSecret(admin, secretName, a2Files); // repaired
    await waitForSignerCondition(admin, objectName, "Degraded", "False");
  });

  it("runbook 2, root A -> B: both roots are published first; signing from B waits for minimumRootPublication; A stays for the overlap, then leaves", async () => {
    const a2Files = await readSecretFiles();
    // Step 1: the operator adds root B to root-cert.pem; A2 still signs.
    await createCaSecret(admin, secretName, {
      ...a2Files,
      "root-cert.pem": rootA.certificate.pem + rootB.certificate.pem,
    });
    const both = await waitForBundle(namespaceA, (pem) => count(pem) === 2, "hold roots A and B");
    expect(both).to.contain(rootA.certificate.pem).and.to.contain(rootB.certificate.pem);

    // Step 2: the operator switches signing to B1 and drops root A, at once: too early.
    const b1 = await intermediate(rootB, "B1");
    await createCaSecret(admin, secretName, cacertsFiles(b1, [rootB.certificate], [rootB.certificate]));
    const waiting = await waitForSignerCondition(
      admin,
      objectName,
      "Degraded",
      "True",
      "RootNotYetPublished",
    );
    expect(waiting.status!.conditions!.find((c) => c.type === "Degraded")!.message).to.match(
      /must be in the published trust bundle for 600s/,
    );
    const stillA = await issue("A-after-switch");
    expect(verifies(stillA, (await bundleIn(namespaceA))!)).to.equal(true);
    expect(stillA).to.contain(a2Intermediate.certificate.pem.trim());

    // Step 3: ten minutes later (controller clock), B1 signs; A is retired but stays in the bundle.
    // CSRs in flight across the switch: none may fail or be lost.
    const acrossSwitch = await Promise.all([0, 1, 2, 3, 4].map((i) => submitApproved(`switch-${i}`)));
    offsetMs += 11 * 60_000;
    await waitFor("B1 to sign", async () =>
      (await signingSubject()) === `CN=B1-${suffix}` ? true : undefined,
    );
    const fromB = await issue("B1-leaf");
    const overlap = await waitForBundle(namespaceA, (pem) => count(pem) === 2, "still hold A and B");
    expect(verifies(stillA, overlap), "a leaf from A during the overlap").to.equal(true);
    expect(verifies(fromB, overlap), "a leaf from B during the overlap").to.equal(true);
    for (const name of acrossSwitch) {
      const outcome = await waitForOutcome(admin, name);
      expect(outcome.failed, `${name} across the switch`).to.equal(undefined);
      expect(verifies(outcome.certificatePem!, overlap), `${name} against the overlap bundle`).to.equal(true);
    }
    // During the overlap Istio must trust both: mesh-config prints both roots in one entry.
    const duringOverlap = unindented(await meshConfig());
    expect(duringOverlap).to.contain(rootA.certificate.pem).and.to.contain(rootB.certificate.pem);
    expect(duringOverlap.match(/certSigners/g)).to.have.length(1);
    const status = (await readSigner(admin, objectName)).status as {
      trustBundle: { roots: { fingerprintSha256: string; retiredAt?: string }[] };
    };
    expect(
      status.trustBundle.roots.find((r) => r.fingerprintSha256 === rootA.certificate.fingerprintSha256)
        ?.retiredAt,
    ).to.be.a("string");

    // Step 4: after the overlap (maxDuration 1h), only B remains and leaves from A no longer verify.
    offsetMs += 61 * 60_000;
    const onlyB = await waitForBundle(namespaceA, (pem) => count(pem) === 1, "hold only B");
    expect(onlyB).to.equal(rootB.certificate.pem);
    expect(verifies(stillA, onlyB), "a leaf from A after the overlap").to.equal(false);
    expect(verifies(fromB, onlyB)).to.equal(true);
    // The ClusterTrustBundle is written right after the ConfigMaps.
    await waitFor("the ClusterTrustBundle to hold only B", async () => {
      const ctb = await admin
        .makeApiClient(CertificatesV1beta1Api)
        .readClusterTrustBundle({ name: clusterTrustBundleName(signerName) });
      return ctb.spec.trustBundle === onlyB ? true : undefined;
    });
  });

  it("prints meshConfig caCertificates with the current roots (csr-signer istio mesh-config)", async () => {
    const stdout = await meshConfig();
    expect(stdout).to.match(new RegExp(`^caCertificates:\\n- pem: \\|\\n    -----BEGIN CERTIFICATE-----`));
    expect(stdout).to.contain(`  certSigners:\n  - ${signerName}\n`);
    // After the overlap: root B alone, the same bytes as the published bundle.
    expect(stdout.match(/BEGIN CERTIFICATE/g)).to.have.length(1);
    expect(unindented(stdout)).to.contain(rootB.certificate.pem);
    expect(unindented(stdout)).to.contain((await bundleIn(namespaceA))!);
  });

  describe("namespaces converge", () => {
    it("creates the ConfigMap in a new tenant namespace, reverts edits, re-creates it when deleted, removes it when the namespace leaves", async () => {
      const namespaceB = `bundles-b-${suffix}`;
      await core.createNamespace({
        body: { metadata: { name: namespaceB, labels: { [tenantLabel]: "yes" } } },
      });
      const expected = await waitForBundle(namespaceB, () => true, "appear");
      expect(expected).to.equal((await bundleIn(namespaceA))!);

      const tampered = await core.readNamespacedConfigMap({ name: configMapName, namespace: namespaceB });
      tampered.data = { "ca.crt": "-----BEGIN CERTIFICATE-----\nTAMPERED\n-----END CERTIFICATE-----\n" };
      await core.replaceNamespacedConfigMap({ name: configMapName, namespace: namespaceB, body: tampered });
      await waitForBundle(namespaceB, (pem) => pem === expected, "be reverted");

      await core.deleteNamespacedConfigMap({ name: configMapName, namespace: namespaceB });
      await waitForBundle(namespaceB, (pem) => pem === expected, "be re-created");

      const namespace = await core.readNamespace({ name: namespaceB });
      namespace.metadata!.labels = {};
      await core.replaceNamespace({ name: namespaceB, body: namespace });
      await waitFor("the ConfigMap to be removed", async () =>
        (await bundleIn(namespaceB)) === undefined ? true : undefined,
      );
    });

    it("puts its copy back when a tenant moves the copy's label to a Signer that does not exist", async () => {
      const namespaceF = `bundles-f-${suffix}`;
      await core.createNamespace({
        body: { metadata: { name: namespaceF, labels: { [tenantLabel]: "yes" } } },
      });
      const expected = await waitForBundle(namespaceF, () => true, "appear");
      const copy = await core.readNamespacedConfigMap({ name: configMapName, namespace: namespaceF });
      const publisher = copy.metadata!.labels![trustBundleLabel]!;
      copy.metadata!.labels = { [trustBundleLabel]: `nobody-${suffix}` };
      await core.replaceNamespacedConfigMap({ name: configMapName, namespace: namespaceF, body: copy });
      // The copy of a Signer that does not exist is withdrawn; the real publisher writes its own again.
      await waitFor("the copy to carry its publisher's label again", async () => {
        const current = await core
          .readNamespacedConfigMap({ name: configMapName, namespace: namespaceF })
          .catch(() => undefined);
        return current?.metadata?.labels?.[trustBundleLabel] === publisher ? current : undefined;
      });
      expect(await bundleIn(namespaceF)).to.equal(expected);
    });

    it("replaces its copy when a tenant makes it immutable with other content (a 422 must not stall publication)", async () => {
      const namespaceG = `bundles-g-${suffix}`;
      await core.createNamespace({
        body: { metadata: { name: namespaceG, labels: { [tenantLabel]: "yes" } } },
      });
      const expected = await waitForBundle(namespaceG, () => true, "appear");
      const copy = await core.readNamespacedConfigMap({ name: configMapName, namespace: namespaceG });
      copy.immutable = true;
      copy.data = { "ca.crt": "-----BEGIN CERTIFICATE-----\nTAMPERED\n-----END CERTIFICATE-----\n" };
      await core.replaceNamespacedConfigMap({ name: configMapName, namespace: namespaceG, body: copy });
      await waitForBundle(namespaceG, (pem) => pem === expected, "be put back");
      const restored = await core.readNamespacedConfigMap({ name: configMapName, namespace: namespaceG });
      expect(restored.immutable ?? false).to.equal(false);
    });

    it("leaves a terminating namespace alone, and never clobbers a ConfigMap it does not own", async () => {
      const namespaceC = `bundles-c-${suffix}`;
      await core.createNamespace({
        body: { metadata: { name: namespaceC, labels: { [tenantLabel]: "yes" } } },
      });
      await waitForBundle(namespaceC, () => true, "appear");
      // No namespace controller runs here, so the namespace stays Terminating.
      await core.deleteNamespace({ name: namespaceC });
      await waitFor("Terminating", async () =>
        (await core.readNamespace({ name: namespaceC })).status?.phase === "Terminating" ? true : undefined,
      );
      await core.deleteNamespacedConfigMap({ name: configMapName, namespace: namespaceC });

      const namespaceD = `bundles-d-${suffix}`;
      await core.createNamespace({ body: { metadata: { name: namespaceD } } });
      await core.createNamespacedConfigMap({
        namespace: namespaceD,
        body: { metadata: { name: configMapName }, data: { "ca.crt": "someone else's" } },
      });
      const namespace = await core.readNamespace({ name: namespaceD });
      namespace.metadata!.labels = { [tenantLabel]: "yes" };
      await core.replaceNamespace({ name: namespaceD, body: namespace });

      // A later publication (a new tenant namespace) shows the controller has been through both.
      const namespaceE = `bundles-e-${suffix}`;
      await core.createNamespace({
        body: { metadata: { name: namespaceE, labels: { [tenantLabel]: "yes" } } },
      });
      await waitForBundle(namespaceE, () => true, "appear");
      expect(await bundleIn(namespaceC)).to.equal(undefined);
      const foreign = await core.readNamespacedConfigMap({ name: configMapName, namespace: namespaceD });
      expect(foreign.data).to.deep.equal({ "ca.crt": "someone else's" });
      expect(foreign.metadata?.labels?.[trustBundleLabel]).to.equal(undefined);
    });

    it("removes a stale ClusterTrustBundle of ours for the signer", async () => {
      const beta = admin.makeApiClient(CertificatesV1beta1Api);
      const stale = `${signerName.replaceAll("/", ":")}:stale`;
      await beta.createClusterTrustBundle({
        body: {
          metadata: { name: stale, labels: { [trustBundleLabel]: objectName } },
          spec: { signerName, trustBundle: rootA.certificate.pem },
        },
      });
      await waitFor("the stale ClusterTrustBundle to be removed", async () => {
        try {
          await beta.readClusterTrustBundle({ name: stale });
          return undefined;
        } catch (error) {
          return apiErrorCode(error) === 404 ? true : undefined;
        }
      });
      expect(
        (await beta.readClusterTrustBundle({ name: clusterTrustBundleName(signerName) })).spec.signerName,
      ).to.equal(signerName);
    });
  });

  describe("CA files mounted by a secrets-store CSI driver (atomic ..data symlink swaps)", () => {
    const folderSigner = `bundles.csr-signer.test/mounted-${suffix}`;
    const folderObject = `bundles-mounted-${suffix}`;
    let folder: string;
    let version = 0;

    /** Writes a new version folder and swaps ..data to it with one rename, as the CSI driver does. */
    function mount(files: Record<string, string>): void {
      const versionDir = join(folder, `..${++version}`);
      mkdirSync(versionDir);
      for (const [name, content] of Object.entries(files)) writeFileSync(join(versionDir, name), content);
      symlinkSync(basename(versionDir), join(folder, "..data_tmp"));
      renameSync(join(folder, "..data_tmp"), join(folder, "..data"));
      for (const name of Object.keys(files)) {
        if (!existsSync(join(folder, name))) symlinkSync(join("..data", name), join(folder, name));
      }
    }

    async function issueFromFolder(): Promise<string> {
      const name = uniqueName("csr-mounted");
      const requestPem = buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subjectAltNames: { dns: ["m.example.test"] },
      });
      await submitCsr(admin, {
        name,
        signerName: folderSigner,
        requestPem,
        usages: ["digital signature", "server auth"],
      });
      await setApproval(admin, name, "Approved");
      return (await waitForOutcome(admin, name)).certificatePem!;
    }

    before(async () => {
      folder = mkdtempSync(join(tmpdir(), "csr-signer-mounted-"));
      mount(cacertsFiles(await intermediate(rootA, "M1"), [rootA.certificate], [rootA.certificate]));
      await createSigner(admin, folderObject, {
        signerName: folderSigner,
        certificateAuthority: { path: folder },
        policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
      });
      // The suite's controller handles this Signer too: it only needs sign and attest on its name.
      await grantClusterRole(
        admin,
        serviceAccountSubject("csr-signer", "csr-signer"),
        [
          {
            apiGroups: ["certificates.k8s.io"],
            resources: ["signers"],
            resourceNames: [folderSigner],
            verbs: ["sign", "attest"],
          },
        ],
        "mounted-sign",
      );
      await waitForSignerCondition(admin, folderObject, "Ready", "True");
    });

    after(async () => {
      await deleteSigner(admin, folderObject);
      rmSync(folder, { recursive: true, force: true });
    });

    it("picks up a swapped intermediate within seconds, without a restart; refuses a broken swap and keeps signing", async () => {
      const beforeSwap = await issueFromFolder();
      // This Signer has no tenants: its bundle is the ClusterTrustBundle.
      expect(verifies(beforeSwap, await clusterTrustBundleOf(folderSigner))).to.equal(true);
      const m2 = await intermediate(rootA, "M2");
      mount(cacertsFiles(m2, [rootA.certificate], [rootA.certificate]));
      await waitFor("M2 to sign", async () => {
        const status = (await readSigner(admin, folderObject)).status as {
          certificateAuthority?: { subject: string };
        };
        return status.certificateAuthority?.subject === `CN=M2-${suffix}` ? true : undefined;
      });
      const afterSwap = await issueFromFolder();
      expect(afterSwap).to.contain(m2.certificate.pem.trim());
      expect(verifies(afterSwap, await clusterTrustBundleOf(folderSigner))).to.equal(true);

      const other = await intermediate(rootA, "M3");
      mount({ ...cacertsFiles(m2, [rootA.certificate], [rootA.certificate]), "ca-key.pem": other.keyPem });
      await waitForSignerCondition(
        admin,
        folderObject,
        "Degraded",
        "True",
        "CertificateAuthorityKeyMismatch",
      );
      const duringBrokenSwap = await issueFromFolder();
      expect(duringBrokenSwap).to.contain(m2.certificate.pem.trim());
    });
  });

  async function readSecretFiles(): Promise<Record<string, string>> {
    const secret = await core.readNamespacedSecret({ name: secretName, namespace: "csr-signer" });
    return Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64").toString()]),
    );
  }
});

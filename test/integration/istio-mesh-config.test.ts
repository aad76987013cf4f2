/**
 * --istio-mesh-config on the real API server: the controller keeps meshConfig caCertificates in an
 * Istio mesh ConfigMap equal to what `csr-signer istio mesh-config` prints, through a root rotation
 * and a hand edit, and every other byte of the mesh config stays as it was; tenants' large roots
 * cannot push the shared ConfigMap past the API server's size limit.
 */
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { replaceCaCertificates } from "../../src/bundle/istio-mesh-config.js";
import { configMapDataBytes, meshConfigMapBudgetBytes } from "../../src/bundle/istio-mesh-config-budget.js";
import { cacertsFiles } from "../../src/pki/offline-ca.js";
import { runCliInProcess } from "../support/cli.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  readSigner,
  startController,
  waitForCsrEvent,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { opensslSelfSignedCa } from "../support/openssl.js";
import { makeTestCertificateAuthority, type TestCertificateAuthority } from "../support/pki.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

describe("--istio-mesh-config: meshConfig caCertificates kept in sync", function () {
  this.timeout(90_000);
  const namespace = uniqueName("istio-mesh");
  const objectName = uniqueName("mesh-signer");
  const signerName = `example.com/${objectName}`;
  const secretName = `${objectName}-cacerts`;
  // Comments, odd spacing, a key after caCertificates and a nested caCertificates: all kept verbatim.
  const head =
    "# Istio mesh config (helm)\ntrustDomain:   cluster.local\ndefaultConfig:\n  caCertificates: nested-not-ours\n";
  // A stale entry of ours (replaced) and another CA's entry (kept after ours).
  const oldBlock =
    `caCertificates:\n- pem: |\n    stale\n  certSigners:\n  - ${signerName}\n` +
    "- pem: |\n    other-ca\n  certSigners:\n  - example.com/not-ours\n";
  const tail = "\n# the next key\nenablePrometheusMerge: true\n";
  let admin: KubeConfig;
  let core: CoreV1Api;
  let running: RunningController;
  let ca: Awaited<ReturnType<typeof makeTestCertificateAuthority>>;

  /** The signer names of the entries `istio mesh-config` printed: the ones a sync owns. */
  function signerNamesIn(printed: string): Set<string> {
    return new Set([...printed.matchAll(/^ {2}certSigners:\n {2}- (.+)$/gm)].map((match) => match[1]!));
  }

  async function mesh(): Promise<string> {
    return (await core.readNamespacedConfigMap({ name: "istio", namespace })).data?.mesh ?? "";
  }

  /** The mesh text as it should be now: the original around what `istio mesh-config` prints. */
  async function expected(base = `${head}${oldBlock}${tail}`): Promise<string> {
    const printed = await runCliInProcess([
      "istio",
      "mesh-config",
      "--kubeconfig",
      controlPlane().kubeconfigPath,
    ]);
    expect(printed.exitCode, printed.stderr).to.equal(0);
    // example.com/not-ours names no Signer: its entry is someone else's and stays.
    const edit = replaceCaCertificates(base, printed.stdout, signerNamesIn(printed.stdout));
    if (!edit.ok) throw new Error(edit.problem);
    return edit.text;
  }

  async function waitForMeshInSync(
    what: string,
    check: (text: string) => boolean = () => true,
  ): Promise<string> {
    return waitFor(`the mesh config to be in sync (${what})`, async () => {
      const text = await mesh();
      return text === (await expected()) && check(text) ? text : undefined;
    });
  }

  before(async function () {
    this.timeout(60_000);
    admin = controlPlane().kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    await installSignerManifests(controlPlane());
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: { name: "istio" },
        data: { mesh: `${head}${oldBlock}${tail}`, meshNetworks: "networks: {}" },
      },
    });
    ca = await makeTestCertificateAuthority({ name: objectName });
    await createCaSecret(admin, secretName, ca.files);
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    running = await startController(controlPlane(), [signerName], {
      istioMeshConfigs: [{ namespace, name: "istio" }],
      istioMeshConfigResyncMs: 300,
    });
    await waitForSignerCondition(admin, objectName, "Ready", "True");
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-10).join("\n"));
  });

  after(async () => {
    await running?.stop();
    await deleteSigner(admin, objectName);
  });

  it("replaces our stale entry with the Signer's roots, keeps another CA's entry, and leaves every other byte and key alone", async () => {
    const text = await waitForMeshInSync("first pass", (current) => !current.includes("stale"));
    expect(text.startsWith(head)).to.equal(true);
    expect(text.endsWith(tail)).to.equal(true);
    expect(text).to.contain("  certSigners:\n    - example.com/not-ours\n");
    expect(text).to.contain(ca.root.certificate.pem.split("\n")[1]);
    const configMap = await core.readNamespacedConfigMap({ name: "istio", namespace });
    expect(configMap.data?.meshNetworks).to.equal("networks: {}");
  });

  it("a root rotation reaches the mesh config with no hand edit: both roots in the signer's one entry", async () => {
    const next = await makeTestCertificateAuthority({ name: `${objectName}-next` });
    // Step one of a root rotation: the new root joins root-cert.pem; the old intermediate still signs.
    await createCaSecret(
      admin,
      secretName,
      cacertsFiles(ca.intermediate, [ca.root.certificate], [ca.root.certificate, next.root.certificate]),
    );
    const text = await waitForMeshInSync("both roots", (current) =>
      current.includes(next.root.certificate.pem.split("\n")[1]!),
    );
    const entry = text.slice(text.indexOf("- pem: |"), text.indexOf(`  - ${signerName}\n`));
    expect(entry).to.contain(ca.root.certificate.pem.split("\n")[1]);
    expect(entry).to.contain(next.root.certificate.pem.split("\n")[1]);
    expect(text.startsWith(head) && text.endsWith(tail)).to.equal(true);
  });

  it("puts the field back after a hand edit drops it (resync), still leaving the rest alone", async () => {
    const configMap = await core.readNamespacedConfigMap({ name: "istio", namespace });
    const handEdited = `${head}${tail}`;
    await core.replaceNamespacedConfigMap({
      name: "istio",
      namespace,
      body: { ...configMap, data: { ...configMap.data, mesh: handEdited } },
    });
    const restored = await waitFor("the mesh config to be restored", async () => {
      const text = await mesh();
      return text === (await expected(handEdited)) ? text : undefined;
    });
    expect(restored).to.contain(`  - ${signerName}\n`);
    expect(restored.startsWith(`${head}${tail}`)).to.equal(true);
  });
});

/**
 * A self-signed CA root of about 7.8 KB DER (under the 8192-byte cap): the largest a tenant writing
 * its own CA Secret may put into root-cert.pem, padded with DNS names.
 */
function largeRootPem(name: string): string {
  const names = Array.from({ length: 130 }, (_, i) => `DNS:n-${i}.${"x".repeat(44)}.example`).join(",");
  return opensslSelfSignedCa({ subject: `/CN=${name}`, extensions: [`subjectAltName=${names}`] })[
    "tls.crt"
  ].toString("utf8");
}

describe("--istio-mesh-config: the mesh ConfigMap stays under its size budget when tenants' roots are large", function () {
  this.timeout(120_000);
  const namespace = uniqueName("istio-mesh-budget");
  const suffix = namespace.slice(-8);
  const small = `small-${suffix}`;
  const large = Array.from({ length: 5 }, (_, i) => `large-${i}-${suffix}`);
  const signerNameOf = (name: string) => `example.com/${name}`;
  // The ConfigMap's other data leaves room for the small Signer's entry, not for five Signers with
  // four roots each (about 35 KB of caCertificates apiece): with them it would pass the API
  // server's 1 MiB limit, and the write of every tenant's roots would be refused.
  const padding = "#".repeat(meshConfigMapBudgetBytes - 2600);
  let admin: KubeConfig;
  let core: CoreV1Api;
  let running: RunningController;
  let smallCa: TestCertificateAuthority;

  async function mesh(): Promise<string> {
    return (await core.readNamespacedConfigMap({ name: "istio", namespace })).data?.mesh ?? "";
  }

  before(async function () {
    this.timeout(90_000);
    admin = controlPlane().kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    await installSignerManifests(controlPlane());
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: "istio" }, data: { mesh: "trustDomain: cluster.local\n", padding } },
    });
    smallCa = await makeTestCertificateAuthority({ name: small });
    await createCaSecret(admin, `${small}-cacerts`, smallCa.files);
    for (const name of large) {
      const ca = await makeTestCertificateAuthority({ name });
      const extraRoots = [1, 2, 3].map((i) => largeRootPem(`${name} extra root ${i}`)).join("");
      await createCaSecret(admin, `${name}-cacerts`, {
        ...ca.files,
        "root-cert.pem": `${ca.files["root-cert.pem"]}${extraRoots}`,
      });
    }
    for (const name of [small, ...large])
      await createSigner(admin, name, {
        signerName: signerNameOf(name),
        certificateAuthority: { secretName: `${name}-cacerts` },
        policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
        // Several roots at once: no hold before the first one signs (the mesh config is what is tested).
        trustBundle: { minimumRootPublication: "0s" },
      });
    running = await startController(controlPlane(), [small, ...large].map(signerNameOf), {
      istioMeshConfigs: [{ namespace, name: "istio" }],
      istioMeshConfigResyncMs: 300,
    });
    for (const name of [small, ...large]) await waitForSignerCondition(admin, name, "Ready", "True");
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-10).join("\n"));
  });

  after(async () => {
    await running?.stop();
    for (const name of [small, ...large]) await deleteSigner(admin, name);
  });

  it("publishes the small tenant's root and leaves the large ones out, each Degraded IstioMeshConfigTooLarge with a Warning Event; room made, they are back", async () => {
    const text = await waitFor("the small Signer's root in the mesh config", async () => {
      const current = await mesh();
      return current.includes(`  - ${signerNameOf(small)}\n`) ? current : undefined;
    });
    expect(text).to.contain(smallCa.root.certificate.pem.split("\n")[1]);
    for (const name of large) expect(text).not.to.contain(`  - ${signerNameOf(name)}\n`);
    const configMap = await core.readNamespacedConfigMap({ name: "istio", namespace });
    expect(configMapDataBytes(configMap)).to.be.at.most(meshConfigMapBudgetBytes);
    expect(configMap.data?.padding).to.equal(padding);

    for (const name of large) {
      const degraded = await waitForSignerCondition(
        admin,
        name,
        "Degraded",
        "True",
        "IstioMeshConfigTooLarge",
      );
      const message = degraded.status!.conditions!.find((c) => c.type === "Degraded")!.message;
      expect(message).to.contain(
        `do not fit Istio mesh ConfigMap ${namespace}/istio under the ${meshConfigMapBudgetBytes}-byte budget`,
      );
      expect(message).to.match(/its 4 trust-bundle root\(s\) \(\d+ bytes/);
      const event = await waitForCsrEvent(admin, name, "IstioMeshConfigTooLarge", "Warning");
      expect(event.message).to.contain(`Degraded=True: ${message}`);
      // Still signing: only the mesh config is affected.
      expect(
        (await readSigner(admin, name)).status!.conditions!.find((c) => c.type === "Ready")!.status,
      ).to.equal("True");
    }
    expect(
      (await readSigner(admin, small)).status!.conditions!.find((c) => c.type === "Degraded")!.status,
    ).to.equal("False");

    // The operator makes room: every Signer's roots go in, and the large ones recover.
    const current = await core.readNamespacedConfigMap({ name: "istio", namespace });
    await core.replaceNamespacedConfigMap({
      name: "istio",
      namespace,
      body: { ...current, data: { mesh: current.data!.mesh! } },
    });
    await waitFor("every Signer's entry in the mesh config", async () => {
      const current = await mesh();
      return [small, ...large].every((name) => current.includes(`  - ${signerNameOf(name)}\n`))
        ? true
        : undefined;
    });
    for (const name of large) await waitForSignerCondition(admin, name, "Degraded", "False");
  });
});

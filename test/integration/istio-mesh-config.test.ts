/**
 * --istio-mesh-config on the real API server: the controller keeps meshConfig caCertificates in an
 * Istio mesh ConfigMap equal to what `csr-signer istio mesh-config` prints, through a root rotation
 * and a hand edit, and every other byte of the mesh config stays as it was.
 */
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { replaceCaCertificates } from "../../src/bundle/istio-mesh-config.js";
import { cacertsFiles } from "../../src/pki/offline-ca.js";
import { runCliInProcess } from "../support/cli.js";
import {
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  startController,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { uniqueName } from "../support/identities.js";
import { makeTestCertificateAuthority } from "../support/pki.js";
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

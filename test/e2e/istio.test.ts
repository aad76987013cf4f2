/**
 * The end-to-end tier: csr-signer as the external CA of a real istiod (pilot-discovery built from the
 * istio.io/istio module by hack/testbin/build.sh istio), with real proxyless pilot-agents as the
 * workloads of two tenants, on the real API server. istiod runs as a registration authority
 * (EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API, CERT_SIGNER_DOMAIN, PILOT_CERT_PROVIDER=k8s.io/...) under
 * the RBAC Istio's chart gives it, and the Signers are the shipped example's
 * (manifests/examples/istio-multitenant/signers.yaml), one root per tenant.
 *
 * Run alone with `make test-istio` (`make test` runs it too). No assertion is about time: every wait
 * has a generous deadline and fails with the processes' logs.
 */
import { expect } from "chai";
import type { Context } from "mocha";
import { CertificatesV1Api, CoreV1Api, type V1CertificateSigningRequest } from "@kubernetes/client-node";
import { controlPlane } from "../integration/setup.js";
import {
  createCaSecret,
  installSignerManifests,
  kubectl,
  startController,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { runCliInProcess } from "../support/cli.js";
import { describeLog } from "../support/control-plane/processes.js";
import { istiodRbacObjects } from "../support/istio/istiod-rbac.js";
import {
  ensureServiceAccounts,
  istioCaRootCert,
  istioNamespace,
  startIstiod,
  startWorkload,
  type Istiod,
  type Workload,
} from "../support/istio/istio-processes.js";
import type { ParsedCertificate } from "../../src/pki/certificate.js";
import { cacertsFiles } from "../../src/pki/offline-ca.js";
import { openssl } from "../support/openssl.js";
import { makeTestCertificateAuthority, opensslText, opensslVerify } from "../support/pki.js";
import { waitFor } from "../support/wait.js";

const domain = "example.com";
const tenants = ["istio-system", "foo", "bar"] as const;
type Tenant = (typeof tenants)[number];
const signerNames = tenants.map((tenant) => `${domain}/${tenant}`);
const pilotCertProvider = `k8s.io/${domain}/istio-system`;
/** Long enough for a cold istiod on two shared cores; nothing asserts how long anything took. */
const patience = 180_000;

describe("Istio end to end: istiod as a registration authority in front of csr-signer", function () {
  this.timeout(10 * 60_000);
  const roots = new Map<Tenant, string>();
  const workloads: Workload[] = [];
  const istiods: Istiod[] = [];
  let controller: RunningController | undefined;
  let istiod: Istiod;
  let fooRoot: ParsedCertificate | undefined;

  before(async function (this: Context) {
    this.timeout(10 * 60_000);
    const cp = controlPlane();
    const admin = cp.kubeConfig();
    await installSignerManifests(cp);
    // The example leaves namespaces and service accounts to the cluster; the test API server has no
    // ServiceAccount admission, so they are created here.
    await ensureServiceAccounts(cp, istioNamespace, ["istiod", "istiod-canary"]);
    await ensureServiceAccounts(cp, "foo", ["default"]);
    await ensureServiceAccounts(cp, "bar", ["default"]);
    for (const tenant of tenants) {
      // One root per tenant, as the example recommends: tenants do not trust each other.
      const authority = await makeTestCertificateAuthority({
        name: tenant,
        intermediateKeyType: "ecdsa-p256",
      });
      roots.set(tenant, authority.root.certificate.pem);
      if (tenant === "foo") fooRoot = authority.root.certificate;
      await createCaSecret(admin, `${tenant}-cacerts`, authority.files);
    }
    kubectl(cp, ["apply", "--server-side", "-f", "manifests/examples/istio-multitenant/signers.yaml"]);

    // istiod's RBAC as the chart renders it with global.certSigners, for the default and canary revisions.
    const rbac = [...istiodRbacObjects("", signerNames), ...istiodRbacObjects("canary", signerNames)];
    kubectl(
      cp,
      ["apply", "--server-side", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: rbac }),
    );

    // The mesh config of each revision, without caCertificates: the controller (--istio-mesh-config)
    // fills them in, exactly as `csr-signer istio mesh-config` prints them.
    const core = admin.makeApiClient(CoreV1Api);
    for (const revision of ["", "canary"]) {
      await core.createNamespacedConfigMap({
        namespace: istioNamespace,
        body: { metadata: { name: meshConfigMapName(revision) }, data: { mesh: baseMesh(revision) } },
      });
    }
    controller = await startController(cp, signerNames, {
      istioMeshConfigs: ["", "canary"].map((revision) => ({
        namespace: istioNamespace,
        name: meshConfigMapName(revision),
      })),
      istioMeshConfigResyncMs: 2_000,
    });
    for (const tenant of tenants)
      await waitForSignerCondition(admin, tenant, "Ready", "True", undefined, 60_000);
    for (const revision of ["", "canary"]) await waitForMeshInSync(revision, signerNames);

    istiod = await startIstiod(cp, { revision: "", certSignerDomain: domain, pilotCertProvider });
    istiods.push(istiod);
  });

  after(async function (this: Context) {
    this.timeout(60_000);
    for (const workload of workloads) await workload.stop();
    for (const running of istiods) await running.stop();
    await controller?.stop();
  });

  /** The logs of the Istio processes and the controller when a test failed. */
  afterEach(function (this: Context) {
    if (this.currentTest?.state !== "failed") return;
    for (const running of [...istiods, ...workloads]) console.error(describeLog(running.managed, 80));
    if (controller) console.error(controller.logs.slice(-40).join("\n"));
  });

  function meshConfigMapName(revision: string): string {
    return revision === "" ? "istio" : `istio-${revision}`;
  }

  function baseMesh(revision: string): string {
    const suffix = revision === "" ? "" : `-${revision}`;
    return `trustDomain: cluster.local\ndefaultConfig:\n  discoveryAddress: istiod${suffix}.${istioNamespace}.svc:15012\n`;
  }

  /**
   * Waits until the revision's mesh config is its base text plus exactly what `csr-signer istio
   * mesh-config` prints now, and holds every name of `mustName`.
   */
  async function waitForMeshInSync(revision: string, mustName: string[]): Promise<string> {
    const core = controlPlane().kubeConfig().makeApiClient(CoreV1Api);
    return waitFor(
      `meshConfig caCertificates of ${meshConfigMapName(revision)} in sync`,
      async () => {
        const printed = await runCliInProcess([
          "istio",
          "mesh-config",
          "--kubeconfig",
          controlPlane().kubeconfigPath,
        ]);
        const configMap = await core.readNamespacedConfigMap({
          name: meshConfigMapName(revision),
          namespace: istioNamespace,
        });
        const mesh = configMap.data?.mesh ?? "";
        const inSync =
          mesh === `${baseMesh(revision)}${printed.stdout}` && mustName.every((text) => mesh.includes(text));
        return inSync ? mesh : undefined;
      },
      patience,
      { intervalMs: 250 },
    );
  }

  /** The first base64 line of a PEM certificate: enough to find it in YAML-indented or joined text. */
  function pemBody(pem: string): string {
    return pem.split("\n")[1]!;
  }

  function verifies(chain: string, rootsText: string): boolean {
    try {
      opensslVerify(chain, rootsText);
      return true;
    } catch {
      return false; // not under these roots (yet)
    }
  }

  function rootsPem(...of: Tenant[]): string {
    return of.map((tenant) => roots.get(tenant)!).join("");
  }

  /** Leaf of a PEM chain, as openssl prints it. */
  function leafText(chainPem: string): string {
    return opensslText(chainPem.slice(0, chainPem.indexOf("-----END CERTIFICATE-----") + 26));
  }

  async function issuedChain(workload: Workload): Promise<string> {
    return waitFor(
      `a certificate for ${workload.managed.name}`,
      () => Promise.resolve(workload.certificateChain()),
      patience,
      {
        intervalMs: 200,
        giveUpIf: workload.exited,
      },
    );
  }

  it("istiod's serving certificate comes from the istio-system Signer and verifies against its root only", async () => {
    const chain = await istiod.servingChain();
    expect(opensslVerify(chain, rootsPem("istio-system"))).to.contain("OK");
    expect(() => opensslVerify(chain, rootsPem("foo", "bar"))).to.throw(/openssl verify failed/);
    const text = leafText(chain);
    expect(text).to.match(/Issuer: .*CN\s?=\s?istio-system intermediate/);
    for (const name of ["istiod", "istiod-remote", "istio-pilot"]) {
      expect(text).to.contain(`DNS:${name}.${istioNamespace}.svc`);
    }
    // istiod publishes the root it verifies itself with (meshConfig caCertificates for its signer)
    // as every namespace's istio-ca-root-cert: what workloads verify istiod against.
    expect(await istioCaRootCert(controlPlane(), "foo")).to.contain(roots.get("istio-system")!.trim());
  });

  it("each tenant's workload gets a chain that verifies against its own root and no other", async () => {
    const cp = controlPlane();
    const foo = await startWorkload(cp, istiod, {
      namespace: "foo",
      serviceAccount: "default",
      certSigner: "foo",
      name: "app",
    });
    workloads.push(foo);
    const bar = await startWorkload(cp, istiod, {
      namespace: "bar",
      serviceAccount: "default",
      certSigner: "bar",
      name: "app",
    });
    workloads.push(bar);
    for (const [workload, own, others] of [
      [foo, "foo", ["bar", "istio-system"]],
      [bar, "bar", ["foo", "istio-system"]],
    ] as const) {
      const chain = await issuedChain(workload);
      expect(leafText(chain)).to.contain(`URI:spiffe://cluster.local/ns/${own}/sa/default`);
      expect(opensslVerify(chain, rootsPem(own))).to.contain("OK");
      expect(() => opensslVerify(chain, rootsPem(...others))).to.throw(/openssl verify failed/);
      // The workload's own view: the root istiod handed it with the certificate is its tenant's.
      const workloadRoot = workload.rootCertificate() ?? "";
      expect(workloadRoot).to.contain(roots.get(own)!.trim());
      expect(opensslVerify(chain, workloadRoot)).to.contain("OK");
      for (const other of others) expect(workloadRoot).not.to.contain(roots.get(other)!.trim());
    }
  });

  it("a workload asking for another tenant's signer is refused (NamespaceNotTenant) and gets no certificate", async () => {
    const cp = controlPlane();
    const certificates = cp.kubeConfig().makeApiClient(CertificatesV1Api);
    const intruder = await startWorkload(cp, istiod, {
      namespace: "foo",
      serviceAccount: "default",
      certSigner: "bar",
      name: "intruder",
    });
    workloads.push(intruder);
    // istiod files the CSR for example.com/bar, approves it itself, and deletes it after 60 s
    // without a certificate: the refusal has to be seen while the CSR exists.
    const refused = await waitFor(
      "the cross-tenant CSR to be refused",
      async () => {
        const list = await certificates.listCertificateSigningRequest();
        return list.items.find(
          (csr: V1CertificateSigningRequest) =>
            csr.spec.signerName === `${domain}/bar` &&
            csr.status?.conditions?.some((c) => c.type === "Failed" && c.reason === "NamespaceNotTenant"),
        );
      },
      patience,
      { intervalMs: 100, giveUpIf: intruder.exited },
    );
    const request = Buffer.from(refused.spec.request, "base64").toString("utf8");
    expect(opensslRequestText(request)).to.contain("URI:spiffe://cluster.local/ns/foo/sa/default");
    expect(refused.spec.username).to.equal(`system:serviceaccount:${istioNamespace}:istiod`);
    expect(refused.status?.conditions?.some((c) => c.type === "Approved")).to.equal(true);
    expect(refused.status?.certificate ?? "").to.equal("");
    await intruder.stop();
    expect(intruder.certificateChain()).to.equal(undefined);
    expect(controller!.logs.some((line) => line.includes("NamespaceNotTenant"))).to.equal(true);
  });

  it("a revisioned istiod (REVISION=canary) gets its serving certificate from the example Signers", async () => {
    const canary = await startIstiod(controlPlane(), {
      revision: "canary",
      certSignerDomain: domain,
      pilotCertProvider,
    });
    istiods.push(canary);
    const chain = await canary.servingChain();
    expect(opensslVerify(chain, rootsPem("istio-system"))).to.contain("OK");
    const text = leafText(chain);
    expect(text).to.contain(`DNS:istiod-canary.${istioNamespace}.svc`);
    expect(text).to.contain(`DNS:istiod.${istioNamespace}.svc`);
    // And it serves workloads: a foo workload through the canary gets a foo certificate.
    const workload = await startWorkload(controlPlane(), canary, {
      namespace: "foo",
      serviceAccount: "default",
      certSigner: "foo",
      name: "canary-app",
    });
    workloads.push(workload);
    expect(opensslVerify(await issuedChain(workload), rootsPem("foo"))).to.contain("OK");
  });

  it("a root rotation of foo needs no hand edit: istiod takes both roots and hands both to the workload", async () => {
    const cp = controlPlane();
    const admin = cp.kubeConfig();
    const before = workloads.find((workload) => workload.managed.name === "pilot-agent-foo-app")!;
    const oldChain = before.certificateChain()!;
    const next = await makeTestCertificateAuthority({ name: "foo-next", intermediateKeyType: "ecdsa-p256" });
    // A hold shorter than the 10-minute default, explicitly (condition RootPublicationHoldShort): this
    // test's istiod reads the mesh ConfigMap through a watch, not a kubelet-mounted volume.
    kubectl(cp, [
      "patch",
      "signer",
      "foo",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { trustBundle: { minimumRootPublication: "5s" } } }),
    ]);
    // Signing moves to an intermediate of the new root; root-cert.pem keeps the old root beside it, so
    // the Signer publishes both (and signs with the new material only once it is published).
    await createCaSecret(
      admin,
      "foo-cacerts",
      cacertsFiles(next.intermediate, [next.root.certificate], [next.root.certificate, fooRoot!]),
    );
    const newRoot = next.root.certificate.pem;
    await waitForMeshInSync("", [pemBody(newRoot), pemBody(roots.get("foo")!)]);
    // Signing moves to the new intermediate only after the hold: a workload started before then gets
    // (and keeps for its lifetime) a certificate under the old root.
    await waitFor(
      "foo signing with the new intermediate",
      async () =>
        kubectl(cp, [
          "get",
          "signer",
          "foo",
          "-o",
          "jsonpath={.status.certificateAuthority.subject}",
        ]).includes("foo-next intermediate") || undefined,
      60_000,
      { intervalMs: 500 },
    );
    const after = await startWorkload(cp, istiod, {
      namespace: "foo",
      serviceAccount: "default",
      certSigner: "foo",
      name: "app-rotated",
    });
    workloads.push(after);
    // istiod verifies each chain against meshConfig before handing it out, and the agent retries until
    // istiod has reloaded the mesh config: a certificate under the new root means istiod took it.
    const newChain = await waitFor(
      "a certificate under foo's new root",
      async () => {
        // The agent writes cert-chain.pem, then root-cert.pem: wait for both of this certificate.
        const chain = after.certificateChain();
        const anchorWritten = after.rootCertificate()?.includes(pemBody(newRoot)) ?? false;
        return chain !== undefined && anchorWritten && verifies(chain, newRoot) ? chain : undefined;
      },
      patience,
      { intervalMs: 200, giveUpIf: after.exited },
    );
    // What istiod handed the workload: its CA service splits every PEM into single certificates and
    // the agent keeps only the last one as root-cert.pem; the rest of the entry's roots (oldest first)
    // end up after the intermediate in cert-chain.pem. So both roots reach the workload, and both the
    // old and the new certificate verify against them; its trust anchor file alone is the newest root.
    const handedRoots = [pemBody(roots.get("foo")!), pemBody(newRoot)];
    for (const body of handedRoots) expect(newChain).to.contain(body);
    const bundle = `${roots.get("foo")!}${newRoot}`;
    expect(opensslVerify(newChain, bundle)).to.contain("OK");
    expect(opensslVerify(oldChain, bundle)).to.contain("OK");
    const anchor = after.rootCertificate() ?? "";
    expect(anchor.match(/BEGIN CERTIFICATE/g)).to.have.length(1);
    expect(anchor).to.contain(pemBody(newRoot));
    expect(opensslVerify(newChain, anchor)).to.contain("OK");
    expect(() => opensslVerify(oldChain, anchor)).to.throw(/openssl verify failed/);
    expect(() => opensslVerify(oldChain, newRoot)).to.throw(/openssl verify failed/);
    expect(leafText(newChain)).to.match(/Issuer: .*CN\s?=\s?foo-next intermediate/);
  });
});

function opensslRequestText(requestPem: string): string {
  return openssl(["req", "-noout", "-text"], requestPem);
}

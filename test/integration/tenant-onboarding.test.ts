/**
 * Onboarding a tenant without touching cluster-wide RBAC: the controller holds sign and attest on
 * "<domain>/*" (one rule, honoured by the API server's signer authorization), and `csr-signer tenant
 * add` makes the CA, its Secret and the Signer in one step, printed as YAML for kubectl or created
 * with --apply. Also: a minimumRootPublication below the default shows as a condition, no refusal.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CoreV1Api, loadAllYaml, type KubeConfig } from "@kubernetes/client-node";
import { runCliInProcess as cli } from "../support/cli.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  kubectl,
  readCsr,
  readSigner,
  setApproval,
  startController,
  submitApprovedServerCsr,
  submitCsr,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import {
  allowToRequestCertificates,
  asServiceAccount,
  serviceAccountSubject,
  uniqueName,
} from "../support/identities.js";
import {
  buildTestCertificateRequest,
  makeTestCertificateAuthority,
  opensslVerify,
  testKey,
} from "../support/pki.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

describe("tenant onboarding: one RBAC rule per signer-name domain, csr-signer tenant add", function () {
  this.timeout(120_000);
  const suffix = uniqueName("t").slice(2);
  const domain = `tenants-${suffix}.csr-signer.test`;
  const tenants = [
    `alpha-${suffix}`,
    `beta-${suffix}`,
    `gamma-${suffix}`,
    `delta-${suffix}`,
    `eps-${suffix}`,
  ];
  const dir = mkdtempSync(join(tmpdir(), "csr-signer-tenant-"));
  let admin: KubeConfig;
  let controller: RunningController;

  before(async () => {
    const cp = controlPlane();
    admin = cp.kubeConfig();
    await installSignerManifests(cp);
    // The controller's only signer grant: sign and attest on the whole domain, by one resourceName.
    controller = await startController(cp, [`${domain}/*`]);
  });

  after(async () => {
    await controller?.stop();
    for (const name of tenants) await deleteSigner(admin, name);
  });

  /** `csr-signer tenant add <tenant> --domain <domain> <flags>`. */
  const tenantAdd = (tenant: string, ...flags: string[]) =>
    cli(["tenant", "add", tenant, "--domain", domain, ...flags]);
  /** --apply, to the test control plane (asked when a test runs: the control plane starts before them). */
  const applyFlags = () => ["--apply", "--kubeconfig", controlPlane().kubeconfigPath];

  async function requestAsTenant(namespace: string): Promise<string> {
    const name = uniqueName(`csr-${namespace}`);
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);
    await allowToRequestCertificates(admin, serviceAccountSubject(namespace, "default"));
    const requestPem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subjectAltNames: {
        dns: [`web.${namespace}.svc`],
        uri: [`spiffe://cluster.local/ns/${namespace}/sa/default`],
      },
    });
    await submitCsr(asServiceAccount(admin, namespace, "default"), {
      name,
      signerName: `${domain}/${namespace}`,
      requestPem,
      usages: ["digital signature", "key encipherment", "server auth", "client auth"],
    });
    await setApproval(admin, name, "Approved");
    return name;
  }

  it("tenant add | kubectl create: Secret and Signer in one step, a tenant CSR issued under the new root", async () => {
    const [alpha] = tenants as [string, string];
    const run = await tenantAdd(alpha, "--new-root", join(dir, "alpha-root"));
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout.match(/^---$/gm)).to.have.length(2);
    kubectl(controlPlane(), ["create", "-f", "-"], run.stdout);
    const ready = await waitForSignerCondition(admin, alpha, "Ready", "True");
    expect(ready.spec.signerName).to.equal(`${domain}/${alpha}`);
    const outcome = await waitForOutcome(admin, await requestAsTenant(alpha));
    expect(outcome.certificatePem, JSON.stringify(outcome.failed)).to.be.a("string");
    const root = readFileSync(join(dir, "alpha-root", "root-cert.pem"), "utf8");
    expect(opensslVerify(outcome.certificatePem!, root)).to.match(/: OK/);
  });

  it("tenant add --apply under an existing root, with a tenant namespace list", async () => {
    const [, beta] = tenants as [string, string];
    expect((await cli(["ca", "root", "--out", join(dir, "shared-root")])).exitCode).to.equal(0);
    const run = await tenantAdd(
      beta,
      "--root",
      join(dir, "shared-root"),
      "--namespace",
      beta,
      ...applyFlags(),
    );
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.contain(`created Secret ${controllerNamespace}/${beta}-cacerts and Signer ${beta}`);
    await waitForSignerCondition(admin, beta, "Ready", "True");
    const outcome = await waitForOutcome(admin, await requestAsTenant(beta));
    const root = readFileSync(join(dir, "shared-root", "root-cert.pem"), "utf8");
    expect(opensslVerify(outcome.certificatePem!, root)).to.match(/: OK/);
    // A second add of the same tenant changes nothing: the API server refuses to create it again.
    const again = await tenantAdd(beta, "--root", join(dir, "shared-root"), ...applyFlags());
    expect(again.exitCode).to.equal(1);
    expect(again.stderr).to.match(/already exists/);
  });

  it("reusing a tenant name never replaces its CA: kubectl create refuses the printed objects, --apply refuses before creating anything", async () => {
    const [alpha, , , delta] = tenants as [string, string, string, string];
    const core = admin.makeApiClient(CoreV1Api);
    const before = await core.readNamespacedSecret({
      namespace: controllerNamespace,
      name: `${alpha}-cacerts`,
    });
    const again = await tenantAdd(alpha, "--new-root", join(dir, "alpha-root-2"));
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(() => kubectl(controlPlane(), ["create", "-f", "-"], again.stdout)).to.throw(
      /AlreadyExists|already exists/,
    );
    const applied = await tenantAdd(alpha, "--new-root", join(dir, "alpha-root-3"), ...applyFlags());
    expect(applied.exitCode).to.equal(1);
    expect(applied.stderr).to.contain(`Secret ${controllerNamespace}/${alpha}-cacerts already exists`);
    expect(applied.stderr).to.contain(`Signer ${alpha} already exists`);
    expect(applied.stderr).to.contain("never replaces");
    const after = await core.readNamespacedSecret({
      namespace: controllerNamespace,
      name: `${alpha}-cacerts`,
    });
    expect(after.data).to.deep.equal(before.data);
    expect(after.metadata?.resourceVersion).to.equal(before.metadata?.resourceVersion);

    // A Signer alone (its Secret missing): still refused, and no Secret is made for it.
    await createSigner(admin, delta, {
      signerName: `${domain}/${delta}`,
      certificateAuthority: { secretName: `${delta}-cacerts` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    const signerOnly = await tenantAdd(delta, "--new-root", join(dir, "delta-root"), ...applyFlags());
    expect(signerOnly.exitCode).to.equal(1);
    expect(signerOnly.stderr).to.contain(`Signer ${delta} already exists`);
    expect(signerOnly.stderr).not.to.contain("Secret");
    const secretMade = await core
      .readNamespacedSecret({ namespace: controllerNamespace, name: `${delta}-cacerts` })
      .then(
        () => true,
        () => false,
      );
    expect(secretMade).to.equal(false);
  });

  it("--ca-in-tenant-namespace --apply refuses a missing namespace before creating anything; --create-namespace creates it", async () => {
    const eps = tenants[4]!;
    const args = (root: string) => [
      "tenant",
      "add",
      eps,
      "--domain",
      domain,
      "--new-root",
      join(dir, root),
      "--ca-in-tenant-namespace",
      "--apply",
      "--kubeconfig",
      controlPlane().kubeconfigPath,
    ];
    const refused = await cli(args("eps-root"));
    expect(refused.exitCode).to.equal(1);
    expect(refused.stderr).to.contain(`Namespace ${eps} does not exist (created nothing)`);
    expect(refused.stderr).to.contain("--create-namespace");
    const signerMade = await readSigner(admin, eps).then(
      () => true,
      () => false,
    );
    expect(signerMade).to.equal(false);
    const created = await cli([...args("eps-root-2"), "--create-namespace"]);
    expect(created.exitCode, created.stderr).to.equal(0);
    expect(created.stdout).to.contain(
      `created Namespace ${eps}, Role and RoleBinding ${eps}/csr-signer-ca-${eps}`,
    );
    await admin.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: eps, name: `${eps}-cacerts` });
    await waitForSignerCondition(admin, eps, "Ready", "True");
  });

  it("tenant add --ca-in-tenant-namespace --apply: the Secret and the controller's Role in the tenant namespace, a tenant CSR issued", async () => {
    const gamma = tenants[2]!;
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: gamma } } });
    const run = await tenantAdd(
      gamma,
      "--new-root",
      join(dir, "gamma-root"),
      "--ca-in-tenant-namespace",
      ...applyFlags(),
    );
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.contain(
      `created Role and RoleBinding ${gamma}/csr-signer-ca-${gamma}, Secret ${gamma}/${gamma}-cacerts and Signer ${gamma}`,
    );
    // Nothing in the controller's namespace: the tenant's namespace holds the key.
    const core = admin.makeApiClient(CoreV1Api);
    await core.readNamespacedSecret({ namespace: gamma, name: `${gamma}-cacerts` });
    const inControllerNamespace = await core
      .readNamespacedSecret({ namespace: controllerNamespace, name: `${gamma}-cacerts` })
      .then(
        () => true,
        () => false,
      );
    expect(inControllerNamespace).to.equal(false);
    const ready = await waitForSignerCondition(admin, gamma, "Ready", "True");
    expect(ready.spec.certificateAuthority).to.deep.equal({
      secretName: `${gamma}-cacerts`,
      secretNamespace: gamma,
    });
    const outcome = await waitForOutcome(admin, await requestAsTenant(gamma));
    const root = readFileSync(join(dir, "gamma-root", "root-cert.pem"), "utf8");
    expect(opensslVerify(outcome.certificatePem!, root)).to.match(/: OK/);
  });

  it("the domain rule covers that domain only: a Signer of another domain can neither attest nor sign", async () => {
    const objectName = `outside-${suffix}`;
    const ca = await makeTestCertificateAuthority({ name: objectName });
    await createCaSecret(admin, `${objectName}-cacerts`, ca.files);
    const signerName = `other-${suffix}.csr-signer.test/x`;
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName: `${objectName}-cacerts` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
    try {
      const name = uniqueName("csr-outside");
      await submitApprovedServerCsr(admin, name, signerName);
      // Its root cannot even be published: attest is refused outside the domain, so nothing signs.
      const waiting = await waitForSignerCondition(
        admin,
        objectName,
        "Ready",
        "False",
        // The headline names the cause (the refused publication); the root's wait is in the message.
        "TrustBundlePublicationFailed",
      );
      expect(waiting.status!.conditions!.find((c) => c.type === "Ready")!.message).to.contain(
        `not permitted to attest for signerName "${signerName}"`,
      );
      expect((await readCsr(admin, name))?.status?.certificate).to.equal(undefined);
      expect((await readSigner(admin, objectName)).status?.issuedCount ?? 0).to.equal(0);
    } finally {
      await deleteSigner(admin, objectName);
    }
  });

  it("the aggregation example (manifests/examples/tenant-domain) is accepted by the API server (server-side dry run)", () => {
    const out = kubectl(controlPlane(), [
      "apply",
      "--dry-run=server",
      "-f",
      "manifests/examples/tenant-domain/controller-signer-names.yaml",
    ]);
    expect(out).to.contain("clusterrole.rbac.authorization.k8s.io/csr-signer-signer-names");
    expect(out).to.contain("clusterrole.rbac.authorization.k8s.io/csr-signer-domain-tenants.example.com");
  });

  it("the example overlay (manifests/examples/tenant-domain) sets the operator's own domain and binds the aggregated role to the base's ServiceAccount", () => {
    const objects = loadAllYaml(
      kubectl(controlPlane(), ["kustomize", "manifests/examples/tenant-domain"]),
    ) as {
      kind: string;
      metadata: { name: string };
      rules?: { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }[];
      subjects?: unknown[];
    }[];
    const find = (kind: string, name: string) =>
      objects.find((o) => o.kind === kind && o.metadata.name === name)!;
    const signRules = find("ClusterRole", "csr-signer")
      .rules!.filter((r) => r.apiGroups?.includes("certificates.k8s.io") && r.resources?.includes("signers"))
      .map((r) => ({ ...r }));
    expect(signRules).to.deep.equal([
      {
        apiGroups: ["certificates.k8s.io"],
        resources: ["signers"],
        verbs: ["sign", "attest"],
        resourceNames: ["pki.example.org/*"],
      },
    ]);
    expect(find("ClusterRoleBinding", "csr-signer-signer-names").subjects).to.deep.equal(
      find("ClusterRoleBinding", "csr-signer").subjects,
    );
  });

  it("a minimumRootPublication shorter than the default is taken and shown as RootPublicationHoldShort", async () => {
    const [alpha] = tenants as [string, string];
    kubectl(controlPlane(), [
      "patch",
      "signer",
      alpha,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { trustBundle: { minimumRootPublication: "5s" } } }),
    ]);
    const warned = await waitForSignerCondition(
      admin,
      alpha,
      "RootPublicationHoldShort",
      "True",
      "ShorterThanDefault",
    );
    const conditions = warned.status!.conditions!;
    expect(conditions.find((c) => c.type === "RootPublicationHoldShort")!.message).to.contain("is 5s");
    expect(conditions.find((c) => c.type === "Ready")!.status).to.equal("True");
    kubectl(controlPlane(), [
      "patch",
      "signer",
      alpha,
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/spec/trustBundle"}]',
    ]);
    await waitFor("the warning to go with the default hold", async () =>
      (await readSigner(admin, alpha)).status?.conditions?.some((c) => c.type === "RootPublicationHoldShort")
        ? undefined
        : true,
    );
  });
});

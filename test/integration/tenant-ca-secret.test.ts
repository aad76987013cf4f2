/**
 * CA Secrets in the tenant's namespace (spec.certificateAuthority.secretNamespace), on the real API
 * server: the controller reads them under a per-namespace Role scoped to the Secret's name (never a
 * cluster-wide Secret read), a missing Role is the Signer's condition naming the rule and heals
 * once the Role is there, a missing Secret leaves CSRs pending until it appears, and a rotation of
 * that Secret is picked up.
 */
import { execFileSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { expect } from "chai";
import { CoreV1Api, dumpYaml, loadAllYaml, type KubeConfig } from "@kubernetes/client-node";
import { apiErrorCode } from "../../src/kube/client.js";
import { CacertsFiles } from "../../src/pki/ca-layouts.js";
import {
  controllerNamespace,
  createSigner,
  deleteSigner,
  installSignerManifests,
  kubectl,
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
import {
  makeTestCertificateAuthority,
  opensslVerify,
  type TestCertificateAuthority,
} from "../support/pki.js";
import { repositoryRoot, testBinary } from "../support/testbin.js";
import { grantTenantSecretRead, writeTenantSecret } from "../support/tenant-ca-secret.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

function yamlOf(objects: object[]): string {
  return objects.map((object) => `---\n${dumpYaml(object)}`).join("");
}

describe("CA Secrets in the tenant's namespace (certificateAuthority.secretNamespace)", function () {
  this.timeout(120_000);
  const suffix = uniqueName("s").slice(2);
  const domain = `tenant-ca-${suffix}.csr-signer.test`;
  let admin: KubeConfig;
  let controller: RunningController;
  const signers: string[] = [];

  before(async () => {
    const cp = controlPlane();
    admin = cp.kubeConfig();
    await installSignerManifests(cp);
    controller = await startController(cp, [`${domain}/*`]);
  });

  after(async () => {
    await controller?.stop();
    for (const name of signers) await deleteSigner(admin, name);
  });

  /** rest_client_requests_total{code="403",method="GET"}: the controller's refused lists and watches. */
  async function forbiddenGets(): Promise<number> {
    const metric = await controller.controller.metrics.registry
      .getSingleMetric("rest_client_requests_total")!
      .get();
    return metric.values
      .filter((sample) => sample.labels.code === "403" && sample.labels.method === "GET")
      .reduce((sum, sample) => sum + sample.value, 0);
  }

  async function createNamespace(name: string): Promise<void> {
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  }

  async function ensureNamespace(name: string): Promise<void> {
    await createNamespace(name).catch((error: unknown) => {
      if (apiErrorCode(error) !== 409) throw error; // created by another test on this control plane
    });
  }

  async function writeSecret(namespace: string, name: string, ca: TestCertificateAuthority): Promise<void> {
    await writeTenantSecret(admin, namespace, name, ca.files);
  }

  async function grantSecretRead(namespace: string, secretName: string): Promise<void> {
    await grantTenantSecretRead(admin, namespace, secretName);
  }

  async function createTenantSigner(name: string, namespace: string): Promise<string> {
    const signerName = `${domain}/${name}`;
    await createSigner(admin, name, {
      signerName,
      certificateAuthority: { secretName: `${name}-cacerts`, secretNamespace: namespace },
      policy: {
        requesters: { users: ["admin"] },
        tenants: { namespaces: [namespace] },
        dnsNames: ["*.example.test"],
      },
      trustBundle: { minimumRootPublication: "0s" },
    });
    signers.push(name);
    return signerName;
  }

  it("issues from the Secret in the tenant namespace under a Role scoped to its name, and picks up its rotation", async () => {
    const name = `rotating-${suffix}`;
    await createNamespace(name);
    // Another Secret in the namespace the Role does not cover: the controller never lists it.
    await writeSecret(name, "unrelated", await makeTestCertificateAuthority({ name: "unrelated" }));
    await grantSecretRead(name, `${name}-cacerts`);
    const first = await makeTestCertificateAuthority({ name: "first" });
    await writeSecret(name, `${name}-cacerts`, first);
    const signerName = await createTenantSigner(name, name);
    await waitForSignerCondition(admin, name, "Ready", "True");
    const before = uniqueName("csr-tenant-ca");
    await submitApprovedServerCsr(admin, before, signerName);
    const issued = await waitForOutcome(admin, before);
    expect(opensslVerify(issued.certificatePem!, first.root.certificate.pem)).to.match(/: OK/);

    const second = await makeTestCertificateAuthority({ name: "second" });
    await writeSecret(name, `${name}-cacerts`, second);
    await waitFor("the Signer to sign with the rotated CA", async () => {
      const status = (await readSigner(admin, name)).status as
        { certificateAuthority?: { fingerprintSha256?: string } } | undefined;
      return status?.certificateAuthority?.fingerprintSha256 ===
        second.intermediate.certificate.fingerprintSha256
        ? true
        : undefined;
    });
    const after = uniqueName("csr-tenant-ca");
    await submitApprovedServerCsr(admin, after, signerName);
    const rotated = await waitForOutcome(admin, after);
    expect(opensslVerify(rotated.certificatePem!, second.root.certificate.pem)).to.match(/: OK/);

    // Exactly the named Secret is watched, and only while a Signer names it.
    expect(controller.controller.tenantSecretsWatched()).to.include(`${name}/${name}-cacerts`);
    expect(controller.controller.tenantSecretsWatched()).not.to.include(`${name}/unrelated`);
    await deleteSigner(admin, name);
    await waitFor("the watch of the Secret to stop with its Signer", async () =>
      controller.controller.tenantSecretsWatched().includes(`${name}/${name}-cacerts`) ? undefined : true,
    );
  });

  it("without the Role: Ready=False SecretAccessForbidden naming the rule, logged once, CSRs pending; the Role added, it signs", async () => {
    const name = `forbidden-${suffix}`;
    await createNamespace(name);
    const ca = await makeTestCertificateAuthority({ name });
    await writeSecret(name, `${name}-cacerts`, ca);
    const signerName = await createTenantSigner(name, name);
    const refused = await waitForSignerCondition(admin, name, "Ready", "False", "SecretAccessForbidden");
    const message = refused.status!.conditions!.find((c) => c.type === "Ready")!.message;
    expect(message).to.contain(`may not list Secret ${name}/${name}-cacerts`);
    expect(message).to.contain(
      `a Role with the rule {apiGroups: [""], resources: ["secrets"], resourceNames: ["${name}-cacerts"], verbs: ["list", "watch"]}`,
    );
    expect(message).to.contain(`a RoleBinding of it to ServiceAccount ${controllerNamespace}/csr-signer`);
    const csr = uniqueName("csr-forbidden");
    await submitApprovedServerCsr(admin, csr, signerName);
    // Retried with backoff meanwhile: the 403s show in the condition, not as a log line per retry.
    const refusedSoFar = await forbiddenGets();
    await waitFor("two more retries of the refused list", async () =>
      (await forbiddenGets()) >= refusedSoFar + 2 ? true : undefined,
    );
    const path = `/api/v1/namespaces/${name}/secrets`;
    const lines = controller.logs.filter(
      (line) => line.includes(path) || line.includes(`${name}/${name}-cacerts`),
    );
    expect(lines.filter((line) => line.includes("list/watch failed"))).to.deep.equal([]);
    expect(lines.filter((line) => line.includes("may not read a Signer's Secret"))).to.have.length(1);
    expect((await readCsr(admin, csr))?.status?.certificate).to.equal(undefined);
    const event = await waitForCsrEvent(admin, csr, "SignerNotReady", "Warning");
    expect(event.message).to.equal(
      `Signer ${name} cannot sign: SecretAccessForbidden (its Ready condition says why)`,
    );

    await grantSecretRead(name, `${name}-cacerts`);
    await waitForSignerCondition(admin, name, "Ready", "True", undefined, 60_000);
    const outcome = await waitForOutcome(admin, csr);
    expect(opensslVerify(outcome.certificatePem!, ca.root.certificate.pem)).to.match(/: OK/);
  });

  it("a missing Secret: Ready=False CertificateAuthorityMissing, CSRs pending; once created, it signs", async () => {
    const name = `missing-${suffix}`;
    await createNamespace(name);
    await grantSecretRead(name, `${name}-cacerts`);
    const signerName = await createTenantSigner(name, name);
    const waiting = await waitForSignerCondition(
      admin,
      name,
      "Ready",
      "False",
      "CertificateAuthorityMissing",
    );
    expect(waiting.status!.conditions!.find((c) => c.type === "Ready")!.message).to.contain(
      `Secret ${name}/${name}-cacerts not found`,
    );
    const csr = uniqueName("csr-missing");
    await submitApprovedServerCsr(admin, csr, signerName);
    const ca = await makeTestCertificateAuthority({ name });
    await writeSecret(name, `${name}-cacerts`, ca);
    const outcome = await waitForOutcome(admin, csr);
    expect(opensslVerify(outcome.certificatePem!, ca.root.certificate.pem)).to.match(/: OK/);
  });

  it("a Secret deleted after its CA loaded does not stop issuance: Degraded=True CertificateAuthorityMissing, still signing (README: delete the Signer)", async () => {
    const name = `deleted-${suffix}`;
    await createNamespace(name);
    await grantSecretRead(name, `${name}-cacerts`);
    const ca = await makeTestCertificateAuthority({ name });
    await writeSecret(name, `${name}-cacerts`, ca);
    const signerName = await createTenantSigner(name, name);
    await waitForSignerCondition(admin, name, "Ready", "True");
    await admin.makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace: name, name: `${name}-cacerts` });
    const degraded = await waitForSignerCondition(
      admin,
      name,
      "Degraded",
      "True",
      "CertificateAuthorityMissing",
    );
    expect(degraded.status!.conditions!.find((c) => c.type === "Degraded")!.message).to.contain(
      "still signing with the previous CA",
    );
    const csr = uniqueName("csr-deleted");
    await submitApprovedServerCsr(admin, csr, signerName);
    const outcome = await waitForOutcome(admin, csr);
    expect(opensslVerify(outcome.certificatePem!, ca.root.certificate.pem)).to.match(/: OK/);
  });

  it("an encrypted key whose passphrase is another key of the same tenant Secret: its watch keeps that key as well as the CA files, and the Signer signs", async () => {
    const name = `encrypted-${suffix}`;
    await createNamespace(name);
    await grantSecretRead(name, `${name}-cacerts`);
    const ca = await makeTestCertificateAuthority({ name });
    const passphrase = "correct horse battery staple";
    const encryptedKey = createPrivateKey(ca.files[CacertsFiles.key]!)
      .export({ format: "pem", type: "pkcs8", cipher: "aes-256-cbc", passphrase })
      .toString();
    await writeTenantSecret(admin, name, `${name}-cacerts`, {
      ...ca.files,
      [CacertsFiles.key]: encryptedKey,
      passphrase,
      "unread.bin": "u".repeat(50_000), // another key of the tenant's: not a CA file, not named
    });
    const signerName = `${domain}/${name}`;
    await createSigner(admin, name, {
      signerName,
      certificateAuthority: {
        secretName: `${name}-cacerts`,
        secretNamespace: name,
        keyPassphraseSecretRef: { name: `${name}-cacerts`, key: "passphrase" },
      },
      policy: {
        requesters: { users: ["admin"] },
        tenants: { namespaces: [name] },
        dnsNames: ["*.example.test"],
      },
      trustBundle: { minimumRootPublication: "0s" },
    });
    signers.push(name);
    await waitForSignerCondition(admin, name, "Ready", "True");
    const csr = uniqueName("csr-encrypted");
    await submitApprovedServerCsr(admin, csr, signerName);
    const outcome = await waitForOutcome(admin, csr);
    expect(opensslVerify(outcome.certificatePem!, ca.root.certificate.pem)).to.match(/: OK/);
  });

  it("the example (manifests/examples/tenant-ca-secret) is accepted by the API server (server-side dry run)", async () => {
    await ensureNamespace("tenant-foo");
    const out = kubectl(controlPlane(), [
      "apply",
      "--dry-run=server",
      "-f",
      "manifests/examples/tenant-ca-secret/",
    ]);
    expect(out).to.contain("role.rbac.authorization.k8s.io/csr-signer-ca-foo");
    expect(out).to.contain("rolebinding.rbac.authorization.k8s.io/csr-signer-ca-foo");
    expect(out).to.contain("signer.csr-signer.io/foo");
  });

  it("the Helm chart renders the same Role and RoleBinding for a chart Signer naming secretNamespace (server-side dry run)", async () => {
    await ensureNamespace("tenant-foo");
    const values = {
      signers: [
        {
          name: "foo",
          spec: {
            signerName: "tenants.example.com/foo",
            certificateAuthority: {
              secretName: "foo-cacerts",
              secretNamespace: "tenant-foo",
              keyPassphraseSecretRef: { name: "foo-ca-passphrase", key: "passphrase" },
            },
            policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: ["tenant-foo"] } },
          },
        },
        // Its Secret in the release namespace: no Role anywhere else.
        {
          name: "bar",
          spec: {
            signerName: "tenants.example.com/bar",
            certificateAuthority: { secretName: "bar-cacerts" },
            policy: { requesters: { tenantServiceAccounts: true } },
          },
        },
      ],
    };
    const rendered = execFileSync(
      testBinary("HELM_BIN_DIR", "helm"),
      ["template", "csr-signer", "charts/csr-signer", "--namespace", controllerNamespace, "--values", "-"],
      { cwd: repositoryRoot, encoding: "utf8", input: JSON.stringify(values) },
    );
    const objects = (
      loadAllYaml(rendered) as ({ kind: string; metadata: { name: string; namespace?: string } } | null)[]
    )
      .filter((object) => object !== null)
      // The chart's own Role in the release namespace is the base's (helm-chart.test.ts compares it).
      .filter((object) => object.kind === "Role" || object.kind === "RoleBinding")
      .filter((object) => object.metadata.namespace !== controllerNamespace);
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).to.deep.equal([
      "Role/tenant-foo/csr-signer-ca-foo",
      "RoleBinding/tenant-foo/csr-signer-ca-foo",
    ]);
    const [role, binding] = objects as unknown as [{ rules: unknown }, { subjects: unknown }];
    expect(role.rules).to.deep.equal([
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["foo-cacerts", "foo-ca-passphrase"],
        verbs: ["list", "watch"],
      },
    ]);
    expect(binding.subjects).to.deep.equal([
      { kind: "ServiceAccount", name: "csr-signer", namespace: controllerNamespace },
    ]);
    const out = kubectl(controlPlane(), ["apply", "--dry-run=server", "-f", "-"], yamlOf(objects));
    expect(out).to.contain("role.rbac.authorization.k8s.io/csr-signer-ca-foo created (server dry run)");
  });
});

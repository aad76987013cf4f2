/**
 * The deployment manifests against a real kube-apiserver, through the real kubectl: the Signer CRD
 * installs and becomes Established, the Istio multi-tenant example applies, the example Signers are
 * accepted and printed with their columns, nothing parseSignerSpec reads is pruned by the schema, and
 * the schema refuses invalid specs with a message naming the field, as parseSignerSpec does.
 *
 * The CRD stays installed afterwards (other suites use it); the Signers created here are deleted.
 */
import { randomBytes } from "node:crypto";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { loadAllYaml } from "@kubernetes/client-node";
import { parseSignerSpec, SignerSpecError } from "../../src/policy/signer-spec.js";
import { controlPlane } from "./setup.js";
import { testBinary } from "../support/testbin.js";
import { runProcess, type ProcessResult } from "../support/run-process.js";

const REPOSITORY_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CRD_NAME = "signers.csr-signer.io";
const CRD_DIR = "manifests/crd/";
const NAMESPACE_MANIFEST = "manifests/base/namespace.yaml";
const EXAMPLE_DIR = "manifests/examples/istio-multitenant";
const EXAMPLE_SIGNERS = path.join(EXAMPLE_DIR, "signers.yaml");
const API_VERSION = "csr-signer.io/v1alpha1";
/** On every Signer this suite creates, so that cleanup finds exactly those. */
const TEST_LABEL_KEY = "csr-signer.io/test-suite";
const TEST_LABEL_VALUE = "manifests";
/**
 * The example Signers are created under prefixed names: the specs are the file's, but other suites
 * sharing this control plane may create Signers named like the example's, and this suite must never
 * overwrite or delete those.
 */
const NAME_PREFIX = "manifests-test-";

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** Runs kubectl against the test control plane from the repository root; never throws on exit codes. */
async function kubectl(args: string[], input?: string, timeoutMs = 45_000): Promise<ProcessResult> {
  const binary = testBinary("KUBE_BIN_DIR", "kubectl");
  const plane = controlPlane();
  const fullArgs = [
    `--kubeconfig=${plane.kubeconfigPath}`,
    // Discovery cache inside the control plane's folder: nothing written to $HOME, gone with the run.
    `--cache-dir=${path.join(plane.dir, "kubectl-cache")}`,
    ...args,
  ];
  return runProcess(binary, fullArgs, { input, timeoutMs });
}

/** Runs kubectl and returns its standard output; throws with its standard error when it fails. */
async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) {
    throw new Error(
      `kubectl ${args.join(" ")} exited with ${result.code}:\n${result.stderr}${result.stdout}`,
    );
  }
  return result.stdout;
}

/**
 * The base plus manifests/components/<component>, from a kustomization in a folder of its own: what
 * `kubectl kustomize` builds (YAML) and how a server-side dry run of it went.
 */
async function componentOverlay(component: string): Promise<{ built: string; dryRun: ProcessResult }> {
  const dir = await fsp.mkdtemp(path.join(REPOSITORY_ROOT, ".tmp-kustomize-"));
  try {
    const relative = (target: string) => path.relative(dir, path.join(REPOSITORY_ROOT, target));
    await fsp.writeFile(
      path.join(dir, "kustomization.yaml"),
      [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        `resources: [${relative("manifests/base")}]`,
        `components: [${relative(`manifests/components/${component}`)}]`,
        "",
      ].join("\n"),
    );
    const built = await kubectlOk(["kustomize", dir]);
    const dryRun = await kubectl([
      "apply",
      "--server-side",
      "--force-conflicts",
      "--dry-run=server",
      "-k",
      dir,
    ]);
    return { built, dryRun };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function uniqueSignerName(label: string): string {
  return `${NAME_PREFIX}${label}-${randomBytes(4).toString("hex")}`;
}

function signerManifest(name: string, spec: Record<string, unknown>): Manifest {
  return {
    apiVersion: API_VERSION,
    kind: "Signer",
    metadata: { name, labels: { [TEST_LABEL_KEY]: TEST_LABEL_VALUE } },
    spec,
  };
}

/** The smallest spec parseSignerSpec accepts; cases below change one thing at a time. */
function minimalSpec(): Record<string, unknown> {
  return {
    signerName: "example.com/manifests-test",
    certificateAuthority: { secretName: "manifests-test-cacerts" },
    policy: { requesters: { tenantServiceAccounts: true } },
  };
}

async function installCrd(): Promise<void> {
  // --force-conflicts: the file is the truth, whichever field manager installed the CRD before.
  await kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", CRD_DIR]);
  await kubectlOk(["wait", "--for=condition=Established", `crd/${CRD_NAME}`, "--timeout=30s"]);
}

describe("manifests (real kubectl and kube-apiserver)", function () {
  this.timeout(120_000);

  before(async function () {
    await installCrd();
    // The namespaced half of the base needs its namespace to exist, even for a server-side dry run.
    // It is left in place: without kube-controller-manager a deleted namespace never finishes
    // terminating, which would break any later suite that needs it.
    await kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", NAMESPACE_MANIFEST]);
  });

  after(async function () {
    // Only what this suite created; the CRD stays for the other suites.
    await kubectlOk([
      "delete",
      "signers.csr-signer.io",
      "-l",
      `${TEST_LABEL_KEY}=${TEST_LABEL_VALUE}`,
      "--ignore-not-found",
      "--wait=true",
    ]);
  });

  describe("the CRD", function () {
    it("installs idempotently and is Established with the names of the spec", async function () {
      await installCrd(); // A second time, on top of before(): applying again changes nothing.
      const crd = JSON.parse(await kubectlOk(["get", "crd", CRD_NAME, "-o", "json"])) as {
        spec: {
          scope: string;
          names: { kind: string; plural: string; singular: string; shortNames: string[] };
        };
        status: { conditions: { type: string; status: string }[] };
      };
      expect(crd.spec.scope).to.equal("Cluster");
      expect(crd.spec.names).to.include({ kind: "Signer", plural: "signers", singular: "signer" });
      expect(crd.spec.names.shortNames).to.deep.equal(["sgn"]);
      const established = crd.status.conditions.find((condition) => condition.type === "Established");
      expect(established?.status).to.equal("True");
    });

    it("accepts the whole Istio multi-tenant example in a server-side dry run", async function () {
      const result = await kubectl([
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-k",
        EXAMPLE_DIR,
      ]);
      expect(result.code, result.stderr).to.equal(0);
      for (const object of [
        "customresourcedefinition.apiextensions.k8s.io/signers.csr-signer.io",
        "namespace/csr-signer",
        "serviceaccount/csr-signer",
        "clusterrole.rbac.authorization.k8s.io/csr-signer",
        "clusterrolebinding.rbac.authorization.k8s.io/csr-signer",
        "clusterrole.rbac.authorization.k8s.io/csr-signer-metrics-reader",
        "role.rbac.authorization.k8s.io/csr-signer",
        "rolebinding.rbac.authorization.k8s.io/csr-signer",
        "deployment.apps/csr-signer",
        "service/csr-signer-metrics",
        "poddisruptionbudget.policy/csr-signer",
        "networkpolicy.networking.k8s.io/csr-signer",
        "signer.csr-signer.io/istio-system",
        "signer.csr-signer.io/foo",
        "signer.csr-signer.io/bar",
      ]) {
        expect(result.stdout).to.include(object);
      }
      // The namespace warns on restricted Pod Security: the Deployment's pod template must pass it.
      expect(result.stderr).not.to.match(/PodSecurity|would violate/i);
    });
  });

  describe("the kubelet-client-approval component", function () {
    it("adds its own approve grant and the flag to the Deployment, and passes a server-side dry run", async function () {
      const overlay = await componentOverlay("kubelet-client-approval");
      const built = loadAllYaml(overlay.built) as (Manifest & {
        rules?: { resourceNames?: string[]; verbs?: string[] }[];
        spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } };
      })[];
      const grant = built.find(
        (o) => o.kind === "ClusterRole" && o.metadata.name === "csr-signer-kubelet-client-approver",
      );
      expect(grant?.rules).to.deep.equal([
        {
          apiGroups: ["certificates.k8s.io"],
          resources: ["signers"],
          verbs: ["approve"],
          resourceNames: ["kubernetes.io/kube-apiserver-client-kubelet"],
        },
      ]);
      // The base alone never grants approve on the kubelet client signer.
      const base = built.find((o) => o.kind === "ClusterRole" && o.metadata.name === "csr-signer-approver");
      expect(JSON.stringify(base?.rules)).not.to.contain("kube-apiserver-client-kubelet");
      const deployment = built.find((o) => o.kind === "Deployment");
      expect(deployment?.spec?.template?.spec?.containers?.[0]?.args).to.include(
        "--approve-kubelet-client=true",
      );
      expect(overlay.dryRun.code, overlay.dryRun.stderr).to.equal(0);
    });
  });

  describe("the pkcs11 component", function () {
    it("adds the module volume, the Vault Agent PIN annotations and a restricted init container, and passes a server-side dry run", async function () {
      const overlay = await componentOverlay("pkcs11");
      interface PodTemplate {
        metadata?: { annotations?: Record<string, string> };
        spec?: {
          initContainers?: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[];
          containers?: {
            name: string;
            args?: string[];
            volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
          }[];
          volumes?: { name: string; emptyDir?: object; hostPath?: object }[];
        };
      }
      const built = loadAllYaml(overlay.built) as (Manifest & {
        spec?: { template?: PodTemplate };
      })[];
      const template = built.find((o) => o.kind === "Deployment")?.spec?.template;
      const annotations = template?.metadata?.annotations ?? {};
      expect(annotations["vault.hashicorp.com/agent-inject"]).to.equal("true");
      expect(annotations["vault.hashicorp.com/agent-inject-secret-hsm-pin"]).to.equal(
        "secret/data/csr-signer/hsm",
      );
      expect(annotations["vault.hashicorp.com/agent-inject-template-hsm-pin"]).to.include(".Data.data.pin");
      const controller = template?.spec?.containers?.find((c) => c.name === "csr-signer");
      // The base's container keeps its args and mounts; the module folder is added read-only.
      expect(controller?.args).to.include("controller");
      expect(controller?.volumeMounts).to.deep.include({ name: "tmp", mountPath: "/tmp" });
      expect(controller?.volumeMounts).to.deep.include({
        name: "pkcs11-module",
        mountPath: "/opt/hsm",
        readOnly: true,
      });
      expect(template?.spec?.initContainers?.map((c) => c.name)).to.deep.equal(["pkcs11-module"]);
      expect(template?.spec?.volumes?.find((v) => v.name === "pkcs11-module")).to.have.property("emptyDir");
      expect(template?.spec?.volumes?.some((v) => v.hostPath)).to.equal(false);
      expect(overlay.dryRun.code, overlay.dryRun.stderr).to.equal(0);
      // The namespace enforces restricted Pod Security: the added init container must pass it too.
      expect(overlay.dryRun.stderr).not.to.match(/PodSecurity|would violate/i);
    });
  });

  describe("the example Signers", function () {
    const created = new Map<string, string>(); // example name -> name created here

    before(async function () {
      const text = await fsp.readFile(path.join(REPOSITORY_ROOT, EXAMPLE_SIGNERS), "utf8");
      const signers = (loadAllYaml(text) as Manifest[]).map((signer) => {
        const name = `${NAME_PREFIX}${signer.metadata.name}`;
        created.set(signer.metadata.name, name);
        return signerManifest(name, signer.spec ?? {});
      });
      expect([...created.keys()]).to.deep.equal(["istio-system", "foo", "bar"]);
      const list = JSON.stringify({ apiVersion: "v1", kind: "List", items: signers });
      await kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", "-"], list);
    });

    it("are stored as written, and parseSignerSpec accepts what the API server stored", async function () {
      const text = await fsp.readFile(path.join(REPOSITORY_ROOT, EXAMPLE_SIGNERS), "utf8");
      for (const signer of loadAllYaml(text) as Manifest[]) {
        const stored = JSON.parse(
          await kubectlOk(["get", "signer", created.get(signer.metadata.name) ?? "", "-o", "json"]),
        ) as Manifest;
        expect(stored.spec, signer.metadata.name).to.deep.equal(signer.spec);
        expect(() => parseSignerSpec(stored.spec), signer.metadata.name).not.to.throw();
      }
    });

    it("are listed by `kubectl get signers` with their SignerName column", async function () {
      const table = await kubectlOk(["get", "signers", "-l", `${TEST_LABEL_KEY}=${TEST_LABEL_VALUE}`]);
      const [header, ...rows] = table.trim().split("\n");
      expect(header?.split(/\s+/)).to.deep.equal([
        "NAME",
        "SIGNERNAME",
        "READY",
        "DEGRADED",
        "CA-EXPIRY",
        "ISSUED",
        "AGE",
      ]);
      for (const [example, name] of created) {
        const row = rows.find((candidate) => candidate.split(/\s+/)[0] === name);
        expect(row, `row of ${name}`).to.not.equal(undefined);
        expect(row?.split(/\s+/)[1]).to.equal(`example.com/${example}`);
      }
    });

    it("show Ready, Reason, CA-Expiry and Issued from the status subresource", async function () {
      const name = created.get("foo") ?? "";
      const status = {
        status: {
          observedGeneration: 1,
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "CertificateAuthorityLoaded",
              message: "CA loaded from Secret csr-signer/foo-cacerts",
              lastTransitionTime: "2026-01-01T00:00:00Z",
              observedGeneration: 1,
            },
          ],
          certificateAuthority: {
            subject: "O=example,CN=foo intermediate CA",
            issuer: "O=example,CN=foo root CA",
            notAfter: "2030-01-01T00:00:00Z",
            fingerprintSha256: "00:11",
            roots: [
              {
                subject: "O=example,CN=foo root CA",
                notAfter: "2035-01-01T00:00:00Z",
                fingerprintSha256: "22:33",
              },
            ],
          },
          issuedCount: 42,
          failedCount: 1,
        },
      };
      await kubectlOk([
        "patch",
        "signer",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify(status),
      ]);
      const table = await kubectlOk(["get", "signer", name, "-o", "wide", "--no-headers"]);
      expect(table.trim().split(/\s+/).slice(0, 6)).to.deep.equal([
        name,
        "example.com/foo",
        "True",
        "CertificateAuthorityLoaded",
        "2030-01-01T00:00:00Z",
        "42",
      ]);
    });
  });

  it("keeps every field parseSignerSpec reads (the schema prunes none of them)", async function () {
    const spec = {
      signerName: "example.com/manifests-test/every-field",
      certificateAuthority: {
        path: "/etc/csr-signer/ca",
        pkcs11: {
          module: "/usr/lib/softhsm/libsofthsm2.so",
          slot: 3,
          keyId: "01a2",
          pinSecretRef: { name: "hsm-pin", key: "pin" },
        },
      },
      issuance: {
        defaultDuration: "1h30m",
        maxDuration: "48h",
        allowedUsages: ["digital signature", "server auth", "client auth"],
        keyTypes: { rsaMinimumBits: 3072, rsaMaximumBits: 4096, ecdsaCurves: ["P-384"] },
        includeRoot: true,
      },
      policy: {
        requesters: {
          users: ["alice"],
          groups: ["platform"],
          serviceAccounts: ["foo/default"],
          tenantServiceAccounts: true,
          registrationAuthorities: ["istio-system/istiod"],
        },
        tenants: {
          namespaces: ["foo"],
          namespaceSelector: {
            matchLabels: { tenant: "foo" },
            matchExpressions: [{ key: "tier", operator: "In", values: ["gold"] }],
          },
        },
        spiffe: { trustDomain: "cluster.local" },
        dnsNames: ["{serviceAccount}.{namespace}.svc"],
        allowWildcardDnsNames: true,
        ipAddressRanges: ["10.0.0.0/8", "fd00::/8"],
        emailDomains: ["example.com"],
        maxSubjectAltNames: 5,
        subject: { organizations: ["Example"], commonNameFromRequest: true },
      },
    };
    const name = uniqueSignerName("every-field");
    await kubectlOk(["create", "-f", "-"], JSON.stringify(signerManifest(name, spec)));
    const stored = JSON.parse(await kubectlOk(["get", "signer", name, "-o", "json"])) as Manifest;
    expect(stored.spec).to.deep.equal(spec);
    const parsed = parseSignerSpec(stored.spec);
    expect(parsed.issuance).to.deep.include({
      defaultDurationSeconds: 5400,
      maxDurationSeconds: 172800,
      includeRoot: true,
    });
    expect(parsed.policy.tenants.namespaceSelector).to.deep.equal(spec.policy.tenants.namespaceSelector);
    expect(parsed.policy.subject).to.deep.equal(spec.policy.subject);
    expect(parsed.certificateAuthority.pkcs11).to.deep.equal({
      module: "/usr/lib/softhsm/libsofthsm2.so",
      slot: 3,
      keyId: "01a2",
      pin: { secret: { name: "hsm-pin", key: "pin" } },
    });
  });

  it("explains certificateAuthority.pkcs11 and the pending request with `kubectl explain`", async function () {
    const pkcs11 = await kubectlOk(["explain", "signer.spec.certificateAuthority.pkcs11"]);
    expect(pkcs11).to.include("PKCS#11 token");
    for (const field of ["module", "tokenLabel", "slot", "keyLabel", "keyId", "pinFile", "pinSecretRef"])
      expect(pkcs11).to.match(new RegExp(`^\\s+${field}\\s`, "m"));
    const pending = await kubectlOk(["explain", "signer.status.pendingCertificateRequest"]);
    expect(pending).to.include("sign-intermediate");
    const passphrase = await kubectlOk(["explain", "signer.spec.certificateAuthority.keyPassphraseFile"]);
    expect(passphrase).to.include("ENCRYPTED");
    const secretNamespace = await kubectlOk(["explain", "signer.spec.certificateAuthority.secretNamespace"]);
    expect(secretNamespace.replace(/\s+/g, " ")).to.include(
      "holds this CA's key and can sign anything under it",
    );
    expect(secretNamespace.replace(/\s+/g, " ")).to.include("the Signer's only tenant namespace");
    const pinSecretRef = await kubectlOk(["explain", "signer.spec.certificateAuthority.pkcs11.pinSecretRef"]);
    expect(pinSecretRef.replace(/\s+/g, " ")).to.include("Not with certificateAuthority.secretNamespace");
  });

  it("keeps certificateAuthority.secretNamespace naming the Signer's only tenant namespace", async function () {
    const spec = {
      ...minimalSpec(),
      certificateAuthority: {
        secretName: "foo-cacerts",
        secretNamespace: "foo",
        keyPassphraseSecretRef: { name: "foo-ca-passphrase", key: "passphrase" },
      },
      policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: ["foo"] } },
    };
    const name = uniqueSignerName("tenant-ca-secret");
    await kubectlOk(["create", "-f", "-"], JSON.stringify(signerManifest(name, spec)));
    const stored = JSON.parse(await kubectlOk(["get", "signer", name, "-o", "json"])) as Manifest;
    expect(stored.spec).to.deep.equal(spec);
    expect(parseSignerSpec(stored.spec).certificateAuthority.secretNamespace).to.equal("foo");
  });

  it("keeps the token label, key label, PIN file and an encrypted key's passphrase reference", async function () {
    const specs = [
      {
        ...minimalSpec(),
        certificateAuthority: {
          secretName: "mesh-ca-chain",
          pkcs11: {
            module: "/usr/lib/softhsm/libsofthsm2.so",
            tokenLabel: "mesh-ca",
            keyLabel: "intermediate",
            pinFile: "/vault/secrets/hsm-pin",
          },
        },
      },
      {
        ...minimalSpec(),
        certificateAuthority: { secretName: "ca", keyPassphraseSecretRef: { name: "ca-pass", key: "pass" } },
      },
      { ...minimalSpec(), certificateAuthority: { path: "/ca", keyPassphraseFile: "/vault/secrets/pass" } },
    ];
    for (const spec of specs) {
      const name = uniqueSignerName("ca-key-source");
      await kubectlOk(["create", "-f", "-"], JSON.stringify(signerManifest(name, spec)));
      const stored = JSON.parse(await kubectlOk(["get", "signer", name, "-o", "json"])) as Manifest;
      expect(stored.spec).to.deep.equal(spec);
      expect(() => parseSignerSpec(stored.spec)).not.to.throw();
    }
  });

  it("refuses a change of spec.signerName (immutable: no Signer can take over another's name)", async function () {
    const name = uniqueSignerName("immutable");
    await kubectlOk(["create", "-f", "-"], JSON.stringify(signerManifest(name, minimalSpec())));
    const result = await kubectl([
      "patch",
      "signer",
      name,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { signerName: "example.com/someone-else" } }),
    ]);
    expect(result.code, result.stdout).to.not.equal(0);
    expect(result.stderr).to.include("spec.signerName: ");
    expect(result.stderr).to.include("spec.signerName is immutable");
    const stored = JSON.parse(await kubectlOk(["get", "signer", name, "-o", "json"])) as Manifest;
    expect((stored.spec as Record<string, unknown>).signerName).to.equal("example.com/manifests-test");
    // Other fields stay editable.
    await kubectlOk([
      "patch",
      "signer",
      name,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { policy: { maxSubjectAltNames: 3 } } }),
    ]);
  });

  describe("refuses invalid specs with a message naming the field, as parseSignerSpec does", function () {
    interface InvalidCase {
      title: string;
      change: (spec: Record<string, unknown>) => void;
      /** The field parseSignerSpec names, and that the API server's message must name too. */
      field: string;
      /** Part of the API server's message. */
      message: string;
    }
    const policyOf = (spec: Record<string, unknown>): Record<string, unknown> =>
      spec.policy as Record<string, unknown>;
    const cases: InvalidCase[] = [
      {
        title: "missing signerName",
        change: (spec) => delete spec.signerName,
        field: "spec.signerName",
        message: "Required value",
      },
      {
        title: 'the usage "cert sign"',
        change: (spec) => (spec.issuance = { allowedUsages: ["server auth", "cert sign"] }),
        field: "spec.issuance.allowedUsages[1]",
        message: 'Unsupported value: "cert sign"',
      },
      {
        title: "both secretName and path",
        change: (spec) => (spec.certificateAuthority = { secretName: "foo-cacerts", path: "/etc/ca" }),
        field: "spec.certificateAuthority",
        message: "set exactly one of secretName or path",
      },
      {
        title: "a PKCS#11 key named by both tokenLabel and slot",
        change: (spec) =>
          (spec.certificateAuthority = {
            secretName: "chain",
            pkcs11: { module: "/hsm.so", tokenLabel: "t", slot: 0, keyLabel: "k", pinFile: "/pin" },
          }),
        field: "spec.certificateAuthority.pkcs11",
        message: "set exactly one of tokenLabel or slot",
      },
      {
        title: "a PKCS#11 key without a PIN source",
        change: (spec) =>
          (spec.certificateAuthority = {
            secretName: "chain",
            pkcs11: { module: "/hsm.so", tokenLabel: "t", keyLabel: "k" },
          }),
        field: "spec.certificateAuthority.pkcs11",
        message: "set exactly one of pinFile or pinSecretRef",
      },
      {
        title: "a key passphrase with a PKCS#11 key",
        change: (spec) =>
          (spec.certificateAuthority = {
            secretName: "chain",
            keyPassphraseFile: "/pass",
            pkcs11: { module: "/hsm.so", tokenLabel: "t", keyLabel: "k", pinFile: "/pin" },
          }),
        field: "spec.certificateAuthority",
        message: "with pkcs11 there is none",
      },
      {
        title: "a CA Secret namespace that is not one of the Signer's tenant namespaces",
        change: (spec) => {
          spec.certificateAuthority = { secretName: "foo-cacerts", secretNamespace: "bar" };
          policyOf(spec).tenants = { namespaces: ["foo"] };
        },
        field: "spec.certificateAuthority.secretNamespace",
        message: "must be one of spec.policy.tenants.namespaces",
      },
      {
        title: "a CA Secret namespace with no tenant namespaces named",
        change: (spec) => (spec.certificateAuthority = { secretName: "foo-cacerts", secretNamespace: "foo" }),
        field: "spec.certificateAuthority.secretNamespace",
        message: "must be one of spec.policy.tenants.namespaces",
      },
      {
        title:
          "a CA Secret namespace for a Signer serving a second namespace (its Secret readers could sign for it)",
        change: (spec) => {
          spec.certificateAuthority = { secretName: "foo-cacerts", secretNamespace: "foo" };
          policyOf(spec).tenants = { namespaces: ["foo", "foo-batch"] };
        },
        field: "spec.certificateAuthority.secretNamespace",
        message: "must be the Signer's only tenant namespace",
      },
      {
        title: "a CA Secret namespace for a Signer serving a namespace selector",
        change: (spec) => {
          spec.certificateAuthority = { secretName: "foo-cacerts", secretNamespace: "foo" };
          policyOf(spec).tenants = {
            namespaces: ["foo"],
            namespaceSelector: { matchLabels: { tenant: "foo" } },
          };
        },
        field: "spec.certificateAuthority.secretNamespace",
        message: "must be the Signer's only tenant namespace",
      },
      {
        title: "a PKCS#11 PIN Secret with secretNamespace (a tenant could lock the shared token)",
        change: (spec) => {
          spec.certificateAuthority = {
            secretName: "foo-chain",
            secretNamespace: "foo",
            pkcs11: {
              module: "/hsm.so",
              tokenLabel: "t",
              keyLabel: "k",
              pinSecretRef: { name: "pin", key: "pin" },
            },
          };
          policyOf(spec).tenants = { namespaces: ["foo"] };
        },
        field: "spec.certificateAuthority.pkcs11.pinSecretRef",
        message: "cannot be used with secretNamespace",
      },
      {
        title: "a CA Secret namespace where no Secret is named",
        change: (spec) => {
          spec.certificateAuthority = { path: "/etc/ca", secretNamespace: "foo" };
          policyOf(spec).tenants = { namespaces: ["foo"] };
        },
        field: "spec.certificateAuthority.secretNamespace",
        message: "none is set",
      },
      {
        title: "a serviceAccounts entry without a slash",
        change: (spec) => (policyOf(spec).requesters = { serviceAccounts: ["default"] }),
        field: "spec.policy.requesters.serviceAccounts[0]",
        message: "should match",
      },
      {
        title: "a kubernetes.io/ signerName",
        change: (spec) => (spec.signerName = "kubernetes.io/kube-apiserver-client"),
        field: "spec.signerName",
        message: "kubernetes.io/ signer names belong to kube-controller-manager",
      },
      {
        title: "a maxDuration below the defaultDuration",
        change: (spec) => (spec.issuance = { defaultDuration: "24h", maxDuration: "12h" }),
        field: "spec.issuance.maxDuration",
        message: "must be at least spec.issuance.defaultDuration",
      },
      {
        title: "rsaMaximumBits below rsaMinimumBits",
        change: (spec) => (spec.issuance = { keyTypes: { rsaMinimumBits: 4096, rsaMaximumBits: 3072 } }),
        field: "spec.issuance.keyTypes.rsaMaximumBits",
        message: "must be at least rsaMinimumBits",
      },
      {
        title: "requesters that allow nobody",
        change: (spec) => (policyOf(spec).requesters = { tenantServiceAccounts: false }),
        field: "spec.policy.requesters",
        message: "allows nobody",
      },
      {
        title: "a reserved organization",
        change: (spec) => (policyOf(spec).subject = { organizations: ["System:Masters"] }),
        field: "spec.policy.subject.organizations[0]",
        message: 'names starting with "system:" (any case) are reserved by Kubernetes',
      },
      {
        title: "an IP range that is not a CIDR",
        change: (spec) => (policyOf(spec).ipAddressRanges = ["10.0.0.0"]),
        field: "spec.policy.ipAddressRanges[0]",
        message: "must be a CIDR",
      },
    ];

    for (const { title, change, field, message } of cases) {
      it(title, async function () {
        const spec = minimalSpec();
        change(spec);
        let codeError: unknown;
        try {
          parseSignerSpec(spec);
        } catch (error) {
          codeError = error;
        }
        expect(codeError, "parseSignerSpec must refuse it too").to.be.instanceOf(SignerSpecError);
        expect((codeError as SignerSpecError).field).to.equal(field);

        const name = uniqueSignerName("invalid");
        const result = await kubectl(["create", "-f", "-"], JSON.stringify(signerManifest(name, spec)));
        expect(result.code, result.stdout).to.not.equal(0);
        expect(result.stderr).to.include(`is invalid`);
        expect(result.stderr).to.include(`${field}: `);
        expect(result.stderr).to.include(message);
        const lookup = await kubectl(["get", "signer", name, "--ignore-not-found", "-o", "name"]);
        expect(lookup.stdout.trim(), "nothing was stored").to.equal("");
      });
    }
  });
});

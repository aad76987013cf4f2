import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { loadAllYaml, loadYaml } from "@kubernetes/client-node";
import { defaultTenantDomain, tenantAddHelp } from "../../../src/cli/tenant-command.js";
import { runCliInProcess as cli } from "../../support/cli.js";
import { toYaml } from "../../../src/cli/yaml.js";
import { loadCertificateAuthority } from "../../../src/pki/certificate-authority.js";
import { parseSignerSpec } from "../../../src/policy/signer-spec.js";

describe("csr-signer tenant add (output; applying it is test/integration/tenant-onboarding.test.ts)", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
  });

  it("prints a Secret whose files load as a CA and a Signer whose spec the controller accepts", async () => {
    const run = await cli([
      "tenant",
      "add",
      "foo",
      "--domain",
      "example.com",
      "--new-root",
      join(dir, "root"),
    ]);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stderr).to.contain("keep it offline");
    const [secret, signer] = loadAllYaml(run.stdout) as [
      { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> },
      { kind: string; metadata: { name: string }; spec: { signerName: string; policy: unknown } },
    ];
    expect([secret.kind, secret.metadata.name, secret.metadata.namespace]).to.deep.equal([
      "Secret",
      "foo-cacerts",
      "csr-signer",
    ]);
    const files = Object.fromEntries(
      Object.entries(secret.data).map(([n, v]) => [n, Buffer.from(v, "base64")]),
    );
    expect(loadCertificateAuthority(files, new Date()).signingCertificate.subject).to.contain(
      "foo intermediate CA",
    );
    expect(signer.kind).to.equal("Signer");
    const spec = parseSignerSpec(signer.spec, signer.metadata.name);
    expect(spec.signerName).to.equal("example.com/foo");
    expect(spec.policy.tenants.namespaces).to.deep.equal(["foo"]);
  });

  it("--ca-in-tenant-namespace: the Secret in the tenant namespace, the Signer naming it, and the controller's Role for that Secret alone", async () => {
    const run = await cli([
      "tenant",
      "add",
      "foo",
      "--domain",
      "example.com",
      "--new-root",
      join(dir, "root"),
      "--namespace",
      "foo-web",
      "--ca-in-tenant-namespace",
      "--controller-service-account",
      "platform/signer",
    ]);
    expect(run.exitCode, run.stderr).to.equal(0);
    const [role, binding, secret, signer] = loadAllYaml(run.stdout) as [
      { kind: string; metadata: { name: string; namespace: string }; rules: unknown },
      { kind: string; metadata: { name: string; namespace: string }; roleRef: unknown; subjects: unknown },
      { kind: string; metadata: { name: string; namespace: string } },
      { kind: string; metadata: { name: string }; spec: unknown },
    ];
    expect([role.kind, role.metadata.namespace, role.metadata.name]).to.deep.equal([
      "Role",
      "foo-web",
      "csr-signer-ca-foo",
    ]);
    expect(role.rules).to.deep.equal([
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["foo-cacerts"], verbs: ["list", "watch"] },
    ]);
    expect([binding.kind, binding.metadata.namespace]).to.deep.equal(["RoleBinding", "foo-web"]);
    expect(binding.roleRef).to.deep.equal({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "csr-signer-ca-foo",
    });
    expect(binding.subjects).to.deep.equal([
      { kind: "ServiceAccount", namespace: "platform", name: "signer" },
    ]);
    expect([secret.kind, secret.metadata.namespace, secret.metadata.name]).to.deep.equal([
      "Secret",
      "foo-web",
      "foo-cacerts",
    ]);
    const spec = parseSignerSpec(signer.spec, signer.metadata.name);
    expect(spec.certificateAuthority).to.deep.equal({
      secretName: "foo-cacerts",
      secretNamespace: "foo-web",
    });
    expect(spec.policy.tenants.namespaces).to.deep.equal(["foo-web"]);
  });

  it("--ca-in-tenant-namespace refuses a shared --root and a second --namespace, before any key is made", async () => {
    // A real root: the refusal must come from the flags, not from a missing folder.
    const shared = join(dir, "shared-root");
    expect(
      (await cli(["tenant", "add", "bar", "--domain", "example.com", "--new-root", shared])).exitCode,
    ).to.equal(0);
    const base = ["tenant", "add", "foo", "--domain", "example.com", "--ca-in-tenant-namespace"];
    const cases: [string[], string][] = [
      [[...base, "--root", shared], "--ca-in-tenant-namespace needs --new-root"],
      [
        [...base, "--new-root", join(dir, "two"), "--namespace", "foo-web", "--namespace", "foo-batch"],
        "--ca-in-tenant-namespace serves exactly one --namespace",
      ],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      expect(run.exitCode, args.join(" ")).to.equal(2);
      expect(run.stderr).to.contain(message);
      expect(run.stdout, "no Secret printed").to.equal("");
    }
    expect(existsSync(join(dir, "two")), "no root written").to.equal(false);
  });

  it("without --domain uses the domain manifests/base grants as <domain>/*, and the help says to pipe to kubectl create", async () => {
    const run = await cli(["tenant", "add", "foo", "--new-root", join(dir, "root")]);
    expect(run.exitCode, run.stderr).to.equal(0);
    const signer = (loadAllYaml(run.stdout) as { kind: string; spec: { signerName: string } }[])[1]!;
    expect(signer.spec.signerName).to.equal(`${defaultTenantDomain}/foo`);
    const rbac = loadAllYaml(readFileSync("manifests/base/rbac.yaml", "utf8")) as {
      kind: string;
      metadata: { name: string };
      rules?: { resources?: string[]; verbs: string[]; resourceNames?: string[] }[];
    }[];
    const clusterRole = rbac.find((o) => o.kind === "ClusterRole" && o.metadata.name === "csr-signer")!;
    const signRule = clusterRole.rules!.find(
      (r) => r.resources?.includes("signers") && r.verbs.includes("sign"),
    )!;
    expect(signRule.resourceNames).to.deep.equal([`${defaultTenantDomain}/*`]);
    const chartValues = loadYaml(readFileSync("charts/csr-signer/values.yaml", "utf8")) as {
      rbac: { signerDomains: string[] };
    };
    expect(chartValues.rbac.signerDomains).to.deep.equal([defaultTenantDomain]);
    expect(tenantAddHelp).to.contain("| kubectl create -f -");
    expect(tenantAddHelp).not.to.match(/\| kubectl apply/);
  });

  it("--create-namespace prints the CA Secret's Namespace first, and needs --ca-in-tenant-namespace", async () => {
    const run = await cli([
      "tenant",
      "add",
      "foo",
      "--new-root",
      join(dir, "root"),
      "--namespace",
      "tenant-foo",
      "--ca-in-tenant-namespace",
      "--create-namespace",
    ]);
    expect(run.exitCode, run.stderr).to.equal(0);
    const kinds = (loadAllYaml(run.stdout) as { kind: string; metadata: { name: string } }[]).map(
      (o) => `${o.kind}/${o.metadata.name}`,
    );
    expect(kinds).to.deep.equal([
      "Namespace/tenant-foo",
      "Role/csr-signer-ca-foo",
      "RoleBinding/csr-signer-ca-foo",
      "Secret/foo-cacerts",
      "Signer/foo",
    ]);
    const without = await cli(["tenant", "add", "foo", "--new-root", join(dir, "r2"), "--create-namespace"]);
    expect(without.exitCode).to.equal(2);
    expect(without.stderr).to.contain("it needs --ca-in-tenant-namespace");
  });

  it("refuses a bad name, a missing root choice, a domain the Signer would refuse, and --apply without a kubeconfig", async () => {
    const base = ["tenant", "add"];
    const cases: [string[], string][] = [
      [[...base, "Foo_1", "--domain", "example.com", "--new-root", join(dir, "r")], "give one tenant NAME"],
      [[...base, "foo", "--domain", "example.com"], "exactly one of --root or --new-root"],
      [[...base, "foo", "--domain", "nodots", "--new-root", join(dir, "r")], "spec.signerName"],
      [[...base, "foo", "--domain", "kubernetes.io", "--new-root", join(dir, "r")], "spec.signerName"],
      [
        [
          ...base,
          "foo",
          "--domain",
          "example.com",
          "--new-root",
          join(dir, "r"),
          "--controller-service-account",
          "a/b",
        ],
        "it needs --ca-in-tenant-namespace",
      ],
      [
        [
          ...base,
          "foo",
          "--domain",
          "example.com",
          "--new-root",
          join(dir, "r"),
          "--ca-in-tenant-namespace",
          "--controller-service-account",
          "signer",
        ],
        "--controller-service-account must be NAMESPACE/NAME",
      ],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      expect(run.exitCode, args.join(" ")).to.equal(2);
      expect(run.stderr).to.contain(message);
    }
    const saved = process.env.KUBECONFIG;
    delete process.env.KUBECONFIG;
    try {
      const run = await cli([
        ...base,
        "foo",
        "--domain",
        "example.com",
        "--new-root",
        join(dir, "r"),
        "--apply",
      ]);
      expect(run.exitCode).to.equal(2);
      expect(run.stderr).to.contain("--apply needs --kubeconfig");
    } finally {
      if (saved !== undefined) process.env.KUBECONFIG = saved;
    }
  });

  it("toYaml: strings stay strings (quoted), keys YAML 1.1 would read as booleans are quoted", () => {
    const value = { a: "true", yes: ["1", 2, false, null], nested: { "x/y": "multi\nline" }, empty: [] };
    const text = toYaml(value);
    expect(text).to.contain('"yes":');
    expect(loadAllYaml(text)[0]).to.deep.equal(value);
  });
});

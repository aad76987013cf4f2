/**
 * manifests/monitoring (ServiceMonitor, PrometheusRule) against the Prometheus Operator's own CRDs
 * (v0.85.0 from its Go module, hack/prometheus-operator-crds.sh), installed into the real test
 * kube-apiserver: a server-side dry run with strict field validation, so a field the operator does
 * not know, a wrong type or a value outside its enums is refused as a cluster would refuse it.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { kubectl } from "../support/controller.js";
import { prometheusOperatorCrdFiles, prometheusOperatorCrdNames } from "../support/monitoring-crds.js";
import { repositoryRoot, testBinary } from "../support/testbin.js";
import { controlPlane } from "./setup.js";

/** `kubectl apply --server-side --dry-run=server` of `yaml`; never throws on the exit code. */
function dryRun(yaml: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    testBinary("KUBE_BIN_DIR", "kubectl"),
    [
      `--kubeconfig=${controlPlane().kubeconfigPath}`,
      "apply",
      "--server-side",
      "--dry-run=server",
      "-f",
      "-",
    ],
    { cwd: repositoryRoot, encoding: "utf8", input: yaml },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("manifests/monitoring against the Prometheus Operator's own CRDs (real kube-apiserver)", function () {
  this.timeout(60_000);
  const serviceMonitor = readFileSync(
    path.join(repositoryRoot, "manifests/monitoring/servicemonitor.yaml"),
    "utf8",
  );

  before(() => {
    const plane = controlPlane();
    for (const file of prometheusOperatorCrdFiles())
      kubectl(plane, ["apply", "--server-side", "--force-conflicts", "-f", file]);
    kubectl(plane, ["apply", "--server-side", "--force-conflicts", "-f", "manifests/base/namespace.yaml"]);
    kubectl(plane, [
      "wait",
      "--for=condition=Established",
      ...prometheusOperatorCrdNames.map((name) => `crd/${name}`),
      "--timeout=30s",
    ]);
  });

  it("installs the operator's CRDs, not stand-ins (their version annotation and full schema)", () => {
    for (const name of prometheusOperatorCrdNames) {
      const crd = JSON.parse(kubectl(controlPlane(), ["get", `crd/${name}`, "-o", "json"])) as {
        metadata: { annotations?: Record<string, string> };
        spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: object } } } }[] };
      };
      expect(crd.metadata.annotations?.["operator.prometheus.io/version"], name).to.equal("0.85.0");
      expect(JSON.stringify(crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec)).not.to.contain(
        "x-kubernetes-preserve-unknown-fields",
      );
    }
  });

  it("passes a server-side dry run of kubectl kustomize manifests/monitoring, without warnings", () => {
    const rendered = kubectl(controlPlane(), ["kustomize", "manifests/monitoring"]);
    const result = dryRun(rendered);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(
      /^servicemonitor\.monitoring\.coreos\.com\/csr-signer serverside-applied/m,
    );
    expect(result.stdout).to.match(
      /^prometheusrule\.monitoring\.coreos\.com\/csr-signer serverside-applied/m,
    );
    expect(result.stderr).to.equal("");
  });

  const breakages: [string, (yaml: string) => string, RegExp][] = [
    [
      "a misspelt field",
      (yaml) => yaml.replace("bearerTokenFile:", "bearerTokenFil:"),
      /\.spec\.endpoints\[0\]\.bearerTokenFil: field not declared in schema/,
    ],
    [
      "a scheme outside the operator's enum",
      (yaml) => yaml.replace("scheme: https", "scheme: ftp"),
      /scheme/,
    ],
  ];
  for (const [what, breakIt, message] of breakages) {
    it(`refuses a ServiceMonitor with ${what} (the check is not vacuous)`, () => {
      const broken = breakIt(serviceMonitor);
      expect(broken).not.to.equal(serviceMonitor);
      const result = dryRun(broken);
      expect(result.code).to.not.equal(0);
      expect(result.stderr, result.stderr).to.match(message);
    });
  }

  it("refuses a PrometheusRule with a misspelt rule field (exp for expr)", () => {
    const rule = readFileSync(path.join(repositoryRoot, "manifests/monitoring/prometheusrule.yaml"), "utf8");
    const broken = rule.replace(/^(\s+)expr: .*$/m, "$1exp: up");
    expect(broken).not.to.equal(rule);
    const result = dryRun(broken);
    expect(result.code).to.not.equal(0);
    expect(result.stderr, result.stderr).to.match(/\.exp: field not declared in schema/);
  });
});

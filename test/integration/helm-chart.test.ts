/**
 * The Helm chart (charts/csr-signer) with the real helm (built by `hack/testbin/build.sh helm`) and the
 * real kube-apiserver: `helm lint` passes with the default and the full values (ci/full-values.yaml),
 * both renderings pass a server-side dry run under restricted Pod Security (the ServiceMonitor and
 * PrometheusRule against the Prometheus Operator's own CRDs, strict field validation), the default rendering
 * grants exactly the RBAC of the kustomize base (rule by rule), the controller's own flag parser accepts
 * every argument the chart renders, and the chart's copies of the CRD and the alert rules equal the
 * files in manifests/.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { loadAllYaml, loadYaml, type V1NetworkPolicy } from "@kubernetes/client-node";
import { controlPlane } from "./setup.js";
import { testBinary } from "../support/testbin.js";
import { runProcess, type ProcessResult } from "../support/run-process.js";
import { runCliInProcess } from "../support/cli.js";
import { prometheusOperatorCrdFiles } from "../support/monitoring-crds.js";
import { defaultTenantDomain } from "../../src/cli/tenant-command.js";

const REPOSITORY_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHART = "charts/csr-signer";
const FULL_VALUES = `${CHART}/ci/full-values.yaml`;
/** The release name and namespace that give the base's object names (csr-signer, csr-signer-approver). */
const RELEASE = "csr-signer";
const NAMESPACE = "csr-signer";
const ALERT_RULES = "manifests/monitoring/csr-signer-alerts.rules.yaml";
const CHART_ALERT_RULES = `${CHART}/files/csr-signer-alerts.rules.yaml`;

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: PolicyRule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  spec?: Record<string, unknown>;
}

interface PodSpec {
  initContainers?: { name: string; image: string; securityContext?: Record<string, unknown> }[];
  containers: {
    name: string;
    image: string;
    args: string[];
    securityContext?: Record<string, unknown>;
    volumeMounts?: { name: string; mountPath: string }[];
  }[];
  securityContext?: Record<string, unknown>;
  priorityClassName?: string;
  affinity?: unknown;
  topologySpreadConstraints?: unknown[];
  volumes?: { name: string; emptyDir?: unknown; hostPath?: unknown }[];
}

/** Runs a program from the repository root, helm's and kubectl's homes in the control plane's folder. */
function run(binary: string, args: string[], input = ""): Promise<ProcessResult> {
  const plane = controlPlane();
  // helm's and kubectl's caches and configuration in the control plane's folder: nothing in $HOME.
  const home = path.join(plane.dir, "helm-home");
  const environment = {
    ...process.env,
    HELM_CACHE_HOME: path.join(home, "cache"),
    HELM_CONFIG_HOME: path.join(home, "config"),
    HELM_DATA_HOME: path.join(home, "data"),
  };
  return runProcess(binary, args, { input, env: environment });
}

async function helm(args: string[]): Promise<ProcessResult> {
  return run(testBinary("HELM_BIN_DIR", "helm"), args);
}

async function kubectl(args: string[], input = ""): Promise<ProcessResult> {
  const plane = controlPlane();
  return run(
    testBinary("KUBE_BIN_DIR", "kubectl"),
    [`--kubeconfig=${plane.kubeconfigPath}`, `--cache-dir=${path.join(plane.dir, "kubectl-cache")}`, ...args],
    input,
  );
}

async function succeeded(pending: Promise<ProcessResult>, what: string): Promise<string> {
  const result = await pending;
  if (result.code !== 0)
    throw new Error(`${what} exited with ${result.code}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** `helm template` of the chart as release csr-signer in namespace csr-signer. */
async function render(extraArgs: string[] = []): Promise<string> {
  return succeeded(
    helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, ...extraArgs]),
    `helm template ${extraArgs.join(" ")}`,
  );
}

function objectsOf(yaml: string): KubeObject[] {
  return (loadAllYaml(yaml) as (KubeObject | null)[]).filter((object): object is KubeObject => !!object);
}

function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found)
    throw new Error(
      `no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`,
    );
  return found;
}

function podSpecOf(objects: KubeObject[]): PodSpec {
  const deployment = find(objects, "Deployment", RELEASE);
  return (deployment.spec as { template: { spec: PodSpec } }).template.spec;
}

/**
 * What a set of rules grants, one string per (API group, resource, verb, resource name) with "*" for
 * "any name": two lists of rules grant the same when these sets are equal, however the rules are cut.
 */
function grants(rules: PolicyRule[] = []): string[] {
  const granted = new Set<string>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? [])
      for (const resource of rule.resources ?? [])
        for (const verb of rule.verbs)
          for (const name of rule.resourceNames?.length ? rule.resourceNames : ["*"])
            granted.add(`${group}|${resource}|${verb}|${name}`);
    for (const url of rule.nonResourceURLs ?? [])
      for (const verb of rule.verbs) granted.add(`url|${url}|${verb}`);
  }
  return [...granted].sort();
}

const RBAC_KINDS = ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

/** Every RBAC object by kind/namespace/name, reduced to what it grants or binds. */
function rbacOf(objects: KubeObject[]): Map<string, unknown> {
  const rbac = new Map<string, unknown>();
  for (const object of objects.filter((o) => RBAC_KINDS.includes(o.kind))) {
    const key = `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`;
    rbac.set(
      key,
      object.rules !== undefined
        ? grants(object.rules)
        : {
            roleRef: object.roleRef,
            subjects: [...(object.subjects ?? [])].sort((a, b) =>
              JSON.stringify(a).localeCompare(JSON.stringify(b)),
            ),
          },
    );
  }
  return rbac;
}

describe("the Helm chart (real helm and kube-apiserver)", function () {
  this.timeout(120_000);

  before(async function () {
    // The Signer CRD (the chart's Signers need it), the release namespace with its restricted Pod Security
    // labels, and the Prometheus Operator's own ServiceMonitor and PrometheusRule CRDs (its Go module, via
    // hack/prometheus-operator-crds.sh): all applied for real, all idempotent.
    await succeeded(kubectl(["apply", "--server-side", "--force-conflicts", "-f", "manifests/crd/"]), "CRD");
    await succeeded(
      kubectl(["apply", "--server-side", "--force-conflicts", "-f", "manifests/base/namespace.yaml"]),
      "namespace",
    );
    for (const file of prometheusOperatorCrdFiles())
      await succeeded(kubectl(["apply", "--server-side", "--force-conflicts", "-f", file]), file);
    await succeeded(
      kubectl([
        "wait",
        "--for=condition=Established",
        "crd/signers.csr-signer.io",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
        "--timeout=30s",
      ]),
      "CRDs Established",
    );
  });

  it("passes helm lint --strict with the default values and with the full values", async function () {
    for (const args of [[], ["--values", FULL_VALUES]]) {
      const result = await helm(["lint", "--strict", CHART, ...args]);
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.include("1 chart(s) linted, 0 chart(s) failed");
    }
  });

  for (const [title, args] of [
    ["default", []],
    ["full", ["--values", FULL_VALUES]],
  ] as const) {
    it(`renders with the ${title} values and passes a server-side dry run under restricted Pod Security`, async function () {
      const rendered = await render([...args, "--include-crds"]);
      const objects = objectsOf(rendered);
      const result = await kubectl(
        ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"],
        rendered,
      );
      expect(result.code, result.stderr).to.equal(0);
      for (const object of objects) {
        const group = object.apiVersion.includes("/") ? object.apiVersion.split("/")[0] : "";
        const resource = `${object.kind.toLowerCase()}${group ? `.${group}` : ""}/${object.metadata.name}`;
        expect(result.stdout, resource).to.match(
          new RegExp(`^${resource.replaceAll(".", "\\.")} serverside-applied`, "m"),
        );
      }
      // The namespace warns on restricted Pod Security: the pod template must pass it, init container included.
      expect(result.stderr).not.to.match(/PodSecurity|would violate/i);
    });
  }

  it("grants, with the default values, exactly the RBAC of the kustomize base (rule by rule)", async function () {
    const base = objectsOf(await succeeded(kubectl(["kustomize", "manifests/base"]), "kubectl kustomize"));
    const chart = objectsOf(await render());
    const baseRbac = rbacOf(base);
    const chartRbac = rbacOf(chart);
    expect([...chartRbac.keys()].sort()).to.deep.equal([...baseRbac.keys()].sort());
    for (const [key, granted] of baseRbac) expect(chartRbac.get(key), key).to.deep.equal(granted);
    // The comparison is not vacuous: the controller signs (for the whole domain `tenant add` uses by
    // default, in one rule), and approves kubelet-serving CSRs.
    expect(baseRbac.get("ClusterRole//csr-signer")).to.include.members([
      `certificates.k8s.io|signers|sign|${defaultTenantDomain}/*`,
      `certificates.k8s.io|signers|attest|${defaultTenantDomain}/*`,
    ]);
    expect(baseRbac.get("ClusterRole//csr-signer-approver")).to.include(
      "certificates.k8s.io|signers|approve|kubernetes.io/kubelet-serving",
    );
  });

  it("renders the base's pod: security contexts, image pull policy, probes, resources and arguments", async function () {
    const base = podSpecOf(
      objectsOf(await succeeded(kubectl(["kustomize", "manifests/base"]), "kubectl kustomize")),
    );
    const chart = podSpecOf(objectsOf(await render()));
    expect(chart.securityContext).to.deep.equal(base.securityContext);
    const [baseContainer] = base.containers;
    const [chartContainer] = chart.containers;
    const { image: _baseImage, args: baseArgs, ...baseRest } = baseContainer!;
    const { image: chartImage, args: chartArgs, ...chartRest } = chartContainer!;
    expect(chartRest).to.deep.equal(baseRest);
    // The chart's appVersion, the name `make image` builds (test/unit/release/image-name.test.ts), the base's.
    expect(chartImage).to.equal("localhost/csr-signer:0.1.0");
    expect(chartImage).to.equal(baseContainer!.image);
    // Every argument of the base is rendered; the chart only spells out the controller's defaults beside them.
    expect(chartArgs).to.include.members(baseArgs);
  });

  it("renders the base's HA: priority, topology spread, PodDisruptionBudget, NetworkPolicy, signer-name admission policy", async function () {
    const base = objectsOf(await succeeded(kubectl(["kustomize", "manifests/base"]), "kubectl kustomize"));
    const chart = objectsOf(await render());
    // The chart's selectors add app.kubernetes.io/instance (one release beside another): compared apart.
    const selectorFree = (value: unknown): unknown =>
      JSON.parse(
        JSON.stringify(value, (key, inner: unknown) =>
          ["labelSelector", "selector", "podSelector"].includes(key) ? "(selector)" : inner,
        ),
      );
    const [basePod, chartPod] = [podSpecOf(base), podSpecOf(chart)];
    expect(chartPod.priorityClassName).to.equal(basePod.priorityClassName);
    expect(chartPod.affinity).to.deep.equal(basePod.affinity);
    expect(selectorFree(chartPod.topologySpreadConstraints)).to.deep.equal(
      selectorFree(basePod.topologySpreadConstraints),
    );
    for (const kind of ["PodDisruptionBudget", "NetworkPolicy"]) {
      expect(selectorFree(find(chart, kind, RELEASE).spec), kind).to.deep.equal(
        selectorFree(find(base, kind, RELEASE).spec),
      );
    }
    for (const kind of ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]) {
      const name = "csr-signer.io-unique-signer-name";
      expect(find(chart, kind, name).spec, kind).to.deep.equal(find(base, kind, name).spec);
    }
  });

  it("renders only arguments the controller accepts (its own flag parser, with every value set)", async function () {
    for (const args of [[], ["--values", FULL_VALUES]]) {
      const [container] = podSpecOf(objectsOf(await render(args))).containers;
      expect(container!.args[0]).to.equal("controller");
      // A kubeconfig that does not exist is the first thing checked after every flag was parsed and
      // validated (durations, CIDRs, DNS patterns compiled): reaching it means all of them were accepted.
      const missing = path.join(controlPlane().dir, "no-such-kubeconfig");
      const result = await runCliInProcess([...container!.args, `--kubeconfig=${missing}`]);
      expect(result.stderr).to.equal(`csr-signer controller: --kubeconfig ${missing} does not exist\n`);
    }
  });

  it("renders leader election timings the controller refuses when they break client-go's order", async function () {
    const [container] = podSpecOf(
      objectsOf(await render(["--set", "leaderElection.renewDeadline=20s"])),
    ).containers;
    expect(container!.args).to.include("--leader-elect-renew-deadline=20s");
    const result = await runCliInProcess([...container!.args, "--kubeconfig=/nonexistent"]);
    expect(result.stderr).to.match(/the lease duration must be greater than the renew deadline/);
  });

  it("renders every value of the full values file where the controller and the cluster read it", async function () {
    const objects = objectsOf(await render(["--values", FULL_VALUES]));
    const pod = podSpecOf(objects);
    const [container] = pod.containers;
    expect(container!.image).to.equal(
      "registry.example.com/csr-signer@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    expect(container!.args).to.include.members([
      "--metrics-address=0.0.0.0:8443",
      "--lease-name=csr-signer-full",
      "--leader-elect-lease-duration=30s",
      "--leader-elect-renew-deadline=20s",
      "--leader-elect-retry-period=1500ms",
      "--log-level=debug",
      "--workers=8",
      "--kubelet-serving-ip-ranges=10.0.0.0/16",
      "--kubelet-serving-ip-ranges=fd00::/64",
      "--service-cluster-ip-range=10.96.0.0/12",
      "--cluster-cidr=10.244.0.0/16",
      "--kubelet-serving-dns-pattern=ip-[0-9-]+\\.([a-z0-9-]+\\.compute|ec2)\\.internal",
      "--kubelet-serving-extra-dns={node}.nodes.example.com",
      "--kubelet-serving-on-refusal=leave-pending",
      "--kubelet-serving-max-expiration=720h",
      "--approve-kubelet-client=true",
      "--cleanup-approved-unsigned=12h",
      "--istio-mesh-config=istio-system/istio-canary",
    ]);
    expect(pod.priorityClassName).to.equal("system-cluster-critical");

    // PKCS#11 as manifests/components/pkcs11: the module copied by a restricted init container into an
    // emptyDir mounted read-only (no hostPath), the PIN from the Vault Agent injector.
    expect(pod.initContainers?.map((c) => [c.name, c.image])).to.deep.equal([
      ["pkcs11-module", "registry.example.com/hsm-client:7.4"],
    ]);
    expect(pod.initContainers?.[0]?.securityContext).to.deep.equal(container!.securityContext);
    expect(container!.volumeMounts).to.deep.include({
      name: "pkcs11-module",
      mountPath: "/opt/hsm",
      readOnly: true,
    });
    expect(pod.volumes?.find((v) => v.name === "pkcs11-module")?.emptyDir).to.deep.equal({
      sizeLimit: "128Mi",
    });
    expect(pod.volumes?.some((v) => v.hostPath)).to.equal(false);
    expect(container!.volumeMounts).to.deep.include({
      name: "ca-folder",
      mountPath: "/etc/csr-signer/ca",
      readOnly: true,
    });
    expect(pod.volumes?.map((v) => v.name)).to.deep.equal(["tmp", "pkcs11-module", "ca-folder"]);
    const annotations = (
      find(objects, "Deployment", RELEASE).spec as {
        template: { metadata: { annotations: Record<string, string> } };
      }
    ).template.metadata.annotations;
    expect(annotations).to.include({
      "vault.hashicorp.com/agent-inject": "true",
      "vault.hashicorp.com/role": "csr-signer",
      "vault.hashicorp.com/agent-inject-secret-hsm-pin": "secret/data/csr-signer/hsm",
      "vault.hashicorp.com/agent-run-as-user": "65532",
    });
    expect(annotations["vault.hashicorp.com/agent-inject-template-hsm-pin"]?.trim()).to.equal(
      '{{- with secret "secret/data/csr-signer/hsm" -}}{{ .Data.data.pin }}{{- end -}}',
    );

    // The Signers, with sign/attest on their names and approve on the Automatic one's.
    expect(find(objects, "Signer", "helm-full-foo").spec).to.deep.include({
      signerName: "example.com/helm-full-foo",
    });
    expect(find(objects, "Signer", "helm-full-foo").metadata.labels).to.include({
      "example.com/tenant": "foo",
    });
    const rbac = rbacOf(objects);
    expect(rbac.get("ClusterRole//csr-signer")).to.include.members([
      "certificates.k8s.io|signers|sign|mesh.example.org/*",
      "certificates.k8s.io|signers|attest|mesh.example.org/*",
      "certificates.k8s.io|signers|sign|example.com/istio-system",
      "certificates.k8s.io|signers|attest|example.com/helm-full-foo",
      "certificates.k8s.io|signers|sign|example.com/helm-full-hsm",
      "|configmaps|update|istio-canary",
    ]);
    expect(rbac.get("ClusterRole//csr-signer")).not.to.include(
      "certificates.k8s.io|signers|sign|example.com/foo",
    );
    expect(rbac.get("ClusterRole//csr-signer")).not.to.include(
      "certificates.k8s.io|signers|sign|example.com/*",
    );
    expect(rbac.get("ClusterRole//csr-signer-approver")).to.include.members([
      "certificates.k8s.io|signers|approve|kubernetes.io/kubelet-serving",
      "certificates.k8s.io|signers|approve|example.com/automatic",
      "certificates.k8s.io|signers|approve|example.com/helm-full-hsm",
    ]);
    expect(rbac.get("ClusterRole//csr-signer-approver")).not.to.include(
      "certificates.k8s.io|signers|approve|example.com/helm-full-foo",
    );
    expect(rbac.get("ClusterRole//csr-signer-kubelet-client-approver")).to.deep.equal([
      "certificates.k8s.io|signers|approve|kubernetes.io/kube-apiserver-client-kubelet",
    ]);

    // Monitoring: the ServiceMonitor scrapes the metrics Service as configured; the PrometheusRule holds the rule file.
    const endpoints = (
      find(objects, "ServiceMonitor", RELEASE).spec as { endpoints: Record<string, unknown>[] }
    ).endpoints;
    expect(endpoints).to.deep.equal([
      {
        port: "metrics",
        scheme: "https",
        path: "/metrics",
        interval: "15s",
        scrapeTimeout: "10s",
        bearerTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
        tlsConfig: { insecureSkipVerify: true },
        relabelings: [
          { action: "replace", sourceLabels: ["__meta_kubernetes_pod_node_name"], targetLabel: "node" },
        ],
        metricRelabelings: [{ action: "drop", sourceLabels: ["__name__"], regex: "nodejs_gc_.*" }],
      },
    ]);
    const service = find(objects, "Service", `${RELEASE}-metrics`);
    expect((service.spec as { ports: { name: string; port: number }[] }).ports).to.deep.include({
      name: "metrics",
      port: 8443,
      targetPort: "metrics",
      protocol: "TCP",
    });
    expect(find(objects, "PrometheusRule", RELEASE).spec).to.deep.equal(
      loadYaml(await fsp.readFile(path.join(REPOSITORY_ROOT, ALERT_RULES), "utf8")),
    );
    expect(find(objects, "PodDisruptionBudget", RELEASE).spec).to.deep.include({ maxUnavailable: 1 });
    // loadAllYaml returns client-node's model here, whose `from` is `_from`.
    const networkPolicy = find(objects, "NetworkPolicy", RELEASE) as unknown as V1NetworkPolicy;
    expect(networkPolicy.spec?.policyTypes).to.deep.equal(["Ingress", "Egress"]);
    expect(networkPolicy.spec?.ingress?.map((rule) => [rule.ports, rule._from])).to.deep.equal([
      [
        [{ port: "metrics", protocol: "TCP" }],
        [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
      ],
    ]);
    expect(networkPolicy.spec?.egress?.map((rule) => rule.ports?.map((port) => port.port))).to.deep.equal([
      [443, 6443],
      [8200],
    ]);
  });

  it("gives the ServiceMonitor's targets the job the alert rules select, for any release name (and in the kustomize manifests)", async function () {
    /** The job label a ServiceMonitor gives its targets: the Service's jobLabel label, else the Service's name. */
    function jobOf(monitor: KubeObject, services: KubeObject[]): string {
      const spec = monitor.spec as { jobLabel?: string; selector: { matchLabels: Record<string, string> } };
      const selected = services.filter(
        (service) =>
          service.kind === "Service" &&
          Object.entries(spec.selector.matchLabels).every(
            ([key, value]) => service.metadata.labels?.[key] === value,
          ),
      );
      expect(selected.map((service) => service.metadata.name)).to.have.length(1);
      const service = selected[0]!;
      return (spec.jobLabel && service.metadata.labels?.[spec.jobLabel]) || service.metadata.name;
    }
    /** Every job a rule selects. */
    function jobsSelected(groups: { rules: { expr: string }[] }[]): string[] {
      const jobs = groups.flatMap((group) =>
        group.rules.flatMap((rule) => [...rule.expr.matchAll(/job="([^"]*)"/g)].map((m) => m[1]!)),
      );
      expect(jobs.length).to.be.greaterThan(0);
      return [...new Set(jobs)];
    }
    const release = "platform-pki";
    const objects = objectsOf(
      await succeeded(
        helm([
          "template",
          release,
          CHART,
          "--namespace",
          NAMESPACE,
          "--set",
          "serviceMonitor.enabled=true",
          "--set",
          "prometheusRule.enabled=true",
        ]),
        "helm template platform-pki",
      ),
    );
    const fullname = `${release}-csr-signer`;
    // The Service is named after the release, not after the job.
    expect(find(objects, "Service", `${fullname}-metrics`).metadata.name).not.to.equal("csr-signer-metrics");
    const helmJob = jobOf(find(objects, "ServiceMonitor", fullname), objects);
    const helmRules = (
      find(objects, "PrometheusRule", fullname).spec as { groups: { rules: { expr: string }[] }[] }
    ).groups;
    expect(jobsSelected(helmRules)).to.deep.equal([helmJob]);

    const kustomized = objectsOf(
      (await succeeded(kubectl(["kustomize", "manifests/base"]), "kustomize base")) +
        "\n---\n" +
        (await succeeded(kubectl(["kustomize", "manifests/monitoring"]), "kustomize monitoring")),
    );
    const kustomizeJob = jobOf(find(kustomized, "ServiceMonitor", "csr-signer"), kustomized);
    const kustomizeRules = (
      find(kustomized, "PrometheusRule", "csr-signer").spec as { groups: { rules: { expr: string }[] }[] }
    ).groups;
    expect(jobsSelected(kustomizeRules)).to.deep.equal([kustomizeJob]);
  });

  it("renders no ServiceMonitor, PrometheusRule, PKCS#11 or Signer by default", async function () {
    const kinds = objectsOf(await render()).map((object) => object.kind);
    expect(kinds.sort()).to.deep.equal([
      "ClusterRole",
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "ClusterRoleBinding",
      "Deployment",
      "NetworkPolicy",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
    ]);
    expect(podSpecOf(objectsOf(await render())).initContainers).to.equal(undefined);
  });

  it("grants the reviews of secure metrics serving and a metrics-reader ClusterRole by default; metrics.secure=false turns both off", async function () {
    const objects = objectsOf(await render(["--set", "metrics.certDir=/tls"]));
    const rbac = rbacOf(objects);
    expect(rbac.get("ClusterRole//csr-signer")).to.include.members([
      "authentication.k8s.io|tokenreviews|create|*",
      "authorization.k8s.io|subjectaccessreviews|create|*",
    ]);
    expect(rbac.get("ClusterRole//csr-signer-metrics-reader")).to.deep.equal(["url|/metrics|get"]);
    const args = podSpecOf(objects).containers[0]!.args;
    // Secure is the controller's default: the flag is passed only to turn it off.
    expect(args).to.include("--metrics-cert-dir=/tls");
    expect(args.filter((arg) => arg.startsWith("--metrics-secure"))).to.deep.equal([]);
    const plain = objectsOf(await render(["--set", "metrics.secure=false"]));
    expect(podSpecOf(plain).containers[0]!.args).to.include("--metrics-secure=false");
    const plainRbac = rbacOf(plain);
    expect(plainRbac.has("ClusterRole//csr-signer-metrics-reader")).to.equal(false);
    expect(plainRbac.get("ClusterRole//csr-signer")).not.to.include(
      "authentication.k8s.io|tokenreviews|create|*",
    );
  });

  it("refuses to render a sign grant with no signer names (an empty resourceNames would grant every signer)", async function () {
    const result = await helm([
      "template",
      RELEASE,
      CHART,
      "--namespace",
      NAMESPACE,
      "--set",
      "rbac.signerNames=null",
      "--set",
      "rbac.signerDomains=null",
    ]);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.include("rbac.signerNames and signers list no signer name");
  });

  it("refuses to render a tenant-namespace Role naming no Secret (an empty resourceNames would grant every Secret there)", async function () {
    const signer = (certificateAuthority: Record<string, unknown>) => ({
      signers: [
        {
          name: "foo",
          spec: {
            signerName: "tenants.example.com/foo",
            certificateAuthority,
            policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: ["tenant-foo"] } },
          },
        },
      ],
    });
    const template = (values: unknown) =>
      run(
        testBinary("HELM_BIN_DIR", "helm"),
        ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--values", "-"],
        JSON.stringify(values),
      );
    // A PIN Secret never counts: the CRD refuses pinSecretRef with secretNamespace.
    const refused = await template(
      signer({
        path: "/etc/ca",
        secretNamespace: "tenant-foo",
        pkcs11: {
          module: "/hsm.so",
          tokenLabel: "t",
          keyLabel: "k",
          pinSecretRef: { name: "pin", key: "pin" },
        },
      }),
    );
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include(
      "signers: foo names certificateAuthority.secretNamespace but neither secretName nor keyPassphraseSecretRef",
    );
    expect(refused.stderr).to.include("grants every Secret in tenant-foo");
    const named = await template(signer({ secretName: "foo-cacerts", secretNamespace: "tenant-foo" }));
    expect(named.code, named.stderr).to.equal(0);
    const role = find(objectsOf(named.stdout), "Role", "csr-signer-ca-foo");
    expect(grants(role.rules)).to.deep.equal(["|secrets|list|foo-cacerts", "|secrets|watch|foo-cacerts"]);
  });

  it("refuses to render several replicas without leader election (each would sign), and renders one", async function () {
    const refused = await helm([
      "template",
      RELEASE,
      CHART,
      "--namespace",
      NAMESPACE,
      "--set",
      "leaderElection.enabled=false",
    ]);
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include("leaderElection.enabled=false with replicaCount=2");
    const single = objectsOf(
      await render(["--set", "leaderElection.enabled=false", "--set", "replicaCount=1"]),
    );
    expect(
      podSpecOf(single).containers[0]!.args.filter((arg) => arg.startsWith("--leader-elect=")),
    ).to.deep.equal(["--leader-elect=false"]);
  });

  it("keeps its copies of the CRD and the alert rules byte for byte equal to manifests/", async function () {
    const pairs = [
      ["manifests/crd/signers.csr-signer.io.yaml", `${CHART}/crds/signers.csr-signer.io.yaml`],
      [ALERT_RULES, CHART_ALERT_RULES],
      ["manifests/base/signer-name-policy.yaml", `${CHART}/files/signer-name-policy.yaml`],
    ];
    for (const [source, copy] of pairs) {
      expect(fs.existsSync(path.join(REPOSITORY_ROOT, source!)), source).to.equal(true);
      const [original, copied] = await Promise.all(
        [source!, copy!].map((file) => fsp.readFile(path.join(REPOSITORY_ROOT, file))),
      );
      expect(copied!.equals(original!), `${copy} must be a copy of ${source}: cp ${source} ${copy}`).to.equal(
        true,
      );
    }
  });
});

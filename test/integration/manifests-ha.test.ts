/**
 * manifests/base's high-availability settings, built by the real kubectl kustomize and checked by the
 * real kube-apiserver: a PodDisruptionBudget and a NetworkPolicy that select the controller's Pods,
 * the NetworkPolicy opening only the metrics port and the API server, system-cluster-critical and
 * topology spread on the pod template, and that pod template admitted as a Pod (server-side dry
 * run: the priority class resolves, restricted Pod Security passes).
 */
import { expect } from "chai";
import { loadAllYaml } from "@kubernetes/client-node";
import { installSignerManifests, kubectl } from "../support/controller.js";
import { controlPlane } from "./setup.js";

type Labels = Record<string, string>;
interface BuiltObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}
interface PodTemplate {
  metadata: { labels: Labels };
  spec: {
    priorityClassName?: string;
    topologySpreadConstraints?: {
      topologyKey: string;
      whenUnsatisfiable: string;
      maxSkew: number;
      matchLabelKeys?: string[];
      labelSelector: { matchLabels: Labels };
    }[];
    containers: { ports?: { name: string; containerPort: number }[] }[];
  };
}

function selects(selector: { matchLabels?: Labels } | undefined, labels: Labels): boolean {
  const wanted = Object.entries(selector?.matchLabels ?? {});
  return wanted.length > 0 && wanted.every(([key, value]) => labels[key] === value);
}

describe("manifests/base: high availability (kustomize, server-side dry run)", function () {
  this.timeout(60_000);
  let built: BuiltObject[];
  let template: PodTemplate;

  before(async () => {
    await installSignerManifests(controlPlane()); // the namespace, which the dry runs below need
    built = loadAllYaml(kubectl(controlPlane(), ["kustomize", "manifests/base"])) as BuiltObject[];
    const deployment = built.find((o) => o.kind === "Deployment" && o.metadata.name === "csr-signer");
    template = (deployment?.spec as { template: PodTemplate }).template;
  });

  it("has a PodDisruptionBudget of one Pod at a time over the controller's Pods", () => {
    const budget = built.find((o) => o.kind === "PodDisruptionBudget");
    expect(budget?.metadata).to.include({ name: "csr-signer", namespace: "csr-signer" });
    const spec = budget?.spec as {
      maxUnavailable?: number;
      minAvailable?: number;
      selector: { matchLabels: Labels };
    };
    expect(spec.maxUnavailable).to.equal(1);
    expect(spec.minAvailable).to.equal(undefined);
    expect(selects(spec.selector, template.metadata.labels), "selects the pod template").to.equal(true);
  });

  it("runs the Pods at system-cluster-critical, spread over nodes (required) and zones (preferred)", () => {
    expect(template.spec.priorityClassName).to.equal("system-cluster-critical");
    const spread = template.spec.topologySpreadConstraints ?? [];
    expect(spread.map((c) => [c.topologyKey, c.whenUnsatisfiable, c.maxSkew])).to.deep.equal([
      ["kubernetes.io/hostname", "DoNotSchedule", 1],
      ["topology.kubernetes.io/zone", "ScheduleAnyway", 1],
    ]);
    for (const constraint of spread) {
      expect(selects(constraint.labelSelector, template.metadata.labels)).to.equal(true);
      expect(constraint.matchLabelKeys).to.deep.equal(["pod-template-hash"]);
    }
  });

  it("has a NetworkPolicy opening only the metrics port and egress to the API server", () => {
    const policy = built.find((o) => o.kind === "NetworkPolicy");
    expect(policy?.metadata).to.include({ name: "csr-signer", namespace: "csr-signer" });
    const spec = policy?.spec as {
      podSelector: { matchLabels: Labels };
      policyTypes: string[];
      ingress: { from?: unknown; ports: { port: string | number; protocol: string }[] }[];
      egress: { to?: unknown; ports: { port: string | number; protocol: string }[] }[];
    };
    expect(selects(spec.podSelector, template.metadata.labels)).to.equal(true);
    expect(spec.policyTypes).to.deep.equal(["Ingress", "Egress"]);
    expect(spec.ingress).to.deep.equal([{ ports: [{ port: "metrics", protocol: "TCP" }] }]);
    // The named port is the container's metrics port.
    expect(template.spec.containers[0]?.ports?.map((p) => p.name)).to.include("metrics");
    expect(spec.egress).to.deep.equal([
      {
        ports: [
          { port: 443, protocol: "TCP" },
          { port: 6443, protocol: "TCP" },
        ],
      },
    ]);
  });

  it("passes a server-side dry run, and its pod template is admitted as a Pod with the critical priority", () => {
    const applied = kubectl(
      controlPlane(),
      ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: built.filter((o) => ["PodDisruptionBudget", "NetworkPolicy", "Deployment"].includes(o.kind)),
      }),
    );
    expect(applied).to.include("poddisruptionbudget.policy/csr-signer");
    expect(applied).to.include("networkpolicy.networking.k8s.io/csr-signer");
    expect(applied).to.include("deployment.apps/csr-signer");
    // The Deployment controller would create this Pod: Priority admission resolves the class to its
    // value, and the namespace's restricted Pod Security (enforce) admits it.
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "csr-signer-ha-dry-run", namespace: "csr-signer", labels: template.metadata.labels },
      spec: template.spec,
    };
    const admitted = JSON.parse(
      kubectl(controlPlane(), ["create", "--dry-run=server", "-o", "json", "-f", "-"], JSON.stringify(pod)),
    ) as { spec: { priority?: number; priorityClassName?: string } };
    expect(admitted.spec.priorityClassName).to.equal("system-cluster-critical");
    expect(admitted.spec.priority).to.equal(2_000_000_000);
  });
});

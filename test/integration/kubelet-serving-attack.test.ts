/**
 * kubelet-serving approval against a kubelet that lies about its own Node (issue 10 item 1), on an API
 * server running the Node authorizer and NodeRestriction. Each kubelet authenticates with a real client
 * certificate (CN=system:node:<name>, O=system:nodes) from the API server's client CA, so the Node
 * authorizer and NodeRestriction see exactly what they see from a real kubelet.
 */
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { apiErrorCode } from "../../src/kube/client.js";
import { mergePatch } from "../support/kube-client.js";
import { compileKubeletServingSettings } from "../../src/policy/kubelet-serving-settings.js";
import type { SubjectAlternativeNames } from "../../src/pki/subject-alternative-names.js";
import { buildTestCertificateRequest, testKey } from "../support/pki.js";
import { allowToRequestCertificates, groupSubject, uniqueName } from "../support/identities.js";
import {
  installSignerManifests,
  readCsr,
  startController,
  submitCsr,
  waitForApprovalDecision,
  waitForCsrEvent,
  type RunningController,
} from "../support/controller.js";
import { controlPlane } from "./setup.js";

const kubeletServing = "kubernetes.io/kubelet-serving";
const servingUsages = ["digital signature", "key encipherment", "server auth"];

interface TestNode {
  name: string;
  ip: string;
  /** A kubelet client certificate for system:node:<name>, O=system:nodes. */
  kubelet: KubeConfig;
}

async function createNode(admin: KubeConfig, name: string, ip: string): Promise<TestNode> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNode({ body: { metadata: { name } } });
  await core.patchNodeStatus(
    {
      name,
      body: {
        status: {
          addresses: [
            { type: "Hostname", address: name },
            { type: "InternalIP", address: ip },
          ],
        },
      },
    },
    mergePatch,
  );
  const kubelet = await controlPlane().clientCertificateKubeConfig(`system:node:${name}`, ["system:nodes"]);
  return { name, ip, kubelet };
}

/** The kubelet patches its own Node.status.addresses, as NodeRestriction lets it. */
async function setOwnAddresses(
  node: TestNode,
  addresses: { type: string; address: string }[],
): Promise<void> {
  await node.kubelet
    .makeApiClient(CoreV1Api)
    .patchNodeStatus({ name: node.name, body: { status: { addresses } } }, mergePatch);
}

function servingRequest(node: TestNode, sans: Partial<SubjectAlternativeNames>): string {
  return buildTestCertificateRequest({
    key: testKey("ecdsa-p256"),
    subject: [
      { type: "O", value: "system:nodes" },
      { type: "CN", value: `system:node:${node.name}` },
    ],
    subjectAltNames: sans,
  });
}

/** Submits a kubelet-serving CSR with the node's own client certificate. */
async function requestServingCertificate(
  node: TestNode,
  sans: Partial<SubjectAlternativeNames>,
): Promise<string> {
  const name = uniqueName("csr-kubelet-serving");
  await submitCsr(node.kubelet, {
    name,
    signerName: kubeletServing,
    requestPem: servingRequest(node, sans),
    usages: servingUsages,
  });
  return name;
}

describe("kubelet-serving approval when a kubelet writes its own Node status (Node authorizer + NodeRestriction)", function () {
  this.timeout(60_000);
  const suffix = uniqueName("k").slice(2);
  let admin: KubeConfig;
  let n1: TestNode;
  let n2: TestNode;
  let n9: TestNode;
  let running: RunningController | undefined;

  before(async function () {
    this.timeout(60_000);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    await allowToRequestCertificates(admin, groupSubject("system:nodes"));
    n1 = await createNode(admin, `attack-n1-${suffix}`, "10.2.0.11");
    n2 = await createNode(admin, `attack-n2-${suffix}`, "10.2.0.12");
    n9 = await createNode(admin, `attack-n9-${suffix}`, "10.2.0.19");
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-10).join(""));
  });

  after(async () => {
    await running?.stop();
  });

  it("the control plane confines a kubelet to its own Node (NodeRestriction), yet lets it rewrite its own addresses", async () => {
    try {
      await n1.kubelet
        .makeApiClient(CoreV1Api)
        .patchNodeStatus({ name: n2.name, body: { status: { addresses: [] } } }, mergePatch);
      expect.fail(`${n1.name}'s kubelet changed ${n2.name}'s status`);
    } catch (error) {
      expect(apiErrorCode(error)).to.equal(403);
    }
    await setOwnAddresses(n1, [
      { type: "Hostname", address: n1.name },
      { type: "InternalIP", address: n1.ip },
    ]);
  });

  describe("without --kubelet-serving-ip-ranges and --kubelet-serving-dns-pattern", () => {
    before(async () => {
      running = await startController(controlPlane(), [], {
        approval: { kubeletServing: { onRefusal: "Deny", ...compileKubeletServingSettings({}) } },
      });
    });
    after(async () => {
      await running?.stop();
      running = undefined;
    });

    it("leaves an honest kubelet's request pending, with a Warning Event naming the missing settings: never approved, never denied", async () => {
      const name = await requestServingCertificate(n1, { dns: [n1.name], ip: [n1.ip] });
      const event = await waitForCsrEvent(admin, name, "KubeletServingNotConfigured", "Warning");
      expect(event.message).to.contain("--kubelet-serving-ip-ranges and --kubelet-serving-dns-pattern");
      // The Event is written after the decision: by now a condition would be there too.
      const conditions = (await readCsr(admin, name))?.status?.conditions ?? [];
      expect(conditions.map((c) => c.type)).to.deep.equal([]);
    });
  });

  describe("with operator ranges and patterns", () => {
    before(async () => {
      running = await startController(controlPlane(), [], {
        approval: {
          kubeletServing: {
            onRefusal: "Deny",
            ...compileKubeletServingSettings({
              // Broad enough to hold the kubernetes Service's ClusterIP: only --service-cluster-ip-range keeps it out.
              ipRanges: ["10.0.0.0/8"],
              serviceClusterIpRanges: ["10.0.0.0/24"],
              dnsPatterns: ["attack-n[0-9]-[0-9a-f]+"],
            }),
          },
        },
      });
    });
    after(async () => {
      await running?.stop();
      running = undefined;
    });

    it("approves an honest kubelet: its own name and InternalIP, inside the configured range and pattern", async () => {
      const name = await requestServingCertificate(n2, { dns: [n2.name], ip: [n2.ip] });
      const decision = await waitForApprovalDecision(admin, name);
      expect(decision).to.include({ type: "Approved", reason: "AutoApproved" });
      expect(decision.message).to.contain(`Node ${n2.name}`);
    });

    it("denies the exact attack: n1 adds n2's InternalIP and hostname and kubernetes.default.svc(.cluster.local) to its own status, then asks for them", async () => {
      await setOwnAddresses(n1, [
        { type: "Hostname", address: n1.name },
        { type: "InternalIP", address: n1.ip },
        { type: "InternalIP", address: n2.ip },
        { type: "Hostname", address: n2.name },
        { type: "InternalDNS", address: "kubernetes.default.svc" },
        { type: "InternalDNS", address: "kubernetes.default.svc.cluster.local" },
      ]);
      const node = await admin.makeApiClient(CoreV1Api).readNode({ name: n1.name });
      expect(node.status?.addresses?.map((a) => a.address)).to.include.members([
        n2.ip,
        n2.name,
        "kubernetes.default.svc",
      ]);

      const attack = await requestServingCertificate(n1, {
        dns: [n1.name, n2.name, "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
        ip: [n1.ip, n2.ip],
      });
      const decision = await waitForApprovalDecision(admin, attack);
      expect(decision).to.include({ type: "Denied", reason: "ClusterServiceName" });
      expect(decision.message).to.contain("kubernetes.default.svc is a cluster service name");
      await waitForCsrEvent(admin, attack, "ClusterServiceName", "Warning");

      // Without the service names, n2's hostname and address are still another Node's.
      const impersonation = await requestServingCertificate(n1, {
        dns: [n1.name, n2.name],
        ip: [n1.ip, n2.ip],
      });
      const second = await waitForApprovalDecision(admin, impersonation);
      expect(second).to.include({ type: "Denied", reason: "SanOfAnotherNode" });
      expect(second.message).to.contain(`DNS SAN ${n2.name} is a name or address of Node ${n2.name}`);
      const byAddress = await requestServingCertificate(n1, { ip: [n1.ip, n2.ip] });
      const third = await waitForApprovalDecision(admin, byAddress);
      expect(third).to.include({ type: "Denied", reason: "SanOfAnotherNode" });
      expect(third.message).to.contain(`IP SAN ${n2.ip} is a name or address of Node ${n2.name}`);
      // Events are recorded after the decision, asynchronously: wait for it rather than read once.
      await waitForCsrEvent(admin, byAddress, "SanOfAnotherNode", "Warning");
    });

    it("denies n9 the kubernetes Service's ClusterIP 10.0.0.1 after it wrote that address into its own status (ClusterServiceIpAddress)", async () => {
      await setOwnAddresses(n9, [
        { type: "Hostname", address: n9.name },
        { type: "InternalIP", address: "10.0.0.1" },
      ]);
      const service = await admin.makeApiClient(CoreV1Api).readNamespacedService({
        name: "kubernetes",
        namespace: "default",
      });
      expect(service.spec?.clusterIP).to.equal("10.0.0.1");
      const attack = await requestServingCertificate(n9, { dns: [n9.name], ip: ["10.0.0.1"] });
      const decision = await waitForApprovalDecision(admin, attack);
      expect(decision).to.include({ type: "Denied", reason: "ClusterServiceIpAddress" });
      expect(decision.message).to.contain("IP SAN 10.0.0.1 is in the Service ClusterIP range");
    });
  });
});

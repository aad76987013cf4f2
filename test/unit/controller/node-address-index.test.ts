import { expect } from "chai";
import {
  cachedNode,
  NodeAddressIndex,
  type IndexedNode,
} from "../../../src/controller/node-address-index.js";
import { parseCertificateRequest } from "../../../src/pki/certificate-request.js";
import type { SubjectAlternativeNames } from "../../../src/pki/subject-alternative-names.js";
import {
  decideKubeletServing,
  maximumCountedNodeAddresses,
  type ApprovalDecision,
} from "../../../src/policy/kubelet-approval.js";
import {
  compileKubeletServingSettings,
  type KubeletServingConfiguration,
} from "../../../src/policy/kubelet-serving-settings.js";
import { buildTestCertificateRequest, testKey } from "../../support/pki.js";

const node = (name: string, ...addresses: [string, string][]) => ({
  metadata: { name },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});

describe("NodeAddressIndex", () => {
  it("finds every Node by its name and each address, IPs in canonical form and names in lower case", () => {
    const index = new NodeAddressIndex();
    index.upsert(
      node("n1", ["Hostname", "N1.Example.com"], ["InternalIP", "10.0.0.11"], ["InternalIP", "FD00::0011"]),
    );
    index.upsert(node("n2", ["InternalIP", "10.0.0.12"], ["ExternalIP", "::ffff:10.0.0.11"]));
    expect(index.nodesWithAddress("n1")).to.deep.equal(["n1"]);
    expect(index.nodesWithAddress("n1.example.com")).to.deep.equal(["n1"]);
    expect(index.nodesWithAddress("fd00::11")).to.deep.equal(["n1"]);
    expect(index.nodesWithAddress("10.0.0.11")).to.deep.equal(["n1", "n2"]);
    expect(index.nodesWithAddress("n2")).to.deep.equal(["n2"]);
    expect(index.nodesWithAddress("10.0.0.99")).to.deep.equal([]);
  });

  it("an update replaces a Node's entries and a delete removes them, leaving the others", () => {
    const index = new NodeAddressIndex();
    index.upsert(node("n1", ["InternalIP", "10.0.0.12"]));
    index.upsert(node("n2", ["InternalIP", "10.0.0.12"]));
    index.upsert(node("n1", ["InternalIP", "10.0.0.11"]));
    expect(index.nodesWithAddress("10.0.0.12")).to.deep.equal(["n2"]);
    expect(index.nodesWithAddress("10.0.0.11")).to.deep.equal(["n1"]);
    index.delete(node("n2"));
    expect(index.nodesWithAddress("10.0.0.12")).to.deep.equal([]);
    expect(index.nodesWithAddress("n2")).to.deep.equal([]);
    expect(index.nodesWithAddress("n1")).to.deep.equal(["n1"]);
  });

  it("upsert says whether anything a decision reads changed: a heartbeat with the same addresses does not", () => {
    const index = new NodeAddressIndex();
    expect(index.upsert(node("n1", ["InternalIP", "10.0.0.11"], ["Hostname", "n1"]))).to.equal(true);
    expect(index.upsert(node("n1", ["InternalIP", "10.0.0.11"], ["Hostname", "n1"]))).to.equal(false);
    expect(index.upsert(node("n1", ["InternalIP", "10.0.0.12"], ["Hostname", "n1"]))).to.equal(true);
    // The same address under another type moves it between the DNS and IP sets' reach.
    expect(index.upsert(node("n1", ["ExternalDNS", "10.0.0.12"], ["Hostname", "n1"]))).to.equal(true);
  });
});

/** A kubelet-serving decision for `nodeName`, with the index as the cluster's facts (as the controller wires it). */
function decide(
  index: NodeAddressIndex,
  nodeName: string,
  sans: Partial<SubjectAlternativeNames>,
  configuration: KubeletServingConfiguration,
): ApprovalDecision {
  const username = `system:node:${nodeName}`;
  const request = parseCertificateRequest(
    buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subject: [
        { type: "O", value: "system:nodes" },
        { type: "CN", value: username },
      ],
      subjectAltNames: sans,
    }),
  );
  return decideKubeletServing(
    { username, groups: ["system:nodes"] },
    request,
    ["digital signature", "server auth"],
    undefined,
    { node: index.get(nodeName), nodesWithAddress: (key) => index.nodesWithAddress(key) },
    compileKubeletServingSettings(configuration),
  );
}

describe("NodeAddressIndex with kubelet-serving decisions", () => {
  const extraNames: KubeletServingConfiguration = {
    ipRanges: ["10.0.0.0/8"],
    serviceClusterIpRanges: ["10.96.0.0/12"],
    dnsPatterns: ["[a-z0-9-]+\\.nodes\\.example\\.com"],
    extraDnsPatterns: ["{node}.nodes.example.com"],
  };

  it("n9 listing Hostname n1.nodes.example.com cannot get n1's extra DNS name (SanOfAnotherNode naming n1)", () => {
    const index = new NodeAddressIndex(["{node}.nodes.example.com"]);
    index.upsert(node("n1", ["InternalIP", "10.0.0.11"]));
    index.upsert(node("n9", ["Hostname", "n1.nodes.example.com"], ["InternalIP", "10.0.0.19"]));
    expect(index.nodesWithAddress("n1.nodes.example.com")).to.deep.equal(["n1", "n9"]);
    const decision = decide(index, "n9", { dns: ["n1.nodes.example.com"] }, extraNames);
    expect(decision).to.include({ verdict: "deny", reason: "SanOfAnotherNode" });
    expect(decision.message).to.contain("DNS SAN n1.nodes.example.com is a name or address of Node n1");
  });

  it("names derived from the requester's own node name cannot be squatted: n9 listing n1 and n1.nodes.example.com does not block n1", () => {
    const index = new NodeAddressIndex(["{node}.nodes.example.com"]);
    index.upsert(node("n1", ["Hostname", "n1"], ["InternalIP", "10.0.0.11"]));
    index.upsert(node("n9", ["Hostname", "n1"], ["InternalDNS", "n1.nodes.example.com"]));
    const configuration = { ...extraNames, dnsPatterns: ["n[0-9]+"] };
    const decision = decide(index, "n1", { dns: ["n1", "n1.nodes.example.com"] }, configuration);
    expect(decision.verdict, decision.message).to.equal("approve");
  });

  it("contested address: when n1 and n9 both list 10.0.0.11, either is denied it, and the message names the other Node", () => {
    const index = new NodeAddressIndex();
    index.upsert(node("n1", ["InternalIP", "10.0.0.11"]));
    index.upsert(node("n9", ["InternalIP", "10.0.0.11"]));
    const forN1 = decide(index, "n1", { ip: ["10.0.0.11"] }, extraNames);
    expect(forN1).to.include({ verdict: "deny", reason: "SanOfAnotherNode" });
    expect(forN1.message).to.contain("IP SAN 10.0.0.11 is a name or address of Node n9");
    const forN9 = decide(index, "n9", { ip: ["10.0.0.11"] }, extraNames);
    expect(forN9).to.include({ verdict: "deny", reason: "SanOfAnotherNode" });
    expect(forN9.message).to.contain("Node n1");
  });

  it(`a kubelet that writes 20,000 addresses into its status: only the first ${maximumCountedNodeAddresses} count, in the index and in the decision`, () => {
    const index = new NodeAddressIndex();
    const addresses = Array.from(
      { length: 20_000 },
      (_, i) => ["InternalIP", `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] as [string, string],
    );
    index.upsert(node("n9", ...addresses));
    // Its name plus 64 addresses.
    expect(index.keyCount("n9")).to.equal(1 + maximumCountedNodeAddresses);
    expect(index.get("n9")!.ipAddresses.size).to.equal(maximumCountedNodeAddresses);
    expect(index.nodesWithAddress(addresses[63]![1])).to.deep.equal(["n9"]);
    expect(index.nodesWithAddress(addresses[100]![1])).to.deep.equal([]);
    expect(decide(index, "n9", { ip: [addresses[63]![1]] }, extraNames).verdict).to.equal("approve");
    const beyond = decide(index, "n9", { ip: [addresses[100]![1]] }, extraNames);
    expect(beyond).to.include({ verdict: "deny", reason: "SanNotNodeAddress" });
  });
});

describe("cachedNode (what the Node cache keeps of a kubelet's own Node)", () => {
  it("keeps identity and the first 64 addresses as type and address, and nothing a kubelet adds besides", () => {
    const addresses = Array.from({ length: 100 }, (_, index) => ({
      type: "InternalIP",
      address: `10.0.0.${index}`,
    }));
    const node = {
      metadata: { name: "n1", uid: "u1", resourceVersion: "9", annotations: { big: "x".repeat(10_000) } },
      status: { addresses, images: [{ names: ["registry/huge"], sizeBytes: 1 }], conditions: [] },
    } as unknown as IndexedNode;
    const cached = cachedNode(node);
    expect(cached.metadata).to.deep.equal({ name: "n1", uid: "u1", resourceVersion: "9" });
    expect(Object.keys(cached.status ?? {})).to.deep.equal(["addresses"]);
    expect(cached.status?.addresses).to.have.length(64);
    expect(cached.status?.addresses?.[63]).to.deep.equal({ type: "InternalIP", address: "10.0.0.63" });
  });

  it("indexes a cached Node as it indexes the Node itself", () => {
    const node: IndexedNode = {
      metadata: { name: "n1" },
      status: {
        addresses: [
          { type: "Hostname", address: "n1.example" },
          { type: "InternalIP", address: "10.0.0.1" },
        ],
      },
    };
    const whole = new NodeAddressIndex();
    const cut = new NodeAddressIndex();
    whole.upsert(node);
    cut.upsert(cachedNode(node));
    expect(cut.get("n1")).to.deep.equal(whole.get("n1"));
  });
});

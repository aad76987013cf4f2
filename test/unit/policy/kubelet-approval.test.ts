import { expect } from "chai";
import { parseCertificateRequest } from "../../../src/pki/certificate-request.js";
import type { DistinguishedName } from "../../../src/pki/names.js";
import type { SubjectAlternativeNames } from "../../../src/pki/subject-alternative-names.js";
import {
  decideKubeletServing,
  kubeletClientShape,
  nodeAddressKey,
  nodeAddressSets,
  type ApprovalDecision,
  type NodeFacts,
} from "../../../src/policy/kubelet-approval.js";
import {
  compileKubeletServingSettings,
  type KubeletServingConfiguration,
} from "../../../src/policy/kubelet-serving-settings.js";
import { buildTestCertificateRequest, testKey } from "../../support/pki.js";

const node1 = { username: "system:node:n1", groups: ["system:nodes", "system:authenticated"] };
const nodeSubject: DistinguishedName = [
  { type: "O", value: "system:nodes" },
  { type: "CN", value: "system:node:n1" },
];
const servingUsages = ["digital signature", "key encipherment", "server auth"];
const n1: NodeFacts = {
  addresses: [
    { type: "Hostname", address: "n1" },
    { type: "InternalIP", address: "10.0.0.11" },
    { type: "InternalDNS", address: "n1.cluster.internal" },
    { type: "ExternalIP", address: "203.0.113.11" },
    { type: "InternalIP", address: "fd00::11" },
  ],
};
/** Another Node: its name and addresses, as the controller's index reports them. */
const otherNodes = new Map<string, string[]>([
  ["n2", ["n2"]],
  ["10.0.0.12", ["n2"]],
  ["n2.cluster.internal", ["n2"]],
  ["n3", ["n3"]],
]);
const configured: KubeletServingConfiguration = {
  ipRanges: ["10.0.0.0/16", "203.0.113.0/24", "fd00::/8"],
  dnsPatterns: ["n[0-9]+", "n[0-9]+\\.cluster\\.internal"],
  extraDnsPatterns: ["{node}.nodes.example.com"],
  serviceClusterIpRanges: ["172.20.0.0/16", "fd10::/108"],
  clusterCidrs: ["10.244.0.0/16"],
  maximumExpirationSeconds: 30 * 86400,
};

function serving(
  options: {
    subject?: DistinguishedName;
    sans?: Partial<SubjectAlternativeNames>;
    usages?: string[];
    requester?: typeof node1;
    node?: NodeFacts | undefined;
    expirationSeconds?: number;
    configuration?: KubeletServingConfiguration;
  } = {},
): ApprovalDecision {
  const request = parseCertificateRequest(
    buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subject: options.subject ?? nodeSubject,
      subjectAltNames: options.sans ?? { dns: ["n1"], ip: ["10.0.0.11"] },
    }),
  );
  const node = "node" in options ? options.node : n1;
  return decideKubeletServing(
    options.requester ?? node1,
    request,
    options.usages ?? servingUsages,
    options.expirationSeconds,
    {
      node: node && nodeAddressSets(node),
      nodesWithAddress: (key) => {
        // The requester's own entries are in the index too (the approver ignores them).
        const own = [...(node?.addresses ?? []).map((a) => nodeAddressKey(a.address)), "n1"];
        return [...(otherNodes.get(key) ?? []), ...(own.includes(key) ? ["n1"] : [])];
      },
    },
    compileKubeletServingSettings(options.configuration ?? configured),
  );
}

function expectDenied(decision: ApprovalDecision, reason: string, message?: RegExp): void {
  if (decision.verdict !== "deny")
    expect.fail(`expected a denial ${reason}, got ${decision.verdict}: ${decision.message}`);
  expect(decision.reason).to.equal(reason);
  if (message) expect(decision.message).to.match(message);
}

function expectPending(decision: ApprovalDecision, message: RegExp): void {
  if (decision.verdict !== "pending")
    expect.fail(`expected pending, got ${decision.verdict}: ${decision.message}`);
  expect(decision.reason).to.equal("KubeletServingNotConfigured");
  expect(decision.message).to.match(message);
}

describe("decideKubeletServing", () => {
  it("approves the honest request: every SAN is an address of the requesting Node inside the configured ranges and patterns", () => {
    const decision = serving({
      sans: { dns: ["n1", "n1.cluster.internal"], ip: ["10.0.0.11", "203.0.113.11", "fd00::11"] },
    });
    expect(decision.verdict, decision.message).to.equal("approve");
    expect(serving({ usages: ["digital signature", "server auth"] }).verdict).to.equal("approve");
  });

  it("approves an extra DNS name for that node only ({node} = the requester's node name)", () => {
    expect(serving({ sans: { dns: ["n1.nodes.example.com"] } }).verdict).to.equal("approve");
    expectDenied(serving({ sans: { dns: ["n2.nodes.example.com"] } }), "SanNotNodeAddress");
  });

  it("compares IP SANs as TLS clients read them: a mapped IPv4 range contains the plain address", () => {
    const decision = serving({
      sans: { ip: ["10.0.0.11"] },
      configuration: { ...configured, ipRanges: ["::ffff:10.0.0.0/112"] },
    });
    expect(decision.verdict, decision.message).to.equal("approve");
  });

  describe("Node addresses alone never suffice (issue 10 item 1)", () => {
    it("leaves a request pending, naming both settings, when nothing is configured: never approved, never denied", () => {
      const none: KubeletServingConfiguration = {};
      expectPending(
        serving({ configuration: none }),
        /--kubelet-serving-ip-ranges and --kubelet-serving-dns-pattern/,
      );
      // Not even the attack is decided: nothing is written until the operator configures the approver.
      expectPending(
        serving({ configuration: none, sans: { dns: ["kubernetes.default.svc"], ip: ["10.0.0.12"] } }),
        /--kubelet-serving-ip-ranges/,
      );
    });

    it("denies what is not a node's well-formed serving request even when nothing is configured: only nodes raise KubeletServingNotConfigured", () => {
      const none: KubeletServingConfiguration = {};
      expectDenied(
        serving({
          configuration: none,
          requester: { username: "mallory", groups: ["system:authenticated"] },
        }),
        "RequesterNotANode",
      );
      expectDenied(serving({ configuration: none, sans: {} }), "NoSubjectAltNames");
      expectDenied(
        serving({ configuration: none, usages: ["digital signature", "client auth"] }),
        "UsagesNotAllowed",
      );
    });

    it("leaves IP SANs pending without --kubelet-serving-ip-ranges, DNS SANs without --kubelet-serving-dns-pattern", () => {
      const dnsOnly = { ...configured, ipRanges: [] };
      expectPending(serving({ configuration: dnsOnly }), /needs --kubelet-serving-ip-ranges \(/);
      expect(serving({ configuration: dnsOnly, sans: { dns: ["n1"] } }).verdict).to.equal("approve");
      const ipOnly = { ...configured, dnsPatterns: [], extraDnsPatterns: [] };
      expectPending(serving({ configuration: ipOnly }), /needs --kubelet-serving-dns-pattern \(/);
      expect(serving({ configuration: ipOnly, sans: { ip: ["10.0.0.11"] } }).verdict).to.equal("approve");
      // An extra DNS name is configuration enough for itself, not for the node's hostname.
      const extraOnly = { ...configured, dnsPatterns: [] };
      expect(serving({ configuration: extraOnly, sans: { dns: ["n1.nodes.example.com"] } }).verdict).to.equal(
        "approve",
      );
      expectPending(
        serving({ configuration: extraOnly, sans: { dns: ["n1"] } }),
        /--kubelet-serving-dns-pattern/,
      );
    });

    it("leaves IP SANs pending without --service-cluster-ip-range (a node could claim the kubernetes Service's ClusterIP)", () => {
      const noServiceRange = { ...configured, serviceClusterIpRanges: [] };
      expectPending(serving({ configuration: noServiceRange }), /needs --service-cluster-ip-range \(/);
      expect(serving({ configuration: noServiceRange, sans: { dns: ["n1"] } }).verdict).to.equal("approve");
    });

    it("denies n9 the kubernetes Service's ClusterIP 10.0.0.1 under ipRanges 10.0.0.0/8 although its Node lists it: ClusterServiceIpAddress", () => {
      const n9 = { username: "system:node:n9", groups: ["system:nodes"] };
      const node: NodeFacts = { addresses: [{ type: "InternalIP", address: "10.0.0.1" }] };
      const broad = {
        ...configured,
        ipRanges: ["10.0.0.0/8"],
        serviceClusterIpRanges: ["10.0.0.0/24", "fd10::/108"],
      };
      const subject: DistinguishedName = [
        { type: "O", value: "system:nodes" },
        { type: "CN", value: "system:node:n9" },
      ];
      expectDenied(
        serving({ requester: n9, subject, node, sans: { ip: ["10.0.0.1"] }, configuration: broad }),
        "ClusterServiceIpAddress",
        /IP SAN 10\.0\.0\.1 is in the Service ClusterIP range.*\(check --service-cluster-ip-range\)$/,
      );
    });

    it("denies a Pod IP the Node lists, inside --cluster-cidr: PodIpAddress", () => {
      const node: NodeFacts = { addresses: [...n1.addresses, { type: "InternalIP", address: "10.244.1.5" }] };
      expectDenied(
        serving({
          node,
          sans: { ip: ["10.244.1.5"] },
          configuration: { ...configured, ipRanges: ["10.0.0.0/8"] },
        }),
        "PodIpAddress",
        /check --cluster-cidr/,
      );
    });

    it("denies the exact attack: n1 lists n2's InternalIP and hostname and kubernetes.default.svc(.cluster.local) as its own addresses", () => {
      const compromisedN1: NodeFacts = {
        addresses: [
          ...n1.addresses,
          { type: "InternalIP", address: "10.0.0.12" },
          { type: "Hostname", address: "n2" },
          { type: "InternalDNS", address: "kubernetes.default.svc" },
          { type: "InternalDNS", address: "kubernetes.default.svc.cluster.local" },
        ],
      };
      const permissive = { ...configured, dnsPatterns: [".*"], ipRanges: ["0.0.0.0/0", "::/0"] };
      const attack = (sans: Partial<SubjectAlternativeNames>) =>
        serving({ node: compromisedN1, configuration: permissive, sans });
      expectDenied(
        attack({
          dns: ["n1", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
          ip: ["10.0.0.12"],
        }),
        "ClusterServiceName",
        /DNS SAN kubernetes\.default\.svc is a cluster service name/,
      );
      expectDenied(
        attack({ dns: ["n1", "n2"], ip: ["10.0.0.11"] }),
        "SanOfAnotherNode",
        /DNS SAN n2 is a name or address of Node n2/,
      );
      expectDenied(
        attack({ dns: ["n1"], ip: ["10.0.0.11", "10.0.0.12"] }),
        "SanOfAnotherNode",
        /IP SAN 10\.0\.0\.12 is a name or address of Node n2/,
      );
    });

    it("denies a SAN that only another Node's name has (n3 lists no Hostname)", () => {
      const claimsN3: NodeFacts = { addresses: [...n1.addresses, { type: "Hostname", address: "N3" }] };
      expectDenied(serving({ node: claimsN3, sans: { dns: ["N3"] } }), "SanOfAnotherNode", /Node n3/);
    });

    it("denies a Node address outside the configured ranges and patterns", () => {
      expectDenied(
        serving({
          sans: { ip: ["203.0.113.11"] },
          configuration: { ...configured, ipRanges: ["10.0.0.0/16"] },
        }),
        "IpAddressNotAllowed",
        /IP SAN 203\.0\.113\.11 is in no --kubelet-serving-ip-ranges range \(check --kubelet-serving-ip-ranges\)$/,
      );
      expectDenied(
        serving({
          sans: { dns: ["n1.cluster.internal"] },
          configuration: { ...configured, dnsPatterns: ["n[0-9]+"] },
        }),
        "DnsNameNotAllowed",
        /DNS SAN n1\.cluster\.internal matches no --kubelet-serving-dns-pattern/,
      );
    });

    it("matches DNS patterns whole: evil-n1 and n1.evil.example.com do not match n[0-9]+", () => {
      const evil: NodeFacts = {
        addresses: [
          ...n1.addresses,
          { type: "Hostname", address: "evil-n1" },
          { type: "ExternalDNS", address: "n1.evil.example.com" },
        ],
      };
      const patterns = { ...configured, dnsPatterns: ["n[0-9]+", "n1|n2"] };
      expectDenied(
        serving({ node: evil, sans: { dns: ["evil-n1"] }, configuration: patterns }),
        "DnsNameNotAllowed",
      );
      expectDenied(
        serving({ node: evil, sans: { dns: ["n1.evil.example.com"] }, configuration: patterns }),
        "DnsNameNotAllowed",
      );
    });
  });

  describe("special-purpose IP SANs are denied even when the Node lists them and ::/0 is allowed", () => {
    const everything = { ...configured, ipRanges: ["0.0.0.0/0", "::/0"] };
    for (const [address, kind] of [
      ["127.0.0.1", "loopback"],
      ["::1", "loopback"],
      ["169.254.169.254", "link-local"],
      ["fe80::1", "link-local"],
      ["0.0.0.0", "unspecified"],
      ["::", "unspecified"],
      ["224.0.0.1", "multicast"],
      ["ff02::1", "multicast"],
      ["::ffff:10.0.0.11", "IPv4-mapped IPv6"],
      ["::10.0.0.11", "IPv4-compatible IPv6"],
    ] as const) {
      it(`${address}: SpecialPurposeIpAddress (${kind})`, () => {
        const node: NodeFacts = { addresses: [...n1.addresses, { type: "InternalIP", address }] };
        expectDenied(
          serving({ node, sans: { ip: [address] }, configuration: everything }),
          "SpecialPurposeIpAddress",
          new RegExp(`is a ${kind} address`),
        );
      });
    }
    it("::a00:b (IPv4-compatible, IPv6 to Go) is never approved as 10.0.0.11, even when the Node lists both", () => {
      const node: NodeFacts = { addresses: [...n1.addresses, { type: "InternalIP", address: "::a00:b" }] };
      expectDenied(
        serving({ node, sans: { ip: ["::a00:b"] } }),
        "SpecialPurposeIpAddress",
        /IPv4-compatible/,
      );
      expectDenied(
        serving({
          sans: { ip: ["::a00:b"] },
          configuration: { ...configured, ipRanges: ["10.0.0.0/8", "::/0"] },
        }),
        "SpecialPurposeIpAddress",
      );
    });
    it("item 5: ::ffff:10.96.0.1 under ranges [10.1.0.0/16, ::/0] is not approved (Go reads it as 10.96.0.1)", () => {
      const node: NodeFacts = {
        addresses: [...n1.addresses, { type: "InternalIP", address: "::ffff:10.96.0.1" }],
      };
      const ranges = { ...configured, ipRanges: ["10.1.0.0/16", "::/0"] };
      expectDenied(
        serving({ node, sans: { ip: ["::ffff:10.96.0.1"] }, configuration: ranges }),
        "SpecialPurposeIpAddress",
      );
      const plain: NodeFacts = { addresses: [...n1.addresses, { type: "InternalIP", address: "10.96.0.1" }] };
      expectDenied(
        serving({ node: plain, sans: { ip: ["10.96.0.1"] }, configuration: ranges }),
        "IpAddressNotAllowed",
      );
    });
  });

  describe("cluster service names are denied whatever the Node lists", () => {
    const names = [
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "KUBERNETES.Default.SVC.cluster.local",
      "api.team.svc",
      "api.team.svc.cluster.local",
    ];
    for (const name of names) {
      it(`${name}: ClusterServiceName`, () => {
        const node: NodeFacts = { addresses: [...n1.addresses, { type: "InternalDNS", address: name }] };
        expectDenied(
          serving({ node, sans: { dns: [name] }, configuration: { ...configured, dnsPatterns: [".*"] } }),
          "ClusterServiceName",
        );
      });
    }
    it("kubernetes.default.svc.k8s.internal with a wrong --cluster-domain (cluster.local): a svc label anywhere is a service name", () => {
      const name = "kubernetes.default.svc.k8s.internal";
      const node: NodeFacts = { addresses: [...n1.addresses, { type: "InternalDNS", address: name }] };
      expectDenied(
        serving({ node, sans: { dns: [name] }, configuration: { ...configured, dnsPatterns: [".*"] } }),
        "ClusterServiceName",
        /any name with a svc label/,
      );
    });
  });

  describe("names in the cluster's DNS domain are denied whatever the Node lists: ClusterDomainName", () => {
    for (const [name, clusterDomain] of [
      ["10-244-1-5.default.pod.cluster.local", "cluster.local"],
      ["foo.cluster.local", "cluster.local"],
      ["cluster.local", "cluster.local"],
      ["n1.k8s.example.org", "k8s.example.org"],
    ] as const) {
      it(`${name} (--cluster-domain=${clusterDomain})`, () => {
        const node: NodeFacts = { addresses: [...n1.addresses, { type: "InternalDNS", address: name }] };
        expectDenied(
          serving({
            node,
            sans: { dns: [name] },
            configuration: { ...configured, dnsPatterns: [".*"], clusterDomain },
          }),
          "ClusterDomainName",
          new RegExp(
            `is in the cluster's DNS domain ${clusterDomain.replaceAll(".", "\\.")}.*\\(check --cluster-domain\\)$`,
          ),
        );
      });
    }
    it("a name that only ends like the domain is not in it: n1.notcluster.local is approved under .*", () => {
      const node: NodeFacts = {
        addresses: [...n1.addresses, { type: "InternalDNS", address: "n1.notcluster.local" }],
      };
      const decision = serving({
        node,
        sans: { dns: ["n1.notcluster.local"] },
        configuration: { ...configured, dnsPatterns: [".*"] },
      });
      expect(decision.verdict, decision.message).to.equal("approve");
    });
  });

  const refusals: [string, Parameters<typeof serving>[0], string, RegExp?][] = [
    [
      "a requester that is not a node",
      { requester: { username: "system:serviceaccount:kube-system:x", groups: ["system:serviceaccounts"] } },
      "RequesterNotANode",
    ],
    [
      "a node name without the system:nodes group",
      { requester: { username: "system:node:n1", groups: [] } },
      "RequesterNotANode",
    ],
    [
      "another node's name in the CN",
      {
        subject: [
          { type: "O", value: "system:nodes" },
          { type: "CN", value: "system:node:n2" },
        ],
      },
      "CommonNameMismatch",
    ],
    [
      "a CN that only starts with the node's name (prefix match hole)",
      {
        subject: [
          { type: "O", value: "system:nodes" },
          { type: "CN", value: "system:node:n1x" },
        ],
      },
      "CommonNameMismatch",
    ],
    [
      "O=system:masters",
      {
        subject: [
          { type: "O", value: "system:masters" },
          { type: "CN", value: "system:node:n1" },
        ],
      },
      "OrganizationMismatch",
    ],
    [
      "another node's address (talos GHSA-87pw-5j2g-6376)",
      { sans: { dns: ["n1"], ip: ["10.0.0.12"] } },
      "SanOfAnotherNode",
      /IP SAN 10.0.0.12 is a name or address of Node n2/,
    ],
    [
      "an address no Node has",
      { sans: { dns: ["n1"], ip: ["10.0.0.99"] } },
      "SanNotNodeAddress",
      /IP SAN 10.0.0.99 is not an address of Node n1/,
    ],
    [
      "a DNS name that starts with the node name (kubelet-csr-approver prefix hole)",
      { sans: { dns: ["n1.evil.example.com"] } },
      "SanNotNodeAddress",
    ],
    ["a wildcard DNS name", { sans: { dns: ["*.n1.cluster.internal"] } }, "InvalidDnsName"],
    ["a DNS name with a trailing dot", { sans: { dns: ["n1."] } }, "InvalidDnsName"],
    [
      "a URI SAN",
      { sans: { dns: ["n1"], uri: ["spiffe://cluster.local/ns/kube-system/sa/x"] } },
      "UnexpectedSanType",
    ],
    ["an email SAN", { sans: { dns: ["n1"], email: ["a@example.com"] } }, "UnexpectedSanType"],
    ["no SAN", { sans: {} }, "NoSubjectAltNames"],
    [
      "client auth usages",
      { usages: ["digital signature", "key encipherment", "client auth"] },
      "UsagesNotAllowed",
    ],
    ["serving usages plus client auth", { usages: [...servingUsages, "client auth"] }, "UsagesNotAllowed"],
    ["a missing Node", { node: undefined }, "NodeNotFound", /Node n1 does not exist/],
    ["a lifetime above the maximum", { expirationSeconds: 31 * 86400 }, "ExpirationTooLong"],
  ];
  for (const [name, options, reason, message] of refusals) {
    it(`denies ${name}: ${reason}`, () => expectDenied(serving(options), reason, message));
  }
});

describe("kubeletClientShape", () => {
  const clientRequest = (subject: DistinguishedName, sans: Partial<SubjectAlternativeNames> = {}) =>
    parseCertificateRequest(
      buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subject, subjectAltNames: sans }),
    );
  it("asks selfnodeclient then nodeclient when a node renews its own identity, only nodeclient for a bootstrap token", () => {
    const request = clientRequest(nodeSubject);
    expect(kubeletClientShape(node1, request, ["digital signature", "client auth"])).to.deep.equal({
      subresources: ["selfnodeclient", "nodeclient"],
    });
    expect(
      kubeletClientShape({ username: "system:bootstrap:abcdef", groups: ["system:bootstrappers"] }, request, [
        "digital signature",
        "key encipherment",
        "client auth",
      ]),
    ).to.deep.equal({ subresources: ["nodeclient"] });
  });
  it("ignores other shapes (never denies, like kube-controller-manager)", () => {
    expect(
      kubeletClientShape(node1, clientRequest(nodeSubject, { dns: ["n1"] }), [
        "digital signature",
        "client auth",
      ]),
    ).to.have.property("ignore");
    expect(
      kubeletClientShape(node1, clientRequest([{ type: "CN", value: "system:node:n1" }]), [
        "digital signature",
        "client auth",
      ]),
    ).to.have.property("ignore");
    expect(
      kubeletClientShape(node1, clientRequest(nodeSubject), ["digital signature", "server auth"]),
    ).to.have.property("ignore");
  });
});

import { expect } from "chai";
import { parseCertificateRequest } from "../../../src/pki/certificate-request.js";
import type { DistinguishedName } from "../../../src/pki/names.js";
import type { SubjectAlternativeNames } from "../../../src/pki/subject-alternative-names.js";
import {
  cleanupReason,
  decideKubeletServing,
  defaultCleanupPeriods,
  kubeletClientShape,
  type ApprovalDecision,
  type NodeFacts,
} from "../../../src/policy/kubelet-approval.js";
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
  ],
};

function serving(
  options: {
    subject?: DistinguishedName;
    sans?: Partial<SubjectAlternativeNames>;
    usages?: string[];
    requester?: typeof node1;
    node?: NodeFacts | undefined;
    expirationSeconds?: number;
    extraDnsPatterns?: string[];
  } = {},
): ApprovalDecision {
  const request = parseCertificateRequest(
    buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subject: options.subject ?? nodeSubject,
      subjectAltNames: options.sans ?? { dns: ["n1"], ip: ["10.0.0.11"] },
    }),
  );
  return decideKubeletServing(
    options.requester ?? node1,
    request,
    options.usages ?? servingUsages,
    options.expirationSeconds,
    "node" in options ? options.node : n1,
    {
      maximumExpirationSeconds: 30 * 86400,
      extraDnsPatterns: options.extraDnsPatterns ?? [],
    },
  );
}

function expectDenied(decision: ApprovalDecision, reason: string, message?: RegExp): void {
  if (decision.verdict !== "deny")
    expect.fail(`expected a denial ${reason}, got ${decision.verdict}: ${decision.message}`);
  expect(decision.reason).to.equal(reason);
  if (message) expect(decision.message).to.match(message);
}

describe("decideKubeletServing", () => {
  it("approves the honest request: every SAN is an address of the requesting Node", () => {
    const decision = serving({
      sans: { dns: ["n1", "n1.cluster.internal"], ip: ["10.0.0.11", "203.0.113.11"] },
    });
    expect(decision.verdict).to.equal("approve");
    expect(serving({ usages: ["digital signature", "server auth"] }).verdict).to.equal("approve");
  });

  it("approves an operator pattern for that node only", () => {
    expect(
      serving({ sans: { dns: ["n1.nodes.example.com"] }, extraDnsPatterns: ["{node}.nodes.example.com"] })
        .verdict,
    ).to.equal("approve");
    expectDenied(
      serving({ sans: { dns: ["n2.nodes.example.com"] }, extraDnsPatterns: ["{node}.nodes.example.com"] }),
      "SanNotNodeAddress",
    );
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
      "SanNotNodeAddress",
      /IP SAN 10.0.0.12 is not an address of Node n1/,
    ],
    [
      "a DNS name that starts with the node name (kubelet-csr-approver prefix hole)",
      { sans: { dns: ["n1.evil.example.com"] } },
      "SanNotNodeAddress",
    ],
    [
      "an extra DNS name",
      { sans: { dns: ["n1", "kubernetes.default.svc"] } },
      "SanNotNodeAddress",
      /kubernetes.default.svc/,
    ],
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

describe("cleanupReason (kube-controller-manager's periods, plus approved-but-never-signed)", () => {
  const created = new Date("2030-01-01T00:00:00Z");
  const at = (hours: number) => new Date(created.getTime() + hours * 3600_000);
  const approved = { type: "Approved", status: "True", lastUpdateTime: at(0) };
  it("deletes an issued CSR 1 h after approval, and at once when its certificate expired", () => {
    expect(
      cleanupReason(
        { created, conditions: [approved], certificateNotAfter: at(100) },
        at(0.9),
        defaultCleanupPeriods,
      ),
    ).to.equal(undefined);
    expect(
      cleanupReason(
        { created, conditions: [approved], certificateNotAfter: at(100) },
        at(1),
        defaultCleanupPeriods,
      ),
    ).to.equal("Issued");
    expect(
      cleanupReason(
        { created, conditions: [approved], certificateNotAfter: at(0.5) },
        at(0.5),
        defaultCleanupPeriods,
      ),
    ).to.equal("Expired");
  });
  it("deletes Denied and Failed 1 h after the condition, pending after 24 h, approved-unsigned after its own period", () => {
    expect(
      cleanupReason(
        { created, conditions: [{ type: "Denied", status: "True", lastUpdateTime: at(2) }] },
        at(2.5),
        defaultCleanupPeriods,
      ),
    ).to.equal(undefined);
    expect(
      cleanupReason(
        { created, conditions: [{ type: "Denied", status: "True", lastUpdateTime: at(2) }] },
        at(3),
        defaultCleanupPeriods,
      ),
    ).to.equal("Denied");
    expect(
      cleanupReason(
        { created, conditions: [approved, { type: "Failed", status: "True", lastUpdateTime: at(1) }] },
        at(2),
        defaultCleanupPeriods,
      ),
    ).to.equal("Failed");
    expect(cleanupReason({ created, conditions: [] }, at(23), defaultCleanupPeriods)).to.equal(undefined);
    expect(cleanupReason({ created, conditions: [] }, at(24), defaultCleanupPeriods)).to.equal("Pending");
    expect(cleanupReason({ created, conditions: [approved] }, at(23), defaultCleanupPeriods)).to.equal(
      undefined,
    );
    expect(
      cleanupReason({ created, conditions: [approved] }, at(2), {
        ...defaultCleanupPeriods,
        approvedUnsignedSeconds: 3600,
      }),
    ).to.equal("ApprovedUnsigned");
  });
});

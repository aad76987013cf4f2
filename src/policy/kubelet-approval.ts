/**
 * Approval decisions for kubelet certificates, pure. The facts about the cluster (the Node's
 * addresses, which Nodes claim an address, a SubjectAccessReview's answer) are resolved by the
 * controller and passed in.
 *
 * kubelet-serving threat model: a kubelet writes its own Node.status.addresses (NodeRestriction
 * allows it), so a compromised node can claim any address or name. An address of the requesting
 * Node is therefore necessary but never sufficient: every SAN must also pass operator
 * configuration (IP ranges, anchored DNS patterns), and a SAN another Node has, a cluster service
 * name or a special-purpose address is denied outright. The node comes from spec.username (never
 * from the CSR) and names are compared whole (no prefix match).
 */
import type { CertificateRequest } from "../pki/certificate-request.js";
import { defaultKeyAllowList, keyRejection } from "../pki/key-allow-list.js";
import { attributeValues } from "../pki/names.js";
import { canonicalIpAddress, ipRangeContains, specialPurposeIpClass } from "./ip-addresses.js";
import { isDnsHostName } from "./subject-alternative-name-syntax.js";
import {
  kubeletServingSetting,
  kubeletServingUnconfigured,
  type KubeletServingSettings,
} from "./kubelet-serving-settings.js";
import type { Requester } from "./signing-policy.js";
import type { ApprovalDenialReason, ApprovalPendingReason } from "../api/reasons.js";

export const kubeletServingSignerName = "kubernetes.io/kubelet-serving";
export const kubeletClientSignerName = "kubernetes.io/kube-apiserver-client-kubelet";

export type ApprovalDecision =
  | { readonly verdict: "approve"; readonly rule: string; readonly message: string }
  | {
      readonly verdict: "deny";
      readonly reason: ApprovalDenialReason;
      readonly rule: string;
      readonly message: string;
    }
  /** Cannot be decided until the operator configures something: no condition, a Warning Event. */
  | { readonly verdict: "pending"; readonly reason: ApprovalPendingReason; readonly message: string }
  /** Not ours to decide (another approver's shape); leave the CSR alone. */
  | { readonly verdict: "ignore"; readonly message: string };

/** A Node's status.addresses as the API server returns them. */
export interface NodeFacts {
  readonly addresses: readonly { type: string; address: string }[];
}

/**
 * Only a Node's first 64 addresses count, in the index and in every decision. A kubelet writes its
 * own status and the API server accepts tens of thousands of addresses, which would make every
 * index update and every decision cost that much; real Nodes list a handful (Hostname, an
 * InternalIP or two per family, an ExternalIP, a DNS name or two).
 */
export const maximumCountedNodeAddresses = 64;

/** The addresses of a Node that count (the first maximumCountedNodeAddresses). */
export function countedNodeAddresses(node: NodeFacts): NodeFacts["addresses"] {
  return node.addresses.slice(0, maximumCountedNodeAddresses);
}

/** A Node's addresses as a decision compares them, computed once per Node update (see nodeAddressSets). */
export interface NodeAddressSets {
  /** Hostname, InternalDNS and ExternalDNS, lower-cased. */
  readonly dnsNames: ReadonlySet<string>;
  /** InternalIP and ExternalIP, canonical (canonicalIpAddress). */
  readonly ipAddresses: ReadonlySet<string>;
}

export function nodeAddressSets(node: NodeFacts): NodeAddressSets {
  const dnsNames = new Set<string>();
  const ipAddresses = new Set<string>();
  for (const { type, address } of countedNodeAddresses(node)) {
    if (nodeDnsAddressTypes.has(type)) dnsNames.add(address.toLowerCase());
    const ip = nodeIpAddressTypes.has(type) ? canonicalIpAddress(address) : undefined;
    if (ip !== undefined) ipAddresses.add(ip);
  }
  return { dnsNames, ipAddresses };
}

/** The --kubelet-serving-extra-dns names of a node: each pattern with {node} = its lower-cased name. */
export function extraDnsNames(nodeName: string, extraDnsPatterns: readonly string[]): string[] {
  return extraDnsPatterns.map((pattern) => pattern.replaceAll("{node}", nodeName.toLowerCase()));
}

/** What the cluster says about the requesting node and the others. */
export interface KubeletServingClusterFacts {
  /** The requesting Node; undefined when no Node of that name exists. */
  readonly node: NodeAddressSets | undefined;
  /**
   * Names of the Nodes that have `key` (see nodeAddressKey) as their name, one of their extra DNS
   * names or one of their (counted) addresses.
   */
  nodesWithAddress(key: string): readonly string[];
}

/** How an address or name is compared across Nodes: canonical IPv4/IPv6 text, or a lower-cased name. */
export function nodeAddressKey(value: string): string {
  return canonicalIpAddress(value) ?? value.toLowerCase().replace(/\.$/, "");
}

const nodeDnsAddressTypes = new Set(["Hostname", "InternalDNS", "ExternalDNS"]);
const nodeIpAddressTypes = new Set(["InternalIP", "ExternalIP"]);
const servingUsageSets = [
  ["digital signature", "key encipherment", "server auth"],
  ["digital signature", "server auth"],
];
const clientUsageSets = [
  ["digital signature", "key encipherment", "client auth"],
  ["digital signature", "client auth"],
];

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && new Set(a).size === a.length && b.every((item) => a.includes(item));
}

/** A denial whose message ends with the check that failed: "... (check <rule>)". */
export function deny(reason: ApprovalDenialReason, rule: string, message: string): ApprovalDecision {
  return { verdict: "deny", reason, rule, message: `${message} (check ${rule})` };
}

/** The node name of a kubelet requester, when spec.username/groups say it is one. */
export function nodeNameOf(requester: Requester): string | undefined {
  if (!requester.username.startsWith("system:node:") || !requester.groups.includes("system:nodes"))
    return undefined;
  const name = requester.username.slice("system:node:".length);
  return name === "" ? undefined : name;
}

/**
 * Names the cluster's DNS gives to Services: kubernetes, kubernetes.default, and any name with a
 * `svc` label (kubernetes.default.svc, a.b.svc.<any domain>: a wrong --cluster-domain must not let
 * the real one through).
 */
function isClusterServiceName(name: string): boolean {
  return name === "kubernetes" || name === "kubernetes.default" || name.split(".").includes("svc");
}

/** The cluster's DNS domain and everything under it (Pods' A records, Services, the domain itself). */
function isInClusterDomain(name: string, clusterDomain: string): boolean {
  return name === clusterDomain || name.endsWith(`.${clusterDomain}`);
}

/** The settings a request needs but the operator has not given (flag names); empty when none. */
function missingSettings(
  sans: CertificateRequest["subjectAltNames"],
  extraNames: readonly string[],
  settings: KubeletServingSettings,
): string[] {
  if (kubeletServingUnconfigured(settings))
    return [kubeletServingSetting.ipRanges, kubeletServingSetting.dnsPatterns];
  const missing: string[] = [];
  if (sans.ip.length > 0 && settings.ipRanges.length === 0) missing.push(kubeletServingSetting.ipRanges);
  // Without the Service ranges an IP SAN could be the kubernetes Service's ClusterIP, which a node may claim.
  if (sans.ip.length > 0 && settings.serviceClusterIpRanges.length === 0)
    missing.push(kubeletServingSetting.serviceClusterIpRange);
  if (settings.dnsPatterns.length === 0 && sans.dns.some((name) => !extraNames.includes(name.toLowerCase())))
    missing.push(kubeletServingSetting.dnsPatterns);
  return missing;
}

/**
 * kubernetes.io/kubelet-serving: approve only when every check holds; the first failed check is
 * the denial's reason. Without the settings its SANs need, a request is left pending (never
 * approved, never denied) so the operator sees a Warning naming the missing setting.
 */
export function decideKubeletServing(
  requester: Requester,
  request: CertificateRequest,
  usages: readonly string[],
  expirationSeconds: number | undefined,
  cluster: KubeletServingClusterFacts,
  settings: KubeletServingSettings,
): ApprovalDecision {
  const nodeName = nodeNameOf(requester);
  const sans = request.subjectAltNames;
  const extraNames = nodeName ? extraDnsNames(nodeName, settings.extraDnsPatterns) : [];
  const keyProblem = keyRejection(request.publicKeyDescription, defaultKeyAllowList);
  if (keyProblem) return deny("KeyNotAllowed", "key", keyProblem);
  if (!nodeName)
    return deny(
      "RequesterNotANode",
      "requester",
      `${requester.username} is not a node (system:node:<name> in group system:nodes)`,
    );
  const commonNames = attributeValues(request.subject, "CN");
  if (commonNames.length !== 1 || commonNames[0] !== requester.username) {
    return deny("CommonNameMismatch", "subject.CN", `CN must be exactly ${requester.username}`);
  }
  const organizations = attributeValues(request.subject, "O");
  if (organizations.length !== 1 || organizations[0] !== "system:nodes") {
    return deny("OrganizationMismatch", "subject.O", "O must be exactly [system:nodes]");
  }
  if (request.subject.some((attribute) => attribute.type !== "CN" && attribute.type !== "O")) {
    return deny("UnexpectedSubjectAttribute", "subject", "only CN and O are allowed in the subject");
  }
  if (!servingUsageSets.some((allowed) => sameSet(usages, allowed))) {
    return deny(
      "UsagesNotAllowed",
      "usages",
      `usages must be exactly {digital signature, key encipherment, server auth} or {digital signature, server auth}, got {${usages.join(", ")}}`,
    );
  }
  if (sans.uri.length > 0 || sans.email.length > 0)
    return deny(
      "UnexpectedSanType",
      "subjectAltNames",
      "URI and email SANs are not allowed in kubelet serving certificates",
    );
  if (sans.dns.length + sans.ip.length === 0)
    return deny("NoSubjectAltNames", "subjectAltNames", "at least one DNS or IP SAN is required");

  // Only a well-formed request from a node reaches this: anyone else cannot raise the operator's
  // KubeletServingNotConfigured signal (a Warning and a left-pending count).
  const missing = missingSettings(sans, extraNames, settings);
  if (missing.length > 0)
    return {
      verdict: "pending",
      reason: "KubeletServingNotConfigured",
      message: `left pending: kubelet serving approval needs ${missing.join(" and ")} (operator-configured ranges and patterns; Node addresses alone are never enough)`,
    };

  // SANs no configuration can make acceptable: denied before anything the node itself wrote is consulted.
  const dnsNames = sans.dns.map((name) => name.toLowerCase());
  for (const name of dnsNames) {
    if (!isDnsHostName(name))
      return deny(
        "InvalidDnsName",
        "subjectAltNames",
        `DNS SAN ${JSON.stringify(name)} is not a DNS host name`,
      );
    if (isClusterServiceName(name))
      return deny(
        "ClusterServiceName",
        "subjectAltNames",
        `DNS SAN ${name} is a cluster service name (kubernetes, kubernetes.default, any name with a svc label)`,
      );
    if (isInClusterDomain(name, settings.clusterDomain))
      return deny(
        "ClusterDomainName",
        kubeletServingSetting.clusterDomain,
        `DNS SAN ${name} is in the cluster's DNS domain ${settings.clusterDomain}, whose names belong to Services and Pods`,
      );
  }
  for (const ip of sans.ip) {
    const special = specialPurposeIpClass(ip);
    if (special)
      return deny("SpecialPurposeIpAddress", "subjectAltNames", `IP SAN ${ip} is a ${special} address`);
    if (settings.serviceClusterIpRanges.some((range) => ipRangeContains(range, ip)))
      return deny(
        "ClusterServiceIpAddress",
        kubeletServingSetting.serviceClusterIpRange,
        `IP SAN ${ip} is in the Service ClusterIP range, where the kubernetes Service and every other Service live`,
      );
    if (settings.clusterCidrs.some((range) => ipRangeContains(range, ip)))
      return deny(
        "PodIpAddress",
        kubeletServingSetting.clusterCidr,
        `IP SAN ${ip} is in the Pod range (${kubeletServingSetting.clusterCidr})`,
      );
  }
  // Names derived from the requester's own node name cannot be squatted: nobody else's claim counts.
  const ownNames = new Set([nodeAddressKey(nodeName), ...extraNames]);
  for (const san of [...dnsNames, ...sans.ip]) {
    const key = nodeAddressKey(san);
    if (ownNames.has(key)) continue;
    const owner = cluster.nodesWithAddress(key).find((name) => name !== nodeName);
    if (owner !== undefined)
      return deny(
        "SanOfAnotherNode",
        "subjectAltNames",
        `${sans.ip.includes(san) ? "IP" : "DNS"} SAN ${san} is a name or address of Node ${owner}`,
      );
  }

  const node = cluster.node;
  if (!node) return deny("NodeNotFound", "node", `Node ${nodeName} does not exist`);
  for (const name of dnsNames) {
    if (extraNames.includes(name)) continue;
    if (!node.dnsNames.has(name))
      return deny(
        "SanNotNodeAddress",
        "subjectAltNames",
        `DNS SAN ${name} is not an address of Node ${nodeName}`,
      );
    if (!settings.dnsPatterns.some((pattern) => pattern.test(name)))
      return deny(
        "DnsNameNotAllowed",
        kubeletServingSetting.dnsPatterns,
        `DNS SAN ${name} matches no ${kubeletServingSetting.dnsPatterns}`,
      );
  }
  for (const ip of sans.ip) {
    if (!node.ipAddresses.has(canonicalIpAddress(ip) ?? ip))
      return deny(
        "SanNotNodeAddress",
        "subjectAltNames",
        `IP SAN ${ip} is not an address of Node ${nodeName}`,
      );
    if (!settings.ipRanges.some((range) => ipRangeContains(range, ip)))
      return deny(
        "IpAddressNotAllowed",
        kubeletServingSetting.ipRanges,
        `IP SAN ${ip} is in no ${kubeletServingSetting.ipRanges} range`,
      );
  }
  if (
    settings.maximumExpirationSeconds !== undefined &&
    expirationSeconds !== undefined &&
    expirationSeconds > settings.maximumExpirationSeconds
  ) {
    return deny(
      "ExpirationTooLong",
      "expirationSeconds",
      `expirationSeconds ${expirationSeconds} exceeds ${settings.maximumExpirationSeconds}`,
    );
  }
  return {
    verdict: "approve",
    rule: "kubelet-serving",
    message: `kubelet serving certificate for Node ${nodeName}: every SAN is one of its addresses and within the configured ranges and patterns`,
  };
}

/**
 * kubernetes.io/kube-apiserver-client-kubelet, as kube-controller-manager's csrapproving does:
 * recognise the shape (CN system:node:..., O [system:nodes], no SANs, client usages), then the
 * caller's SubjectAccessReviews decide, in this order: selfnodeclient when the node renews its own
 * identity, then nodeclient (which also covers a bootstrap token asking for any node). Like
 * kube-controller-manager it never denies: what it does not approve stays pending.
 */
export function kubeletClientShape(
  requester: Requester,
  request: CertificateRequest,
  usages: readonly string[],
): { subresources: ("selfnodeclient" | "nodeclient")[] } | { ignore: string } {
  const commonNames = attributeValues(request.subject, "CN");
  const organizations = attributeValues(request.subject, "O");
  if (
    commonNames.length !== 1 ||
    !commonNames[0]!.startsWith("system:node:") ||
    commonNames[0] === "system:node:"
  )
    return { ignore: "CN is not system:node:<name>" };
  if (organizations.length !== 1 || organizations[0] !== "system:nodes")
    return { ignore: "O is not exactly [system:nodes]" };
  const sans = request.subjectAltNames;
  if (sans.dns.length + sans.ip.length + sans.uri.length + sans.email.length > 0)
    return { ignore: "kubelet client certificates carry no SANs" };
  if (!clientUsageSets.some((allowed) => sameSet(usages, allowed)))
    return { ignore: "usages are not the kubelet client set" };
  return {
    subresources: commonNames[0] === requester.username ? ["selfnodeclient", "nodeclient"] : ["nodeclient"],
  };
}

/**
 * Approval decisions for kubelet certificates, pure. The facts about the cluster (the Node's
 * addresses, a SubjectAccessReview's answer) are resolved by the controller and passed in.
 *
 * kubelet-serving closes the holes of existing approvers: the node comes from spec.username
 * (never from the CSR), names are compared whole (no prefix match), and every SAN must be one
 * of that Node's status.addresses or match an operator pattern for that node.
 */
import { attributeValues } from "../pki/names.js";
import type { CertificateRequest } from "../pki/certificate-request.js";
import type { Requester } from "./signing-policy.js";

export const kubeletServingSignerName = "kubernetes.io/kubelet-serving";
export const kubeletClientSignerName = "kubernetes.io/kube-apiserver-client-kubelet";

export type ApprovalDecision =
  | { readonly verdict: "approve"; readonly rule: string; readonly message: string }
  | { readonly verdict: "deny"; readonly reason: string; readonly rule: string; readonly message: string }
  /** Not ours to decide (another approver's shape); leave the CSR alone. */
  | { readonly verdict: "ignore"; readonly message: string };

export interface KubeletServingSettings {
  /** spec.expirationSeconds above this is refused; undefined: no limit (the signer clamps). */
  maximumExpirationSeconds?: number;
  /** Extra DNS names a node may use, with {node} for the node name, e.g. "{node}.nodes.example.com". */
  extraDnsPatterns: readonly string[];
}

/** The Node as the approver needs it; undefined when no Node of that name exists. */
export interface NodeFacts {
  readonly addresses: readonly { type: string; address: string }[];
}

const nodeAddressTypes = new Set(["Hostname", "InternalDNS", "ExternalDNS", "InternalIP", "ExternalIP"]);
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
export function deny(reason: string, rule: string, message: string): ApprovalDecision {
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
 * kubernetes.io/kubelet-serving: approve only when every check holds; the first failed check
 * is the denial's reason. `node` is looked up by the name from spec.username.
 */
export function decideKubeletServing(
  requester: Requester,
  request: CertificateRequest,
  usages: readonly string[],
  expirationSeconds: number | undefined,
  node: NodeFacts | undefined,
  settings: KubeletServingSettings,
): ApprovalDecision {
  const nodeName = nodeNameOf(requester);
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
  const sans = request.subjectAltNames;
  if (sans.uri.length > 0 || sans.email.length > 0)
    return deny(
      "UnexpectedSanType",
      "subjectAltNames",
      "URI and email SANs are not allowed in kubelet serving certificates",
    );
  if (sans.dns.length + sans.ip.length === 0)
    return deny("NoSubjectAltNames", "subjectAltNames", "at least one DNS or IP SAN is required");
  if (!node) return deny("NodeNotFound", "node", `Node ${nodeName} does not exist`);
  const addresses = node.addresses
    .filter((address) => nodeAddressTypes.has(address.type))
    .map((address) => address.address.toLowerCase());
  const extraNames = settings.extraDnsPatterns.map((pattern) =>
    pattern.replaceAll("{node}", nodeName).toLowerCase(),
  );
  for (const name of sans.dns) {
    const lower = name.toLowerCase();
    if (!addresses.includes(lower) && !extraNames.includes(lower)) {
      return deny(
        "SanNotNodeAddress",
        "subjectAltNames",
        `DNS SAN ${name} is not an address of Node ${nodeName}`,
      );
    }
  }
  for (const ip of sans.ip) {
    if (!addresses.includes(ip.toLowerCase()))
      return deny(
        "SanNotNodeAddress",
        "subjectAltNames",
        `IP SAN ${ip} is not an address of Node ${nodeName}`,
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
    message: `kubelet serving certificate for Node ${nodeName}: every SAN is one of its addresses`,
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

/** Clean-up periods (kube-controller-manager's, plus approved-but-never-signed, which it forgets). */
export interface CleanupPeriods {
  finishedSeconds: number;
  pendingSeconds: number;
  approvedUnsignedSeconds: number;
}

/** How often the clean-up sweeps (kube-controller-manager's csrcleaner runs every minute too). */
export const defaultCleanupIntervalMs = 60_000;

export const defaultCleanupPeriods: CleanupPeriods = {
  finishedSeconds: 3600,
  pendingSeconds: 24 * 3600,
  approvedUnsignedSeconds: 24 * 3600,
};

export interface CleanupFacts {
  created: Date;
  conditions: readonly { type: string; status: string; lastUpdateTime?: Date; lastTransitionTime?: Date }[];
  /** NotAfter of the issued leaf, when there is a certificate. */
  certificateNotAfter?: Date;
}

/** Why (and so whether) a CSR should be deleted now; undefined: keep it. */
export function cleanupReason(
  facts: CleanupFacts,
  now: Date,
  periods: CleanupPeriods,
): "Expired" | "Issued" | "Denied" | "Failed" | "Pending" | "ApprovedUnsigned" | undefined {
  const age = (since: Date | undefined): number =>
    (now.getTime() - (since ?? facts.created).getTime()) / 1000;
  const condition = (type: string) => facts.conditions.find((c) => c.type === type && c.status === "True");
  const changed = (type: string): Date | undefined =>
    condition(type)?.lastUpdateTime ?? condition(type)?.lastTransitionTime;
  if (facts.certificateNotAfter && facts.certificateNotAfter <= now) return "Expired";
  if (condition("Denied")) return age(changed("Denied")) >= periods.finishedSeconds ? "Denied" : undefined;
  if (condition("Failed")) return age(changed("Failed")) >= periods.finishedSeconds ? "Failed" : undefined;
  if (facts.certificateNotAfter)
    return age(changed("Approved")) >= periods.finishedSeconds ? "Issued" : undefined;
  if (condition("Approved"))
    return age(changed("Approved")) >= periods.approvedUnsignedSeconds ? "ApprovedUnsigned" : undefined;
  return age(facts.created) >= periods.pendingSeconds ? "Pending" : undefined;
}

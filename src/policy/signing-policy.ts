/**
 * Which certificate, if any, a Signer grants for a verified request. Pure: no I/O, no clock;
 * the controller resolves the tenant namespaces (names plus selector matches) beforehand.
 * Every decision carries the rule (a Signer spec field) that made it.
 */
import type { CertificateRequest } from "../pki/certificate-request.js";
import { describePublicKey } from "../pki/request-key.js";
import type { IssuanceGrant } from "../pki/issuance.js";
import { keyRejection } from "../pki/key-allow-list.js";
import { intersectUsages } from "../pki/key-usages.js";
import type { NameAttribute } from "../pki/names.js";
import { parsePlainMailbox } from "./email-address.js";
import { ipRangeContains, parseCidr } from "./ip-addresses.js";
import type { SigningRefusalReason } from "../api/reasons.js";
import type { SignerSpec } from "../api/signer.js";
import { isReservedName } from "./reserved-names.js";
import {
  invalidDnsNameMessage,
  invalidEmailAddressMessage,
  isDnsNameSyntax,
} from "./subject-alternative-name-syntax.js";

/** The authenticated identity that created the CSR (spec.username, spec.groups). */
export interface Requester {
  readonly username: string;
  readonly groups: readonly string[];
}

export interface SigningRequestFacts {
  readonly requester: Requester;
  readonly request: CertificateRequest;
  readonly usages: readonly string[];
  readonly expirationSeconds?: number;
}

export interface PolicyContext {
  readonly tenantNamespaces: ReadonlySet<string>;
}

export type SigningDecision =
  | {
      readonly allowed: true;
      readonly rule: string;
      readonly grant: IssuanceGrant;
      readonly identity: string;
    }
  | {
      readonly allowed: false;
      readonly rule: string;
      readonly reason: SigningRefusalReason;
      readonly message: string;
    };

const serviceAccountPrefix = "system:serviceaccount:";

/** How the requester relates to the identities it asks for. */
type RequesterRole =
  | { kind: "registrationAuthority"; rule: string; namespace: string; serviceAccount: string }
  | { kind: "serviceAccount"; rule: string; namespace: string; serviceAccount: string }
  | { kind: "user"; rule: string };

function refuse(reason: SigningRefusalReason, rule: string, message: string): SigningDecision {
  return { allowed: false, reason, rule, message: `${message} (rule ${rule})` };
}

/** `system:serviceaccount:<namespace>:<name>`, exactly; anything else is not a service account. */
export function parseServiceAccountUsername(
  username: string,
): { namespace: string; serviceAccount: string } | undefined {
  if (!username.startsWith(serviceAccountPrefix)) return undefined;
  // Two indexOf calls, not split(":"): this runs twice per certificate (policy, Event share).
  const colon = username.indexOf(":", serviceAccountPrefix.length);
  if (colon < 0 || username.indexOf(":", colon + 1) >= 0) return undefined;
  const namespace = username.slice(serviceAccountPrefix.length, colon);
  const serviceAccount = username.slice(colon + 1);
  if (!namespace || !serviceAccount) return undefined;
  return { namespace, serviceAccount };
}

function classifyRequester(
  spec: SignerSpec,
  requester: Requester,
  tenants: ReadonlySet<string>,
): RequesterRole | undefined {
  const requesters = spec.policy.requesters;
  const account = parseServiceAccountUsername(requester.username);
  if (account) {
    const reference = `${account.namespace}/${account.serviceAccount}`;
    if (requesters.registrationAuthorities.includes(reference)) {
      return {
        kind: "registrationAuthority",
        rule: "spec.policy.requesters.registrationAuthorities",
        ...account,
      };
    }
    if (requesters.serviceAccounts.includes(reference)) {
      return { kind: "serviceAccount", rule: "spec.policy.requesters.serviceAccounts", ...account };
    }
    if (requesters.tenantServiceAccounts && tenants.has(account.namespace)) {
      return { kind: "serviceAccount", rule: "spec.policy.requesters.tenantServiceAccounts", ...account };
    }
  }
  if (requesters.users.includes(requester.username))
    return { kind: "user", rule: "spec.policy.requesters.users" };
  if (requester.groups.some((group) => requesters.groups.includes(group)))
    return { kind: "user", rule: "spec.policy.requesters.groups" };
  return undefined;
}

interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

function parseSpiffeId(uri: string): SpiffeId | undefined {
  const match =
    /^spiffe:\/\/([a-z0-9._-]+)\/ns\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/sa\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(
      uri,
    );
  return match ? { trustDomain: match[1]!, namespace: match[2]!, serviceAccount: match[4]! } : undefined;
}

/** Matches a lower-cased DNS name against a pattern whose placeholders are already filled. */
function dnsNameMatches(name: string, pattern: string): boolean {
  const nameLabels = name.split(".");
  const patternLabels = pattern.split(".");
  if (nameLabels.length !== patternLabels.length) return false;
  return nameLabels.every((label, index) => {
    const patternLabel = patternLabels[index]!;
    // "*" in a pattern stands for one label; a requested "*" only matches a pattern "*" (checked as a wildcard elsewhere).
    return patternLabel === "*" ? true : label === patternLabel;
  });
}

/**
 * Compares the address as Go's crypto/x509 reads it: IPv4-mapped (::ffff:a.b.c.d) is that IPv4
 * address, IPv4-compatible (::a.b.c.d) is an IPv6 address.
 */
function ipInRange(address: string, cidr: string): boolean {
  const range = parseCidr(cidr);
  return range !== undefined && ipRangeContains(range, address);
}

/**
 * Decides a request. Checks run in the checklist's order and the first refusal wins, so the
 * message names exactly one rule.
 */
export function evaluateSigningRequest(
  spec: SignerSpec,
  facts: SigningRequestFacts,
  context: PolicyContext,
): SigningDecision {
  const { request, requester } = facts;
  const policy = spec.policy;

  if (request.requestsCertificateAuthority) {
    return refuse(
      "CertificateAuthorityRequested",
      "spec.issuance",
      "the request asks for a CA certificate (basicConstraints CA:TRUE); this signer issues leaf certificates only",
    );
  }
  const keyProblem = keyRejection(request.publicKeyDescription, spec.issuance.keyTypes);
  if (keyProblem) return refuse("KeyNotAllowed", "spec.issuance.keyTypes", keyProblem);

  const role = classifyRequester(spec, requester, context.tenantNamespaces);
  if (!role)
    return refuse(
      "RequesterNotAllowed",
      "spec.policy.requesters",
      `${requester.username} may not request certificates from ${spec.signerName}`,
    );

  const reserved = request.subject.find((attribute) => isReservedName(attribute.value));
  if (reserved) {
    return refuse(
      "ReservedSubject",
      "spec.policy.subject",
      `subject ${reserved.type}=${reserved.value} is a reserved Kubernetes name`,
    );
  }

  const sans = request.subjectAltNames;
  const total = sans.dns.length + sans.ip.length + sans.uri.length + sans.email.length;
  if (total > policy.maxSubjectAltNames) {
    return refuse(
      "TooManySubjectAltNames",
      "spec.policy.maxSubjectAltNames",
      `${total} SANs requested; at most ${policy.maxSubjectAltNames} allowed`,
    );
  }

  // Identity: the namespace (and service account) the certificate speaks for.
  let identityNamespace: string | undefined;
  let identityServiceAccount: string | undefined;
  let identity = "";
  if (sans.uri.length > 0) {
    if (!policy.spiffe)
      return refuse("UriSanNotAllowed", "spec.policy.spiffe", "URI SANs are not allowed by this signer");
    if (sans.uri.length > 1)
      return refuse("UriSanNotAllowed", "spec.policy.spiffe", "an X.509 SVID carries exactly one URI SAN");
    const uri = sans.uri[0]!;
    const spiffeId = parseSpiffeId(uri);
    if (!spiffeId)
      return refuse(
        "UriSanNotAllowed",
        "spec.policy.spiffe",
        `URI SAN ${uri} is not a spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> ID`,
      );
    if (spiffeId.trustDomain !== policy.spiffe.trustDomain) {
      return refuse(
        "SpiffeTrustDomainMismatch",
        "spec.policy.spiffe.trustDomain",
        `SPIFFE trust domain ${spiffeId.trustDomain} is not ${policy.spiffe.trustDomain}`,
      );
    }
    if (role.kind === "user") {
      return refuse(
        "SpiffeIdentityMismatch",
        role.rule,
        `${requester.username} is not a workload and may not obtain the workload identity ${uri}`,
      );
    }
    if (
      role.kind === "serviceAccount" &&
      (spiffeId.namespace !== role.namespace || spiffeId.serviceAccount !== role.serviceAccount)
    ) {
      return refuse(
        "SpiffeIdentityMismatch",
        role.rule,
        `${requester.username} may only obtain its own identity spiffe://${policy.spiffe.trustDomain}/ns/${role.namespace}/sa/${role.serviceAccount}, not ${uri}`,
      );
    }
    identityNamespace = spiffeId.namespace;
    identityServiceAccount = spiffeId.serviceAccount;
    identity = uri;
  } else if (role.kind !== "user") {
    // No SPIFFE ID: the certificate speaks for the requester's own namespace (istiod's serving certificate).
    identityNamespace = role.namespace;
    identityServiceAccount = role.serviceAccount;
  }
  if (identityNamespace !== undefined && !context.tenantNamespaces.has(identityNamespace)) {
    return refuse(
      "NamespaceNotTenant",
      "spec.policy.tenants",
      `namespace ${identityNamespace} is not a tenant of ${spec.signerName}`,
    );
  }

  const grantedDns: string[] = [];
  for (const requested of sans.dns) {
    const name = requested.toLowerCase();
    if (!isDnsNameSyntax(name))
      return refuse("InvalidDnsName", "spec.policy.dnsNames", invalidDnsNameMessage(requested));
    if (name.startsWith("*.") && !policy.allowWildcardDnsNames) {
      return refuse(
        "WildcardNotAllowed",
        "spec.policy.allowWildcardDnsNames",
        `wildcard DNS SAN ${name} is not allowed`,
      );
    }
    const patterns = policy.dnsNames
      .filter((pattern) => identityNamespace !== undefined || !pattern.includes("{"))
      .map((pattern) =>
        pattern
          .replaceAll("{namespace}", identityNamespace ?? "")
          .replaceAll("{serviceAccount}", identityServiceAccount ?? ""),
      );
    if (!patterns.some((pattern) => dnsNameMatches(name, pattern))) {
      return refuse(
        "DnsNameNotAllowed",
        "spec.policy.dnsNames",
        `DNS SAN ${name} matches no allowed pattern${identityNamespace ? ` for namespace ${identityNamespace}` : ""}`,
      );
    }
    grantedDns.push(name);
  }
  for (const address of sans.ip) {
    if (!policy.ipAddressRanges.some((cidr) => ipInRange(address, cidr))) {
      return refuse(
        "IpAddressNotAllowed",
        "spec.policy.ipAddressRanges",
        `IP SAN ${address} is not in an allowed range`,
      );
    }
  }
  for (const email of sans.email) {
    const mailbox = parsePlainMailbox(email);
    if (!mailbox) {
      return refuse("InvalidEmailAddress", "spec.policy.emailDomains", invalidEmailAddressMessage(email));
    }
    if (!policy.emailDomains.some((allowed) => allowed.toLowerCase() === mailbox.domain)) {
      return refuse(
        "EmailNotAllowed",
        "spec.policy.emailDomains",
        `email SAN ${email} is not in an allowed domain`,
      );
    }
  }

  const subject: NameAttribute[] = policy.subject.organizations.map((value) => ({ type: "O", value }));
  const requestedCommonName = request.subject.find((attribute) => attribute.type === "CN")?.value;
  if (
    requestedCommonName !== undefined &&
    requestedCommonName !== "" &&
    policy.subject.commonNameFromRequest
  ) {
    const commonName = requestedCommonName.toLowerCase();
    if (!grantedDns.includes(commonName) && !sans.uri.includes(requestedCommonName)) {
      return refuse(
        "CommonNameNotASubjectAltName",
        "spec.policy.subject.commonNameFromRequest",
        `CN ${requestedCommonName} must also be one of the certificate's SANs`,
      );
    }
    subject.push({ type: "CN", value: grantedDns.includes(commonName) ? commonName : requestedCommonName });
  }
  if (total === 0)
    return refuse(
      "NoIdentity",
      "spec.policy",
      "the request names no SAN: the certificate would identify nobody",
    );

  const { granted } = intersectUsages(facts.usages, spec.issuance.allowedUsages);
  if (granted.length === 0) {
    return refuse(
      "NoAllowedUsages",
      "spec.issuance.allowedUsages",
      `none of the requested usages (${facts.usages.join(", ")}) is allowed`,
    );
  }

  return {
    allowed: true,
    rule: role.rule,
    identity:
      identity ||
      grantedDns[0] ||
      sans.ip[0] ||
      sans.email[0] ||
      describePublicKey(request.publicKeyDescription),
    grant: {
      subject,
      subjectAltNames: { dns: grantedDns, ip: sans.ip, uri: sans.uri, email: sans.email },
      usages: granted,
      lifetime: {
        ...(facts.expirationSeconds !== undefined ? { requestedSeconds: facts.expirationSeconds } : {}),
        defaultSeconds: spec.issuance.defaultDurationSeconds,
        maximumSeconds: spec.issuance.maxDurationSeconds,
      },
      includeRoot: spec.issuance.includeRoot,
    },
  };
}

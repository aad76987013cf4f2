/**
 * Which certificate, if any, a Signer grants a PodCertificateRequest, and its validity window.
 * Pure: the clock, the randomness that spreads refreshes and the CA chain's validity come in as
 * facts. The identity is built from the request's fields the API server verified (namespace, pod,
 * service account), never from anything the pod controls (spec.unverifiedUserAnnotations). The
 * lifetime rules are the API's: at least 1 hour, at most spec.maxExpirationSeconds, notBefore
 * within 5 minutes of the API server's clock, beginRefreshAt at least 10 minutes inside the window.
 */
import type { PodCertificateDenialReason, PodCertificateFailureReason } from "../api/reasons.js";
import type { SignerSpec } from "../api/signer.js";
import type { KubernetesUsage } from "../api/usages.js";
import type { PublicKeyDescription } from "../pki/request-key.js";
import type { IssuanceGrant, ValidityWindow } from "../pki/issuance.js";
import { keyRejection, type KeyAllowList } from "../pki/key-allow-list.js";
import { intersectUsages } from "../pki/key-usages.js";
import type { PodKeyType } from "../pki/pod-certificate-key.js";
import { isDnsNameSyntax } from "./subject-alternative-name-syntax.js";

export interface PodCertificateFacts {
  readonly namespace: string;
  readonly podName: string;
  readonly serviceAccountName: string;
  readonly maxExpirationSeconds: number;
  /** Keys of spec.unverifiedUserAnnotations: none is recognized. */
  readonly userAnnotationKeys: readonly string[];
  readonly key: {
    readonly keyType: PodKeyType | undefined;
    readonly description: string;
    readonly publicKeyDescription: PublicKeyDescription | undefined;
    readonly proofVerified: boolean;
  };
}

export interface PodCertificateContext {
  readonly tenantNamespaces: ReadonlySet<string>;
  readonly now: Date;
  /** The signing certificate's notBefore and the whole chain's earliest notAfter. */
  readonly chain: ValidityWindow;
  /** Uniform in [0, 1): where in the refresh band this certificate's beginRefreshAt falls. */
  readonly refreshFraction: number;
}

export interface PodCertificateWindow extends ValidityWindow {
  readonly beginRefreshAt: Date;
}

export type PodCertificateDecision =
  | {
      readonly outcome: "issue";
      readonly rule: string;
      readonly identity: string;
      readonly grant: IssuanceGrant;
      readonly window: PodCertificateWindow;
    }
  | {
      readonly outcome: "refuse";
      readonly condition: "Denied" | "Failed";
      readonly reason: PodCertificateDenialReason | PodCertificateFailureReason;
      readonly rule: string;
      readonly message: string;
    }
  /** The CA chain leaves no room for a 1-hour leaf: transient, until the operator renews the CA. */
  | {
      readonly outcome: "wait";
      readonly reason: "CertificateAuthorityExpiringSoon";
      readonly message: string;
    };

/** The API's minimum leaf lifetime. */
const minimumPodCertificateLifetimeSeconds = 3600;
/** NotBefore this far back (clock skew); the API server wants it within 5 minutes of its clock. */
const podCertificateBackdateSeconds = 60;
/** beginRefreshAt falls in this band of the lifetime, jittered so a fleet does not refresh at once. */
const refreshBand = { from: 0.5, to: 0.8 } as const;
/** The API's margin: beginRefreshAt at least this long after notBefore and before notAfter. */
const refreshMarginSeconds = 600;

/** What a workload certificate is for; key encipherment only for RSA keys. */
const workloadUsages: readonly KubernetesUsage[] = [
  "digital signature",
  "key encipherment",
  "server auth",
  "client auth",
];

/** The API's key types a Signer's spec.issuance.keyTypes accepts (Ed25519 and P-521: none yet). */
export function podKeyTypesAllowed(keyTypes: KeyAllowList): PodKeyType[] {
  const allowed: PodKeyType[] = [];
  if (keyTypes.ecdsaCurves.includes("P-256")) allowed.push("ECDSAP256");
  if (keyTypes.ecdsaCurves.includes("P-384")) allowed.push("ECDSAP384");
  for (const bits of [3072, 4096] as const)
    if (keyTypes.rsaMinimumBits <= bits && bits <= keyTypes.rsaMaximumBits) allowed.push(`RSA${bits}`);
  return allowed;
}

function deny(reason: PodCertificateDenialReason, rule: string, message: string): PodCertificateDecision {
  return { outcome: "refuse", condition: "Denied", reason, rule, message: `${message} (rule ${rule})` };
}

/**
 * The tenancy rule alone (it needs only the namespace): the reconciler applies it before anything
 * about the Signer's state could reach the request's namespace in an Event.
 */
export function podCertificateTenancy(
  spec: SignerSpec,
  namespace: string,
  tenantNamespaces: ReadonlySet<string>,
): PodCertificateDecision | undefined {
  if (tenantNamespaces.has(namespace)) return undefined;
  return deny(
    "NamespaceNotTenant",
    "spec.policy.tenants",
    `namespace ${namespace} is not a tenant of ${spec.signerName}`,
  );
}

const secondMs = 1000;
const truncateToSecond = (milliseconds: number): number => Math.floor(milliseconds / secondMs) * secondMs;

export function decidePodCertificate(
  spec: SignerSpec,
  facts: PodCertificateFacts,
  context: PodCertificateContext,
): PodCertificateDecision {
  const podCertificates = spec.podCertificates;
  const trustDomain = spec.policy.spiffe?.trustDomain;
  // parseSignerSpec guarantees both; a caller that skipped it gets a refusal, not a certificate.
  if (!podCertificates || !trustDomain)
    return deny(
      "MalformedRequest",
      "spec.podCertificates",
      `${spec.signerName} does not sign pod certificates`,
    );

  if (facts.userAnnotationKeys.length > 0) {
    return deny(
      "InvalidUnverifiedUserAnnotations",
      "spec.podCertificates",
      `${spec.signerName} recognizes no spec.unverifiedUserAnnotations keys; got ${facts.userAnnotationKeys
        .slice(0, 5)
        .join(", ")}`,
    );
  }

  const { key } = facts;
  const allowed = podKeyTypesAllowed(spec.issuance.keyTypes);
  const keyProblem =
    key.keyType === undefined || !allowed.includes(key.keyType)
      ? `${key.description} is not accepted`
      : key.publicKeyDescription && keyRejection(key.publicKeyDescription, spec.issuance.keyTypes);
  if (keyProblem) {
    const suggestion = allowed.length
      ? `; use keyType ${allowed[0]} in the podCertificate volume (accepted: ${allowed.join(", ")})`
      : "; it accepts none of the API's key types";
    return deny(
      "UnsupportedKeyType",
      "spec.issuance.keyTypes",
      `${keyProblem} by ${spec.signerName}${suggestion}`,
    );
  }
  if (!key.proofVerified) {
    return deny(
      "InvalidProofOfPossession",
      "proof of possession",
      "the request's signature (stubPKCS10Request, or proofOfPossession over the pod UID) does not verify with its public key",
    );
  }

  const tenancy = podCertificateTenancy(spec, facts.namespace, context.tenantNamespaces);
  if (tenancy) return tenancy;

  const maximumSeconds = Math.min(facts.maxExpirationSeconds, spec.issuance.maxDurationSeconds);
  if (spec.issuance.maxDurationSeconds < minimumPodCertificateLifetimeSeconds) {
    return {
      outcome: "refuse",
      condition: "Failed",
      reason: "LifetimeUnsatisfiable",
      rule: "spec.issuance.maxDuration",
      message: `${spec.signerName} issues at most ${spec.issuance.maxDurationSeconds}s, below the API's minimum of ${minimumPodCertificateLifetimeSeconds}s for pod certificates (rule spec.issuance.maxDuration)`,
    };
  }

  const dns: string[] = [];
  for (const template of podCertificates.dnsNames) {
    const values = {
      namespace: facts.namespace,
      serviceAccount: facts.serviceAccountName,
      podName: facts.podName,
    };
    // A value with a dot would add labels the template did not ask for (pod and service account
    // names may be DNS subdomains): only single labels are filled in.
    const multiLabel = Object.entries(values).find(
      ([placeholder, value]) =>
        template.includes(`{${placeholder}}`) && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value),
    );
    const name = template
      .replaceAll("{namespace}", values.namespace)
      .replaceAll("{serviceAccount}", values.serviceAccount)
      .replaceAll("{podName}", values.podName);
    if (multiLabel || !isDnsNameSyntax(name)) {
      return deny(
        "InvalidDnsName",
        "spec.podCertificates.dnsNames",
        multiLabel
          ? `{${multiLabel[0]}} is ${multiLabel[1]}, not a single DNS label, in ${template}`
          : `${name} (from ${template}) is not a DNS name`,
      );
    }
    if (!dns.includes(name)) dns.push(name);
  }

  const requestedUsages = workloadUsages.filter(
    (usage) => usage !== "key encipherment" || key.publicKeyDescription?.algorithm === "RSA",
  );
  const { granted } = intersectUsages(requestedUsages, spec.issuance.allowedUsages);
  if (granted.length === 0) {
    return deny(
      "NoAllowedUsages",
      "spec.issuance.allowedUsages",
      `none of ${requestedUsages.join(", ")} is allowed`,
    );
  }

  const notBefore = new Date(
    Math.max(
      truncateToSecond(context.now.getTime() - podCertificateBackdateSeconds * secondMs),
      context.chain.notBefore.getTime(),
    ),
  );
  const notAfter = new Date(
    Math.min(
      notBefore.getTime() + maximumSeconds * secondMs,
      truncateToSecond(context.chain.notAfter.getTime()),
    ),
  );
  const lifetimeSeconds = (notAfter.getTime() - notBefore.getTime()) / secondMs;
  if (lifetimeSeconds < minimumPodCertificateLifetimeSeconds) {
    return {
      outcome: "wait",
      reason: "CertificateAuthorityExpiringSoon",
      message: `the CA chain expires at ${context.chain.notAfter.toISOString()}, leaving less than the ${minimumPodCertificateLifetimeSeconds}s a pod certificate must live; renew the CA`,
    };
  }
  const fraction =
    refreshBand.from +
    (refreshBand.to - refreshBand.from) * Math.min(Math.max(context.refreshFraction, 0), 1);
  const refreshAfterSeconds = Math.min(
    Math.max(Math.round(lifetimeSeconds * fraction), refreshMarginSeconds),
    lifetimeSeconds - refreshMarginSeconds,
  );
  const spiffeId = `spiffe://${trustDomain}/ns/${facts.namespace}/sa/${facts.serviceAccountName}`;
  return {
    outcome: "issue",
    rule: "spec.podCertificates",
    identity: spiffeId,
    grant: {
      subject: spec.policy.subject.organizations.map((value) => ({ type: "O", value })),
      subjectAltNames: { dns, ip: [], uri: [spiffeId], email: [] },
      usages: granted,
      // The window below decides the lifetime; these only describe the Signer's bounds.
      lifetime: {
        defaultSeconds: maximumSeconds,
        maximumSeconds,
      },
      includeRoot: spec.issuance.includeRoot,
    },
    window: {
      notBefore,
      notAfter,
      beginRefreshAt: new Date(notBefore.getTime() + refreshAfterSeconds * secondMs),
    },
  };
}

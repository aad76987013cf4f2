/**
 * The Signer custom resource (signers.csr-signer.io/v1alpha1, cluster-scoped) as TypeScript types:
 * the spec after validation and defaulting (src/policy/signer-spec.ts parses it), the status the
 * controller writes, and the object as the API serves it. manifests/crd holds its OpenAPI schema.
 * Types and constants only: every layer (pki, policy, kube, controller, bundle, cli) may import it.
 */
import type { SignerConditionReason } from "./reasons.js";
import type { KubernetesUsage } from "./usages.js";

/** The API group, version and resource name of Signers: /apis/<group>/<version>/<plural>. */
export const signerApiGroup = "csr-signer.io";
export const signerApiVersion = "v1alpha1";
export const signerPlural = "signers";

export interface SignerSpec {
  /** The spec.signerName of CSRs this Signer handles, e.g. example.com/foo. */
  signerName: string;
  certificateAuthority: CertificateAuthoritySource;
  issuance: IssuanceSpec;
  policy: PolicySpec;
  approval: ApprovalSpec;
  trustBundle: TrustBundleSpec;
  /** PodCertificateRequests (certificates.k8s.io/v1beta1) for this signer name; absent: never touched. */
  podCertificates?: PodCertificatesSpec;
}

/**
 * Signing PodCertificateRequests: the identity comes from the request's fields the API server
 * verified (namespace, pod, service account), never from anything the pod controls. The SPIFFE ID
 * uses spec.policy.spiffe.trustDomain; lifetimes are capped by spec.issuance.maxDuration.
 */
export interface PodCertificatesSpec {
  /** DNS SANs to add; {namespace}, {serviceAccount} and {podName} are replaced (no wildcards). */
  dnsNames: string[];
}

/**
 * Where the Signer's trust bundle (the roots its clients must trust) is published, and how root
 * rotations are paced. The overlap is never shorter than the longest leaf the Signer issues.
 */
export interface TrustBundleSpec {
  /** A ConfigMap in every tenant namespace (names plus selector); absent: none. */
  configMap?: { name: string; key: string };
  /** A ClusterTrustBundle for the signer name, when the API serves certificates.k8s.io/v1beta1. */
  clusterTrustBundle: boolean;
  /** More roots to trust (PEM), e.g. a partner's. */
  extraRootsPem: string;
  /** How long a root stays in the bundle after the CA material dropped it. */
  overlapSeconds: number;
  /** A new root must have been in the published bundle this long before it may sign. */
  minimumRootPublicationSeconds: number;
  /** Condition CertificateAuthorityExpiring when a CA certificate expires within this. */
  expiryWarningSeconds: number;
}

/**
 * Approval of this signer's CSRs. Manual: someone else approves (istiod does for its CSRs).
 * Automatic: a CSR that passes the policy is approved; one that does not is denied (or left
 * pending). With requireRbacVerb the requester must also hold that verb on
 * certificates.k8s.io/signers/<signerName> (or <domain>/*), in its own namespace for service accounts, so tenants
 * grant access with a Role and RoleBinding of their own.
 */
export interface ApprovalSpec {
  mode: "Manual" | "Automatic";
  onRefusal: "Deny" | "LeavePending";
  requireRbacVerb?: string;
}

/**
 * Exactly one of secretName or path (mounted files). With pkcs11 the key stays in a token and those
 * carry the certificate chain only; keyPassphrase opens an encrypted key file (ENCRYPTED PRIVATE KEY).
 * Every Secret named here (secretName, the PIN's, the passphrase's) is in secretNamespace, else in
 * the controller's namespace; a PIN's Secret never is in secretNamespace (parseSignerSpec refuses it).
 */
export interface CertificateAuthoritySource {
  secretName?: string;
  path?: string;
  pkcs11?: Pkcs11KeySource;
  keyPassphrase?: SecretValueSource;
  /**
   * The Signer's only tenant namespace (spec.policy.tenants.namespaces is exactly it, no selector):
   * that tenant holds the CA key (whoever reads Secrets there can sign anything under the CA),
   * cert-manager's Issuer to the default's ClusterIssuer.
   */
  secretNamespace?: string;
}

/**
 * A secret text read by the controller on every rebuild of the Signer (so a change is picked up):
 * a mounted file (Vault Agent, the secrets-store CSI driver) or a key of a Secret in the
 * certificateAuthority's Secret namespace. The value never appears in logs, Events, status or errors.
 */
export type SecretValueSource = { file: string } | { secret: { name: string; key: string } };

/** The CA key inside a PKCS#11 token, found by token (label or slot) and key (label or CKA_ID). */
export interface Pkcs11KeySource {
  /** Absolute path of the PKCS#11 module (.so) in the controller's container. */
  module: string;
  tokenLabel?: string;
  slot?: number;
  keyLabel?: string;
  /** CKA_ID as lower-case hex. */
  keyId?: string;
  /** The user PIN. */
  pin: SecretValueSource;
}

export interface IssuanceSpec {
  defaultDurationSeconds: number;
  maxDurationSeconds: number;
  allowedUsages: KubernetesUsage[];
  keyTypes: { rsaMinimumBits: number; rsaMaximumBits: number; ecdsaCurves: string[] };
  includeRoot: boolean;
}

export interface PolicySpec {
  /** Who may ask. */
  requesters: {
    users: string[];
    groups: string[];
    /** "namespace/name": these service accounts may ask for their own identity. */
    serviceAccounts: string[];
    /** Any service account of a tenant namespace may ask for its own identity. */
    tenantServiceAccounts: boolean;
    /** "namespace/name": registration authorities (istiod) asking on behalf of tenant workloads. */
    registrationAuthorities: string[];
  };
  /** The Signer's tenant namespaces: these names plus those the selector matches. */
  tenants: { namespaces: string[]; namespaceSelector?: LabelSelector };
  /** SPIFFE URI SANs spiffe://<trustDomain>/ns/<ns>/sa/<sa>; absent: no URI SANs at all. */
  spiffe?: { trustDomain: string };
  /** DNS SAN patterns; {namespace} and {serviceAccount} are replaced, "*" matches one label. */
  dnsNames: string[];
  allowWildcardDnsNames: boolean;
  /** CIDRs IP SANs must fall in; empty: no IP SANs. */
  ipAddressRanges: string[];
  /** Domains email SANs must be in; empty: no email SANs. */
  emailDomains: string[];
  maxSubjectAltNames: number;
  subject: SubjectTemplate;
}

/** The subject of issued certificates: fixed organizations, and a CN only when asked and allowed. */
export interface SubjectTemplate {
  organizations: string[];
  /** Copy the requested CN when it equals one of the granted SANs; otherwise no CN. */
  commonNameFromRequest: boolean;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
    values?: string[];
  }[];
}

/** A Signer as the API serves it (list, watch, get); spec is validated by parseSignerSpec. */
export interface SignerObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
  };
  spec?: unknown;
  status?: SignerStatus;
}

/** One of Ready, Degraded and CertificateAuthorityExpiring. */
export interface SignerCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: SignerConditionReason;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface CertificateSummary {
  subject: string;
  notAfter: string;
  fingerprintSha256: string;
}

export interface SignerStatus {
  observedGeneration?: number;
  conditions?: SignerCondition[];
  certificateAuthority?: CertificateSummary & { issuer: string; roots: CertificateSummary[] };
  issuedCount?: number;
  failedCount?: number;
  trustBundle?: { roots: RecordedRoot[] };
  /**
   * While the CA key is in a PKCS#11 token and no certificate for it is loaded (none yet, or one
   * for another key): a PKCS#10 request signed by the token key, for the operator to take to the
   * root CA. Gone once a certificate matching the key signs (null removes it in a merge patch).
   */
  pendingCertificateRequest?: PendingCertificateRequest | null;
}

export interface PendingCertificateRequest {
  /** The PKCS#10 request as PEM (CERTIFICATE REQUEST). */
  pem: string;
  /** The key it was made with (type and token, never key material). */
  key: string;
  /** SHA-256 of the key's SubjectPublicKeyInfo, hex: what the returned certificate must carry. */
  publicKeyFingerprintSha256: string;
}

/**
 * A root in status.trustBundle.roots: when it was first published everywhere and when the CA
 * material dropped it. Kept in status so rotation pacing holds across restarts.
 */
export interface RecordedRoot {
  fingerprintSha256: string;
  subject: string;
  notAfter: string;
  pem: string;
  /** When a bundle holding it was first written everywhere; absent while not yet published. */
  firstPublished?: string;
  /** When the CA material stopped listing it. */
  retiredAt?: string;
}

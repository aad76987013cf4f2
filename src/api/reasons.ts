/**
 * Every CamelCase reason csr-signer writes: in a CSR's Failed or Denied condition, in a Signer's
 * conditions, and in Events. Each reason is spelled once, here; the groups below say which
 * decision may give it, and the code that decides is typed with its group, so the compiler refuses
 * a reason that is not listed. Groups that share a reason spread a shared list.
 */

/** The requested key: type, size or curve outside what the signer accepts. */
const keyReasons = ["KeyNotAllowed"] as const;

/** A subject attribute that is a reserved Kubernetes name (system:..., kubeadm:cluster-admins). */
const reservedSubjectReasons = ["ReservedSubject"] as const;

/** A malformed SAN, before any policy (src/policy/subject-alternative-name-syntax.ts). */
const dnsNameSyntaxReasons = ["InvalidDnsName"] as const;
export const subjectAltNameSyntaxReasons = [
  ...dnsNameSyntaxReasons,
  "InvalidIpAddress",
  "InvalidEmailAddress",
] as const;
export type SubjectAltNameSyntaxReason = (typeof subjectAltNameSyntaxReasons)[number];

/** A well-formed SAN outside the names or ranges the rule allows. */
const subjectAltNameNotAllowedReasons = ["DnsNameNotAllowed", "IpAddressNotAllowed"] as const;

/** Reasons shared with PodCertificateRequest denials. */
const malformedRequestReasons = ["MalformedRequest"] as const;
const tenancyReasons = ["NamespaceNotTenant"] as const;
const usageReasons = ["NoAllowedUsages"] as const;

/** A request refused for what it is, before any policy (CertificateRequestError, src/pki). */
export const certificateRequestRejectionReasons = [
  "RequestTooLarge",
  ...malformedRequestReasons,
  "UnsupportedSignatureAlgorithm",
  "InvalidSignature",
  "DuplicateExtension",
  "DuplicateExtensionRequest",
  "MultipleCommonNames",
  "UnsupportedSubjectAltName",
  ...keyReasons,
] as const;
export type CertificateRequestRejectionReason = (typeof certificateRequestRejectionReasons)[number];

/** A Signer's policy refused the request (src/policy/signing-policy.ts); the message names the spec rule. */
export const signingRefusalReasons = [
  "CertificateAuthorityRequested",
  "RequesterNotAllowed",
  "TooManySubjectAltNames",
  "UriSanNotAllowed",
  "SpiffeTrustDomainMismatch",
  "SpiffeIdentityMismatch",
  ...tenancyReasons,
  "WildcardNotAllowed",
  "EmailNotAllowed",
  "CommonNameNotASubjectAltName",
  "NoIdentity",
  ...usageReasons,
  ...keyReasons,
  ...reservedSubjectReasons,
  ...subjectAltNameSyntaxReasons,
  ...subjectAltNameNotAllowedReasons,
] as const;
export type SigningRefusalReason = (typeof signingRefusalReasons)[number];

/** Why a CSR gets a Failed condition from the signer: the request itself, or the Signer's policy. */
export type CsrFailureReason = CertificateRequestRejectionReason | SigningRefusalReason;

/** `csr-signer sign` refuses what the controller's policy would, without a Signer (SignRefusedError). */
export type OfflineSignRefusalReason = (typeof reservedSubjectReasons)[number] | SubjectAltNameSyntaxReason;

/** kubelet-serving approval denied the request (src/policy/kubelet-approval.ts); the message names the check. */
export const kubeletServingDenialReasons = [
  "RequesterNotANode",
  "CommonNameMismatch",
  "OrganizationMismatch",
  "UnexpectedSubjectAttribute",
  "UsagesNotAllowed",
  "UnexpectedSanType",
  "NoSubjectAltNames",
  "ClusterServiceName",
  "ClusterDomainName",
  "SpecialPurposeIpAddress",
  "ClusterServiceIpAddress",
  "PodIpAddress",
  "SanOfAnotherNode",
  "NodeNotFound",
  "SanNotNodeAddress",
  "ExpirationTooLong",
  ...keyReasons,
  ...subjectAltNameSyntaxReasons,
  ...subjectAltNameNotAllowedReasons,
] as const;

/** A request automatic approval leaves pending until the operator configures something (Warning Event). */
export const approvalPendingReasons = ["KubeletServingNotConfigured"] as const;
export type ApprovalPendingReason = (typeof approvalPendingReasons)[number];

/** Approval conditions and their Events besides a policy's refusals (src/controller/approver.ts). */
export const approvalReasons = ["AutoApproved", "RequesterNotAuthorized"] as const;

/** Why automatic approval denies a request: kubelet-serving checks, the request itself, or a Signer's policy. */
export type ApprovalDenialReason =
  | (typeof kubeletServingDenialReasons)[number]
  | CertificateRequestRejectionReason
  | SigningRefusalReason
  | (typeof approvalReasons)[number];

/**
 * What is wrong with CA material (CertificateAuthorityError, src/pki). A Signer reports it as
 * CertificateAuthority<problem>, e.g. CertificateAuthorityExpiringSoon.
 */
export const certificateAuthorityProblems = [
  "MissingFile",
  "UnknownLayout",
  "MalformedCertificate",
  "MalformedKey",
  "KeyMismatch",
  "NotACertificateAuthority",
  "ChainDoesNotVerify",
  "Expired",
  /** The chain expires sooner than the minimum leaf lifetime: issuing would mint a nearly dead leaf. */
  "ExpiringSoon",
  "NotYetValid",
  "TooLarge",
  /** A key file next to a chain whose key is in a PKCS#11 token: which key signs would be ambiguous. */
  "UnexpectedKeyFile",
  /** An RSA CA key of another size than 2048, 3072 or 4096 bits (src/pki/signing-key.ts). */
  "UnsupportedKeySize",
  /** More roots (4) or chain certificates (8) in one material than accepted (src/pki/certificate-authority.ts). */
  "TooManyCertificates",
] as const;
export type CertificateAuthorityProblem = (typeof certificateAuthorityProblems)[number];

/** Why a Signer's PKCS#11 key cannot be used (src/pki/pkcs11 says which for the token's own). */
export const pkcs11KeyReasons = [
  "Pkcs11ModuleLoadFailed",
  "Pkcs11TokenNotFound",
  "Pkcs11PinIncorrect",
  "Pkcs11KeyNotFound",
  "Pkcs11KeyUnsupported",
  "Pkcs11TokenUnavailable",
  "Pkcs11SigningFailed",
  /** The module did not answer a call in time (a hung or unreachable HSM); retried with backoff. */
  "Pkcs11Timeout",
  /** The PIN file or Secret key is missing, empty or too large (the controller never got to the token). */
  "Pkcs11PinUnavailable",
  /** The token is being opened (a first open, or after a PIN change or a failure). */
  "Pkcs11KeyOpening",
] as const;

/**
 * Reasons of a Signer's conditions (Ready, Degraded, CertificateAuthorityExpiring), which are also
 * the reasons a CSR of that Signer waits for (SignerNotReady Events, retries).
 */
export const signerConditionReasons = [
  "Ready",
  "AsExpected",
  "ExpiresSoon",
  "NotReady",
  "InvalidSpec",
  "DuplicateSignerName",
  "SignerBuildFailed",
  "InvalidExtraRoots",
  "InvalidTrustBundleStatus",
  "TrustBundlePublicationFailed",
  "RootNotYetPublished",
  "CertificateAuthorityMissing",
  "CertificateAuthorityUnreadable",
  /** The API server refused a certificate write: reported on Ready until a write succeeds. */
  "CertificateWriteFailed",
  /** The key is in the token, the certificate for it not yet loaded: status.pendingCertificateRequest. */
  "WaitingForCertificate",
  /** keyPassphrase is set but its file or Secret key cannot be read. */
  "KeyPassphraseUnavailable",
  ...pkcs11KeyReasons,
  /** The API server refused an Automatic Signer's approval write (403: the approve verb is missing). */
  "ApprovalWriteFailed",
  /** Condition RootPublicationHoldShort: spec.trustBundle.minimumRootPublication below the safe default. */
  "ShorterThanDefault",
  /** A Secret in certificateAuthority.secretNamespace the controller may not list or watch (the Role is missing). */
  "SecretAccessForbidden",
  /** A Secret in certificateAuthority.secretNamespace whose first list has not answered yet. */
  "SecretNotYetListed",
  /**
   * The encrypted CA key file is being decrypted (PBKDF2 off the event loop), or waits for one of the
   * 2 decryption slots; no CA signed before.
   */
  "KeyDecrypting",
  /** New CA material's roots are not published: the Signer already records the most roots (16) it may. */
  "TooManyRecordedRoots",
  /** Its roots left out of an --istio-mesh-config ConfigMap: with them it would pass the size budget. */
  "IstioMeshConfigTooLarge",
] as const;
export type SignerConditionReason =
  (typeof signerConditionReasons)[number] | `CertificateAuthority${CertificateAuthorityProblem}`;

/** Events on a CSR besides its refusals: progress, and a Signer that cannot sign yet. */
export const csrEventReasons = ["WaitingApproval", "Issued", "SignerNotReady"] as const;

/**
 * Normal Events on a Signer for what changed it (src/controller/signer-events.ts); its Warning Events
 * carry the reason of the condition that went bad.
 */
export const signerEventReasons = [
  "CertificateAuthorityLoaded",
  "CertificateAuthorityRotated",
  "RootPublished",
  "RootRetired",
  /** Ready went back to True, or Degraded back to False. */
  "Recovered",
] as const;
export type SignerEventReason = (typeof signerEventReasons)[number];

/**
 * Why a PodCertificateRequest gets a Denied condition (src/policy/pod-certificate-policy.ts).
 * UnsupportedKeyType and InvalidUnverifiedUserAnnotations are the API's own reasons.
 */
export const podCertificateDenialReasons = [
  "UnsupportedKeyType",
  "InvalidUnverifiedUserAnnotations",
  "InvalidProofOfPossession",
  ...malformedRequestReasons,
  ...tenancyReasons,
  ...dnsNameSyntaxReasons,
  ...usageReasons,
] as const;
export type PodCertificateDenialReason = (typeof podCertificateDenialReasons)[number];

/** Why a PodCertificateRequest gets a Failed condition: the Signer cannot meet the API's lifetime rules. */
export const podCertificateFailureReasons = ["LifetimeUnsatisfiable"] as const;
export type PodCertificateFailureReason = (typeof podCertificateFailureReasons)[number];

/** Every reason above, CertificateAuthority<problem> spelled out: for checks over all of them. */
export const allReasons: readonly string[] = [
  ...new Set<string>([
    ...certificateRequestRejectionReasons,
    ...signingRefusalReasons,
    ...kubeletServingDenialReasons,
    ...approvalPendingReasons,
    ...approvalReasons,
    ...signerConditionReasons,
    ...certificateAuthorityProblems.map((problem) => `CertificateAuthority${problem}`),
    ...csrEventReasons,
    ...signerEventReasons,
    ...podCertificateDenialReasons,
    ...podCertificateFailureReasons,
  ]),
];

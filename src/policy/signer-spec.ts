/**
 * Validation of a Signer's spec (the types are in src/api/signer.ts) from untyped JSON, with a
 * field path in every error.
 * The CRD's OpenAPI schema (manifests/crd) refuses most bad specs at admission; this
 * validation catches what a schema cannot (durations, CIDRs, patterns, cross-field rules) and
 * is what the controller trusts.
 */
import { parseCidr } from "./ip-addresses.js";
import { isKubernetesUsage, type KubernetesUsage } from "../api/usages.js";
import { largestAcceptedRsaBits } from "../pki/key-allow-list.js";
import { usagesNeverIssuedToLeaves } from "../pki/key-usages.js";
import type { PodCertificatesSpec, SignerSpec, TrustBundleSpec } from "../api/signer.js";
import {
  checkSecretNamespaceIsTenant,
  parseCertificateAuthoritySource,
} from "./certificate-authority-spec.js";
import { isReservedName, reservedConfigMapNames } from "./reserved-names.js";
import { SignerSpecError } from "./signer-spec-error.js";
import { boolean, duration, integer, object, stringList } from "./spec-fields.js";
import { parseLabelSelector } from "./label-selector.js";

export { SignerSpecError };

/** Defaults, as an operator would expect for a workload signer. */
const signerDefaults = {
  defaultDuration: "24h",
  maxDuration: "720h",
  allowedUsages: ["digital signature", "key encipherment", "server auth", "client auth"] as KubernetesUsage[],
  keyTypes: { rsaMinimumBits: 2048, rsaMaximumBits: largestAcceptedRsaBits, ecdsaCurves: ["P-256", "P-384"] },
  maxSubjectAltNames: 10,
};

/**
 * spec.trustBundle.minimumRootPublication when unset: 10 minutes. A new root must reach every client
 * before a certificate under it does, and the slowest path from our ConfigMap to a client is two
 * kubelet volume refreshes in a row: istiod reads meshConfig (caCertificates) from its mounted
 * ConfigMap, and workloads read istio-ca-root-cert or our bundle ConfigMap as projected volumes. One
 * refresh takes up to kubelet syncFrequency (default 1m) with 0.5 jitter (pod_workers.go
 * workerResyncIntervalJitterFactor) plus the ConfigMap cache TTL (configmap_manager.go defaultTTL
 * 1m, with the Cache strategy; the default Watch strategy adds only watch latency), so 2.5 min; two in a row 5 min; doubled for slow nodes and istiod's push debounce. The only
 * cost is that the previous CA signs a little longer. See README "Root rotation" for the sources.
 */
export const defaultMinimumRootPublicationSeconds = 600;

const signerNamePattern =
  /^(?=.{1,571}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?(\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)*$/;
const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const serviceAccountRefPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Validates and defaults a Signer spec from the API object. Throws SignerSpecError naming the field. */
export function parseSignerSpec(raw: unknown, objectName = "signer"): SignerSpec {
  const spec = object(raw, "spec");
  const signerName = spec.signerName;
  if (typeof signerName !== "string" || !signerNamePattern.test(signerName)) {
    throw new SignerSpecError(
      "spec.signerName",
      "must be <domain>/<path> with a DNS domain of at least two labels, e.g. example.com/foo",
    );
  }
  if (signerName.startsWith("kubernetes.io/")) {
    throw new SignerSpecError(
      "spec.signerName",
      "kubernetes.io/ signer names belong to kube-controller-manager",
    );
  }

  const certificateAuthority = parseCertificateAuthoritySource(spec.certificateAuthority);

  const issuance = object(spec.issuance, "spec.issuance", true);
  const defaultDurationSeconds = duration(
    issuance.defaultDuration ?? signerDefaults.defaultDuration,
    "spec.issuance.defaultDuration",
  );
  const maxDurationSeconds = duration(
    issuance.maxDuration ?? signerDefaults.maxDuration,
    "spec.issuance.maxDuration",
  );
  if (defaultDurationSeconds < 600)
    throw new SignerSpecError("spec.issuance.defaultDuration", "must be at least 10m");
  if (maxDurationSeconds < defaultDurationSeconds) {
    throw new SignerSpecError("spec.issuance.maxDuration", "must be at least spec.issuance.defaultDuration");
  }
  const allowedUsages = stringList(
    issuance.allowedUsages ?? signerDefaults.allowedUsages,
    "spec.issuance.allowedUsages",
    (usage, field) => {
      if (!isKubernetesUsage(usage)) throw new SignerSpecError(field, `unknown usage "${usage}"`);
      if (usagesNeverIssuedToLeaves.includes(usage))
        throw new SignerSpecError(field, `"${usage}" is never issued to leaf certificates`);
    },
  ) as KubernetesUsage[];
  const keyTypesRaw = object(issuance.keyTypes, "spec.issuance.keyTypes", true);
  const keyTypes = {
    rsaMinimumBits: integer(
      keyTypesRaw.rsaMinimumBits,
      "spec.issuance.keyTypes.rsaMinimumBits",
      2048,
      2048,
      largestAcceptedRsaBits,
    ),
    rsaMaximumBits: integer(
      keyTypesRaw.rsaMaximumBits,
      "spec.issuance.keyTypes.rsaMaximumBits",
      largestAcceptedRsaBits,
      2048,
      largestAcceptedRsaBits,
    ),
    ecdsaCurves: stringList(
      keyTypesRaw.ecdsaCurves ?? signerDefaults.keyTypes.ecdsaCurves,
      "spec.issuance.keyTypes.ecdsaCurves",
      (curve, field) => {
        if (curve !== "P-256" && curve !== "P-384")
          throw new SignerSpecError(field, "must be P-256 or P-384");
      },
    ),
  };
  if (keyTypes.rsaMaximumBits < keyTypes.rsaMinimumBits) {
    throw new SignerSpecError("spec.issuance.keyTypes.rsaMaximumBits", "must be at least rsaMinimumBits");
  }

  const policy = object(spec.policy, "spec.policy");
  const requesters = object(policy.requesters, "spec.policy.requesters", true);
  const serviceAccountRef = (item: string, field: string): void => {
    if (!serviceAccountRefPattern.test(item))
      throw new SignerSpecError(field, `must be "namespace/name", got "${item}"`);
  };
  const tenants = object(policy.tenants, "spec.policy.tenants", true);
  const namespaceSelector =
    tenants.namespaceSelector === undefined
      ? undefined
      : parseLabelSelector(tenants.namespaceSelector, "spec.policy.tenants.namespaceSelector");
  const spiffeRaw = policy.spiffe === undefined ? undefined : object(policy.spiffe, "spec.policy.spiffe");
  if (
    spiffeRaw &&
    (typeof spiffeRaw.trustDomain !== "string" || !/^[a-z0-9._-]+$/.test(spiffeRaw.trustDomain))
  ) {
    throw new SignerSpecError(
      "spec.policy.spiffe.trustDomain",
      "must be a trust domain such as cluster.local",
    );
  }
  const subject = object(policy.subject, "spec.policy.subject", true);
  const bundleRaw = object(spec.trustBundle, "spec.trustBundle", true);
  const configMapRaw =
    bundleRaw.configMap === undefined ? {} : object(bundleRaw.configMap, "spec.trustBundle.configMap");
  const configMapEnabled = boolean(configMapRaw.enabled, "spec.trustBundle.configMap.enabled", true);
  const configMapName = configMapRaw.name ?? `${objectName}-trust-bundle`;
  if (typeof configMapName !== "string" || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(configMapName)) {
    throw new SignerSpecError("spec.trustBundle.configMap.name", "must be a ConfigMap name");
  }
  if (reservedConfigMapNames.includes(configMapName)) {
    throw new SignerSpecError(
      "spec.trustBundle.configMap.name",
      `${configMapName} belongs to Kubernetes or Istio; choose another name`,
    );
  }
  const configMapKey = configMapRaw.key ?? "ca.crt";
  if (typeof configMapKey !== "string" || !/^[-._a-zA-Z0-9]{1,253}$/.test(configMapKey)) {
    throw new SignerSpecError("spec.trustBundle.configMap.key", "must be a ConfigMap key");
  }
  const extraRootsPem = bundleRaw.extraRootsPem ?? "";
  if (typeof extraRootsPem !== "string")
    throw new SignerSpecError("spec.trustBundle.extraRootsPem", "must be PEM text");
  const trustBundle: TrustBundleSpec = {
    ...(configMapEnabled ? { configMap: { name: configMapName, key: configMapKey } } : {}),
    clusterTrustBundle: boolean(bundleRaw.clusterTrustBundle, "spec.trustBundle.clusterTrustBundle", true),
    extraRootsPem,
    // Never shorter than the longest leaf: a leaf must keep verifying until it expires.
    overlapSeconds: Math.max(
      maxDurationSeconds,
      bundleRaw.overlap === undefined ? 0 : duration(bundleRaw.overlap, "spec.trustBundle.overlap"),
    ),
    minimumRootPublicationSeconds:
      bundleRaw.minimumRootPublication === undefined
        ? defaultMinimumRootPublicationSeconds
        : duration(bundleRaw.minimumRootPublication, "spec.trustBundle.minimumRootPublication"),
    expiryWarningSeconds: duration(bundleRaw.expiryWarning ?? "720h", "spec.trustBundle.expiryWarning"),
  };
  const approvalRaw = object(spec.approval, "spec.approval", true);
  const mode = approvalRaw.mode ?? "Manual";
  if (mode !== "Manual" && mode !== "Automatic")
    throw new SignerSpecError("spec.approval.mode", "must be Manual or Automatic");
  const onRefusal = approvalRaw.onRefusal ?? "Deny";
  if (onRefusal !== "Deny" && onRefusal !== "LeavePending")
    throw new SignerSpecError("spec.approval.onRefusal", "must be Deny or LeavePending");
  const requireRbacVerb = approvalRaw.requireRbacVerb;
  if (
    requireRbacVerb !== undefined &&
    (typeof requireRbacVerb !== "string" || !/^[a-z][a-z-]*$/.test(requireRbacVerb))
  ) {
    throw new SignerSpecError("spec.approval.requireRbacVerb", "must be an RBAC verb such as request");
  }
  const podCertificates = parsePodCertificates(spec.podCertificates, spiffeRaw !== undefined);
  const parsed: SignerSpec = {
    signerName,
    certificateAuthority,
    issuance: {
      defaultDurationSeconds,
      maxDurationSeconds,
      allowedUsages,
      keyTypes,
      includeRoot: boolean(issuance.includeRoot, "spec.issuance.includeRoot", false),
    },
    trustBundle,
    approval: {
      mode,
      onRefusal,
      ...(requireRbacVerb !== undefined ? { requireRbacVerb: requireRbacVerb as string } : {}),
    },
    policy: {
      requesters: {
        users: stringList(requesters.users, "spec.policy.requesters.users"),
        groups: stringList(requesters.groups, "spec.policy.requesters.groups"),
        serviceAccounts: stringList(
          requesters.serviceAccounts,
          "spec.policy.requesters.serviceAccounts",
          serviceAccountRef,
        ),
        tenantServiceAccounts: boolean(
          requesters.tenantServiceAccounts,
          "spec.policy.requesters.tenantServiceAccounts",
          false,
        ),
        registrationAuthorities: stringList(
          requesters.registrationAuthorities,
          "spec.policy.requesters.registrationAuthorities",
          serviceAccountRef,
        ),
      },
      tenants: {
        namespaces: stringList(tenants.namespaces, "spec.policy.tenants.namespaces", (item, field) => {
          if (!dnsLabelPattern.test(item))
            throw new SignerSpecError(field, `"${item}" is not a namespace name`);
        }),
        ...(namespaceSelector ? { namespaceSelector } : {}),
      },
      ...(spiffeRaw ? { spiffe: { trustDomain: spiffeRaw.trustDomain as string } } : {}),
      dnsNames: stringList(policy.dnsNames, "spec.policy.dnsNames", (pattern, field) => {
        const expanded = pattern.replaceAll("{namespace}", "ns").replaceAll("{serviceAccount}", "sa");
        if (!expanded.split(".").every((label) => label === "*" || dnsLabelPattern.test(label))) {
          throw new SignerSpecError(
            field,
            `"${pattern}" is not a DNS name pattern (labels, "*" for one label, {namespace}, {serviceAccount})`,
          );
        }
      }),
      allowWildcardDnsNames: boolean(
        policy.allowWildcardDnsNames,
        "spec.policy.allowWildcardDnsNames",
        false,
      ),
      ipAddressRanges: stringList(policy.ipAddressRanges, "spec.policy.ipAddressRanges", (cidr, field) => {
        if (!parseCidr(cidr)) throw new SignerSpecError(field, `"${cidr}" is not a CIDR such as 10.0.0.0/8`);
      }),
      emailDomains: stringList(policy.emailDomains, "spec.policy.emailDomains"),
      maxSubjectAltNames: integer(
        policy.maxSubjectAltNames,
        "spec.policy.maxSubjectAltNames",
        signerDefaults.maxSubjectAltNames,
        1,
        100,
      ),
      subject: {
        organizations: stringList(
          subject.organizations,
          "spec.policy.subject.organizations",
          (organization, field) => {
            if (isReservedName(organization))
              throw new SignerSpecError(field, `"${organization}" is a reserved Kubernetes name`);
          },
        ),
        commonNameFromRequest: boolean(
          subject.commonNameFromRequest,
          "spec.policy.subject.commonNameFromRequest",
          false,
        ),
      },
    },
    ...(podCertificates ? { podCertificates } : {}),
  };
  const anyRequester =
    parsed.policy.requesters.users.length +
      parsed.policy.requesters.groups.length +
      parsed.policy.requesters.serviceAccounts.length +
      parsed.policy.requesters.registrationAuthorities.length >
      0 || parsed.policy.requesters.tenantServiceAccounts;
  // A Signer for pods only asks no CSR requesters: nodes create PodCertificateRequests.
  if (!anyRequester && !parsed.podCertificates)
    throw new SignerSpecError(
      "spec.policy.requesters",
      "allows nobody: name users, groups, service accounts or registration authorities",
    );
  checkSecretNamespaceIsTenant(certificateAuthority, parsed.policy.tenants);
  return parsed;
}

/** spec.podCertificates: absent (PodCertificateRequests are never touched) or the DNS SAN templates. */
function parsePodCertificates(raw: unknown, hasSpiffe: boolean): PodCertificatesSpec | undefined {
  if (raw === undefined) return undefined;
  const podCertificates = object(raw, "spec.podCertificates");
  if (!hasSpiffe) {
    throw new SignerSpecError(
      "spec.podCertificates",
      "needs spec.policy.spiffe.trustDomain: a pod's certificate carries its SPIFFE ID",
    );
  }
  const dnsNames = stringList(podCertificates.dnsNames, "spec.podCertificates.dnsNames", (pattern, field) => {
    const expanded = pattern
      .replaceAll("{namespace}", "ns")
      .replaceAll("{serviceAccount}", "sa")
      .replaceAll("{podName}", "pod");
    if (!expanded.split(".").every((label) => dnsLabelPattern.test(label))) {
      throw new SignerSpecError(
        field,
        `"${pattern}" is not a DNS name template (labels, {namespace}, {serviceAccount}, {podName}; no wildcards)`,
      );
    }
    // Pod and service account names repeat across namespaces: without {namespace}, two tenants get one name.
    if (
      (pattern.includes("{podName}") || pattern.includes("{serviceAccount}")) &&
      !pattern.includes("{namespace}")
    )
      throw new SignerSpecError(
        field,
        `"${pattern}" uses {podName} or {serviceAccount} without {namespace}: pods of two tenants would get the same DNS name`,
      );
  });
  return { dnsNames };
}

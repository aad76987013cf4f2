/**
 * Operator settings of kubelet-serving approval (the controller's --kubelet-serving-* flags and
 * --cluster-domain), validated and compiled once at start: CIDRs parsed, DNS patterns anchored.
 */
import { isDnsHostName } from "./subject-alternative-name-syntax.js";
import { parseCidr, type IpRange } from "./ip-addresses.js";
import { compileLinearTimePattern } from "./linear-time-pattern.js";

/** The operator settings of kubelet-serving approval, by the controller flag that sets each. */
export const kubeletServingSetting = {
  ipRanges: "--kubelet-serving-ip-ranges",
  dnsPatterns: "--kubelet-serving-dns-pattern",
  extraDnsPatterns: "--kubelet-serving-extra-dns",
  clusterDomain: "--cluster-domain",
  serviceClusterIpRange: "--service-cluster-ip-range",
  clusterCidr: "--cluster-cidr",
} as const;

/** kubelet-serving settings as the operator writes them (validated by compileKubeletServingSettings). */
export interface KubeletServingConfiguration {
  /** CIDRs every IP SAN must lie in. */
  ipRanges?: readonly string[];
  /** Regular expressions a DNS SAN that is a Node address must match whole. */
  dnsPatterns?: readonly string[];
  /** DNS names a node may use besides its addresses, each with {node} for the node name. */
  extraDnsPatterns?: readonly string[];
  /** The cluster's DNS domain (default cluster.local). */
  clusterDomain?: string;
  /** Service ClusterIP CIDRs (kube-apiserver's --service-cluster-ip-range); required for IP SANs. */
  serviceClusterIpRanges?: readonly string[];
  /** Pod CIDRs (kube-controller-manager's --cluster-cidr). */
  clusterCidrs?: readonly string[];
  /** spec.expirationSeconds above this is refused; undefined: no limit (the signer clamps). */
  maximumExpirationSeconds?: number;
}

export interface KubeletServingSettings {
  readonly ipRanges: readonly IpRange[];
  /** Anchored: ^(?:pattern)$, linear-time engine (flag `l`), matched against the lower-cased name. */
  readonly dnsPatterns: readonly RegExp[];
  readonly extraDnsPatterns: readonly string[];
  readonly clusterDomain: string;
  /** IP SANs inside these are Services' addresses (the kubernetes Service's among them): always denied. */
  readonly serviceClusterIpRanges: readonly IpRange[];
  /** IP SANs inside these are Pods' addresses: always denied. */
  readonly clusterCidrs: readonly IpRange[];
  readonly maximumExpirationSeconds?: number;
}

/** A setting that cannot be used; `setting` is the flag's name. */
export class KubeletServingSettingsError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = "KubeletServingSettingsError";
  }
}

function cidrs(texts: readonly string[] | undefined, setting: string): IpRange[] {
  return (texts ?? []).map((cidr) => {
    const range = parseCidr(cidr);
    if (!range) throw new KubeletServingSettingsError(setting, `"${cidr}" is not a CIDR such as 10.0.0.0/8`);
    return range;
  });
}

/** Validates and compiles the operator's settings (at startup); throws KubeletServingSettingsError. */
export function compileKubeletServingSettings(
  configuration: KubeletServingConfiguration,
): KubeletServingSettings {
  const ipRanges = cidrs(configuration.ipRanges, kubeletServingSetting.ipRanges);
  const serviceClusterIpRanges = cidrs(
    configuration.serviceClusterIpRanges,
    kubeletServingSetting.serviceClusterIpRange,
  );
  const clusterCidrs = cidrs(configuration.clusterCidrs, kubeletServingSetting.clusterCidr);
  const dnsPatterns = (configuration.dnsPatterns ?? []).map((source) => {
    if (source === "")
      throw new KubeletServingSettingsError(
        kubeletServingSetting.dnsPatterns,
        "an empty pattern matches nothing useful",
      );
    try {
      return compileLinearTimePattern(source);
    } catch (error) {
      throw new KubeletServingSettingsError(
        kubeletServingSetting.dnsPatterns,
        `"${source}" is not a regular expression that runs in linear time (no backreferences or lookahead): ${(error as Error).message}`,
      );
    }
  });
  const extraDnsPatterns = (configuration.extraDnsPatterns ?? []).map((pattern) => {
    const lower = pattern.toLowerCase();
    // Without {node} every node could obtain the same name; with it the name follows the authenticated node.
    if (!lower.includes("{node}") || !isDnsHostName(lower.replaceAll("{node}", "node")))
      throw new KubeletServingSettingsError(
        kubeletServingSetting.extraDnsPatterns,
        `"${pattern}" must be a DNS name containing {node}, e.g. {node}.nodes.example.com`,
      );
    return lower;
  });
  const clusterDomain = (configuration.clusterDomain ?? "cluster.local").toLowerCase();
  if (!isDnsHostName(clusterDomain))
    throw new KubeletServingSettingsError(
      kubeletServingSetting.clusterDomain,
      `"${clusterDomain}" is not a DNS name`,
    );
  return {
    ipRanges,
    dnsPatterns,
    extraDnsPatterns,
    clusterDomain,
    serviceClusterIpRanges,
    clusterCidrs,
    ...(configuration.maximumExpirationSeconds !== undefined
      ? { maximumExpirationSeconds: configuration.maximumExpirationSeconds }
      : {}),
  };
}

/** True when no range or pattern is configured at all: no kubelet serving SAN can be approved. */
export function kubeletServingUnconfigured(settings: KubeletServingSettings): boolean {
  return settings.ipRanges.length + settings.dnsPatterns.length + settings.extraDnsPatterns.length === 0;
}

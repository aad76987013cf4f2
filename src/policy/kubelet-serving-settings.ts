/**
 * Operator settings of kubelet-serving approval (the controller's --kubelet-serving-* flags and
 * --cluster-domain), validated and compiled once at start: CIDRs parsed, DNS patterns anchored.
 */
import { parseCidr, type IpRange } from "./ip-addresses.js";

/** The operator settings of kubelet-serving approval, by the controller flag that sets each. */
export const kubeletServingSetting = {
  ipRanges: "--kubelet-serving-ip-ranges",
  dnsPatterns: "--kubelet-serving-dns-pattern",
  extraDnsPatterns: "--kubelet-serving-extra-dns",
  clusterDomain: "--cluster-domain",
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
  /** spec.expirationSeconds above this is refused; undefined: no limit (the signer clamps). */
  maximumExpirationSeconds?: number;
}

export interface KubeletServingSettings {
  readonly ipRanges: readonly IpRange[];
  /** Anchored: ^(?:pattern)$, matched against the lower-cased name. */
  readonly dnsPatterns: readonly RegExp[];
  readonly extraDnsPatterns: readonly string[];
  readonly clusterDomain: string;
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

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A lower-case host name: labels of letters, digits and inner hyphens, at most 253 characters; no wildcard. */
export function isDnsHostName(name: string): boolean {
  return name.length <= 253 && name.split(".").every((label) => dnsLabel.test(label));
}

/** Validates and compiles the operator's settings (at startup); throws KubeletServingSettingsError. */
export function compileKubeletServingSettings(
  configuration: KubeletServingConfiguration,
): KubeletServingSettings {
  const ipRanges = (configuration.ipRanges ?? []).map((cidr) => {
    const range = parseCidr(cidr);
    if (!range)
      throw new KubeletServingSettingsError(
        kubeletServingSetting.ipRanges,
        `"${cidr}" is not a CIDR such as 10.0.0.0/8`,
      );
    return range;
  });
  const dnsPatterns = (configuration.dnsPatterns ?? []).map((source) => {
    if (source === "")
      throw new KubeletServingSettingsError(
        kubeletServingSetting.dnsPatterns,
        "an empty pattern matches nothing useful",
      );
    try {
      // Anchored here, so "[a-z0-9-]+\.nodes\.example\.com" can never match a prefix or suffix of a name.
      return new RegExp(`^(?:${source})$`);
    } catch (error) {
      throw new KubeletServingSettingsError(
        kubeletServingSetting.dnsPatterns,
        `"${source}" is not a regular expression: ${(error as Error).message}`,
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
    ...(configuration.maximumExpirationSeconds !== undefined
      ? { maximumExpirationSeconds: configuration.maximumExpirationSeconds }
      : {}),
  };
}

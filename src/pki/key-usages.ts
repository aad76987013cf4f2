import { isKubernetesUsage, kubernetesUsages, type KubernetesUsage } from "../api/usages.js";
import { Oid } from "./oids.js";

/** keyUsage bit positions (RFC 5280 4.2.1.3), as kube-controller-manager maps the names. */
const keyUsageBits: Partial<Record<KubernetesUsage, number>> = {
  signing: 0,
  "digital signature": 0,
  "content commitment": 1,
  "key encipherment": 2,
  "data encipherment": 3,
  "key agreement": 4,
  "cert sign": 5,
  "crl sign": 6,
  "encipher only": 7,
  "decipher only": 8,
};

const extendedKeyUsageOids: Partial<Record<KubernetesUsage, string>> = {
  any: Oid.anyExtendedKeyUsage,
  "server auth": Oid.serverAuth,
  "client auth": Oid.clientAuth,
  "code signing": Oid.codeSigning,
  "email protection": Oid.emailProtection,
  "s/mime": Oid.emailProtection,
  "ipsec end system": Oid.ipsecEndSystem,
  "ipsec tunnel": Oid.ipsecTunnel,
  "ipsec user": Oid.ipsecUser,
  timestamping: Oid.timeStamping,
  "ocsp signing": Oid.ocspSigning,
  "microsoft sgc": Oid.microsoftServerGatedCrypto,
  "netscape sgc": Oid.netscapeServerGatedCrypto,
};

/**
 * Usages a leaf certificate can never carry, whatever a signer's configuration says: a leaf
 * with keyCertSign or cRLSign is a CA in all but basicConstraints.
 */
export const usagesNeverIssuedToLeaves: readonly KubernetesUsage[] = ["cert sign", "crl sign"];

/** Every EKU OID once, in the order of kubernetesUsages: the order certificates list them in. */
const extendedKeyUsageOrder: readonly string[] = [
  ...new Set(kubernetesUsages.flatMap((usage) => extendedKeyUsageOids[usage] ?? [])),
];

/** What a requested usage list becomes in a certificate. */
export interface CertificateKeyUsages {
  readonly keyUsageBits: readonly number[];
  readonly extendedKeyUsageOids: readonly string[];
}

/**
 * Maps usage names to keyUsage bits and EKU OIDs, de-duplicated, in a deterministic order.
 * Unknown names are the caller's error (the API server only accepts the 23 known ones).
 */
export function certificateKeyUsages(usages: readonly KubernetesUsage[]): CertificateKeyUsages {
  let bitMask = 0; // keyUsage has 9 named bits
  const oids = new Set<string>();
  for (const usage of usages) {
    const bit = keyUsageBits[usage];
    if (bit !== undefined) bitMask |= 1 << bit;
    const oid = extendedKeyUsageOids[usage];
    if (oid !== undefined) oids.add(oid);
  }
  const keyUsageBitList: number[] = [];
  for (let bit = 0; bitMask >> bit !== 0; bit++) if ((bitMask >> bit) & 1) keyUsageBitList.push(bit);
  return {
    keyUsageBits: keyUsageBitList,
    extendedKeyUsageOids: oids.size === 0 ? [] : extendedKeyUsageOrder.filter((oid) => oids.has(oid)),
  };
}

/** The requested usages that are also allowed, in request order, without duplicates. */
export function intersectUsages(
  requested: readonly string[],
  allowed: readonly KubernetesUsage[],
): { granted: KubernetesUsage[]; refused: string[] } {
  const granted: KubernetesUsage[] = [];
  const refused: string[] = [];
  for (const usage of new Set(requested)) {
    if (isKubernetesUsage(usage) && allowed.includes(usage) && !usagesNeverIssuedToLeaves.includes(usage)) {
      granted.push(usage);
    } else {
      refused.push(usage);
    }
  }
  return { granted, refused };
}

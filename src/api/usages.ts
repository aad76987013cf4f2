/** The 23 usage names of certificates.k8s.io/v1 spec.usages; src/pki/key-usages.ts maps them to X.509. */
export const kubernetesUsages = [
  "signing",
  "digital signature",
  "content commitment",
  "key encipherment",
  "key agreement",
  "data encipherment",
  "cert sign",
  "crl sign",
  "encipher only",
  "decipher only",
  "any",
  "server auth",
  "client auth",
  "code signing",
  "email protection",
  "s/mime",
  "ipsec end system",
  "ipsec tunnel",
  "ipsec user",
  "timestamping",
  "ocsp signing",
  "microsoft sgc",
  "netscape sgc",
] as const;

export type KubernetesUsage = (typeof kubernetesUsages)[number];

export function isKubernetesUsage(name: string): name is KubernetesUsage {
  return (kubernetesUsages as readonly string[]).includes(name);
}

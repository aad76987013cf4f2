/** Names that carry meaning to Kubernetes or Istio, so a Signer or a certificate must not use them. */

/** Names that belong to Kubernetes (rootcacertpublisher) and Istio (istiod's own root publisher). */
export const reservedConfigMapNames = ["kube-root-ca.crt", "istio-ca-root-cert"];

/**
 * Groups outside system: that clusters bind to cluster-admin: kubeadm (1.29+) binds the
 * cluster-admin ClusterRole to kubeadm:cluster-admins, the group of its admin.conf.
 */
const reservedNamesOutsideSystem: ReadonlySet<string> = new Set(["kubeadm:cluster-admins"]);

/**
 * Names Kubernetes gives meaning to: system:masters and everything else under system:, and
 * kubeadm:cluster-admins; in any case and with surrounding spaces (a consumer that trims or folds
 * case must not see a privileged name).
 */
export function isReservedName(value: string): boolean {
  const normalised = value.trim().toLowerCase();
  return normalised.startsWith("system:") || reservedNamesOutsideSystem.has(normalised);
}

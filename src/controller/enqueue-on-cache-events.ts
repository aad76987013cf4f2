/**
 * Cache events become queue keys, and nothing else happens in a handler but noting when a CSR was
 * first seen (its issuance latency counts from then on any replica; its approval grace period from
 * the leader's first sight, in queueDelayMs). Only the leader queues requests; a new leader
 * requeues every pending one from the cache. A CSR key is its name; a
 * PodCertificateRequest key its namespace/name; a Signer key is the Signer's object name: a Secret,
 * Namespace, ConfigMap or ClusterTrustBundle event is mapped to the Signers it concerns.
 */
import { publisherOf } from "../bundle/publication.js";
import { kubeletServingSignerName } from "../policy/kubelet-approval.js";
import type { CsrFirstSeen } from "./csr-first-seen.js";
import type { CsrReconciler } from "./csr-reconciler.js";
import { hasCondition } from "./csr-object.js";
import type { ControllerInformers } from "./informers.js";
import type { NodeAddressIndex } from "./node-address-index.js";
import {
  isDecided,
  podCertificateRequestKey,
  type PodCertificateRequestObject,
} from "./pod-certificate-object.js";
import type { SignerRegistry } from "./signer-registry.js";
import type { WorkQueue } from "./work-queue.js";

export function enqueueOnCacheEvents(
  caches: ControllerInformers,
  registry: SignerRegistry,
  queues: { csrs: WorkQueue; signers: WorkQueue },
  /** isOurs, queueDelayMs (when a CSR's event enters the queue; undefined: never), and forget. */
  csrs: Pick<CsrReconciler, "isOurs" | "queueDelayMs" | "forget">,
  nodeAddresses: NodeAddressIndex,
  firstSeen?: CsrFirstSeen,
  /**
   * Whether this replica leads now (default: always). A follower queues no CSR: its workers wait
   * for the lease, so a queued key would stay until it leads, one per CSR name ever seen, and a new
   * leader requeues every pending CSR from the cache (leader-takeover.ts) anyway.
   */
  leading: () => boolean = () => true,
): void {
  const signers = (names: Iterable<string | undefined>): void => {
    for (const name of names) if (name) queues.signers.add(name);
  };
  caches.signers.on((_, signer) => signers([signer.metadata?.name]));
  caches.secrets.on((_, secret) =>
    signers(registry.usingSecret(secret.metadata?.name ?? "", secret.metadata?.namespace)),
  );
  caches.namespaces.on((_, namespace) => {
    registry.namespacesChanged();
    signers(registry.concerning(namespace.metadata?.name ?? ""));
  });
  // An edited or deleted copy is put back at once; a copy of a deleted Signer is withdrawn. The label
  // names the publisher only as it is now: a tenant may have moved it to another Signer (or to none),
  // so the Signers publishing into that namespace (or under that signer name) look too; only those,
  // so a tenant's writes to its own labelled ConfigMaps cost no round of every other Signer.
  caches.configMaps.on((_, configMap) =>
    signers([publisherOf(configMap), ...registry.publishingInto(configMap.metadata?.namespace ?? "")]),
  );
  caches.clusterTrustBundles.on((_, bundle) =>
    signers([publisherOf(bundle), registry.forSignerName(bundle.spec?.signerName ?? "")?.objectName]),
  );
  caches.csrs.on((event, csr) => {
    const name = csr.metadata?.name;
    if (!name) return;
    if (event === "delete") {
      // What is kept about it goes at once, on a follower too; the leader also queues it, whoever's
      // it was, so that its reconcile drops what else the handlers keep.
      firstSeen?.forget(csr);
      csrs.forget(name);
      if (leading()) queues.csrs.add(name);
      return;
    }
    if (!leading()) {
      // The issuance latency counts from the first moment any replica knew of the request, so a
      // failover's wait shows in it.
      if (csrs.isOurs(csr)) firstSeen?.saw(csr);
      return;
    }
    // Only our signers' unsettled CSRs enter the queue: every gate skips a settled one (certificate
    // set, Denied, Failed), and among its events is the echo of each certificate we write. One
    // waiting for someone else's approval enters when its grace period ends (queueDelayMs starts
    // that period), unless an approval queues it first.
    const delayMs = csrs.queueDelayMs(csr);
    if (delayMs === undefined) return;
    // The issuance latency counts from here, the first moment the controller knows of the request.
    firstSeen?.saw(csr);
    if (delayMs > 0) queues.csrs.addAfter(name, delayMs);
    else queues.csrs.add(name);
  });
  // Registered before the informer starts, so the first list fills the index.
  caches.nodes?.on((event, node) => {
    const changed = event === "delete" ? (nodeAddresses.delete(node), true) : nodeAddresses.upsert(node);
    // New addresses can make the Node's undecided kubelet-serving CSRs approvable; a heartbeat that
    // changes no address (most Node updates, and resyncs) costs no scan of the CSR cache.
    if (!changed || !leading()) return;
    const requester = `system:node:${node.metadata?.name ?? ""}`;
    for (const csr of caches.csrs.list()) {
      if (
        csr.metadata?.name &&
        csr.spec?.signerName === kubeletServingSignerName &&
        csr.spec.username === requester &&
        !hasCondition(csr, "Approved") &&
        !hasCondition(csr, "Denied")
      )
        queues.csrs.add(csr.metadata.name);
    }
  });
}

/** PodCertificateRequest events become namespace/name keys in their own queue. */
export function enqueueOnPodCertificateRequestEvents(
  podCertificateRequests: ControllerInformers["podCertificateRequests"],
  isOurs: (pcr: PodCertificateRequestObject) => boolean,
  queue: WorkQueue,
  /** Whether this replica leads now: a follower queues nothing (see enqueueOnCacheEvents). */
  leading: () => boolean = () => true,
): void {
  podCertificateRequests.on((event, pcr) => {
    const key = podCertificateRequestKey(pcr);
    // Ours and undecided only: nothing is kept per request, so a deletion needs no key either.
    if (key && event !== "delete" && leading() && !isDecided(pcr) && isOurs(pcr)) queue.add(key);
  });
}

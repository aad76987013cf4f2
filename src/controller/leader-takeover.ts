/**
 * Leadership changes and the requeue-all they cause: a new leader takes over everything pending
 * (every Signer, every publisher, every undecided request of ours), so nothing waits for the next
 * event. Signers that became ready get the same look at their own pending requests.
 */
import type { ControllerCollaborators } from "./collaborators.js";
import { isSettled } from "./csr-gates.js";
import { isDecided, podCertificateRequestKey } from "./pod-certificate-object.js";

export class LeaderTakeover {
  constructor(
    private readonly parts: Pick<
      ControllerCollaborators,
      | "metrics"
      | "leaseName"
      | "leadership"
      | "registry"
      | "queues"
      | "meshConfigSync"
      | "publication"
      | "informers"
      | "csrReconciler"
      | "podCertificateReconciler"
      | "firstSeen"
    >,
  ) {}

  /** The elector's onChange listener. */
  leadingChanged(leading: boolean): void {
    const { metrics, leaseName, leadership, registry, queues, meshConfigSync, publication } = this.parts;
    metrics.leader.set({ name: leaseName }, leading ? 1 : 0);
    if (!leading) {
      leadership.lost(); // requests stop being queued; a new leader requeues them all
      return;
    }
    leadership.acquired();
    // A new leader takes over everything pending: nothing waits for the next event.
    for (const signer of registry.all()) queues.signers.add(signer.objectName);
    meshConfigSync.request();
    for (const publisher of publication.publishers()) queues.signers.add(publisher);
    this.requeuePending();
  }

  /** Requeues the pending requests of these signer names (all of ours when absent). */
  requeuePending(signerNames?: ReadonlySet<string>): void {
    // A follower's Signer worker sees Signers become ready too: it queues nothing (its workers wait
    // for the lease; a new leader requeues everything pending).
    if (!this.parts.leadership.holdsLease) return;
    this.requeueCsrs(signerNames);
    this.requeuePodCertificateRequests(signerNames);
  }

  private requeuePodCertificateRequests(signerNames?: ReadonlySet<string>): void {
    const { informers, podCertificateReconciler, queues } = this.parts;
    for (const pcr of informers.podCertificateRequests.list()) {
      const key = podCertificateRequestKey(pcr);
      if (
        key &&
        !isDecided(pcr) &&
        podCertificateReconciler.isOurs(pcr) &&
        (!signerNames || signerNames.has(pcr.spec?.signerName ?? ""))
      )
        queues.podCertificateRequests.add(key);
    }
  }

  private requeueCsrs(signerNames?: ReadonlySet<string>): void {
    const { informers, csrReconciler, queues, firstSeen } = this.parts;
    for (const csr of informers.csrs.list()) {
      const name = csr.metadata?.name;
      if (
        name &&
        csrReconciler.isOurs(csr) &&
        !isSettled(csr) &&
        (!signerNames || signerNames.has(csr.spec?.signerName ?? ""))
      ) {
        // A CSR that arrived before its Signer was not ours then: its latency counts from now.
        firstSeen.saw(csr);
        queues.csrs.add(name);
      }
    }
  }
}

/**
 * A follower's Signer worker rebuilds Signers too, and a Signer that becomes ready calls
 * LeaderTakeover.requeuePending, which queues that Signer's pending CSRs and PodCertificateRequests
 * only while this replica holds the lease: a follower's workers never take them (they wait for the
 * lease), so each name would stay queued until it leads. Found by an adversarial review.
 */
import { expect } from "chai";
import { CsrFirstSeen } from "../../../src/controller/csr-first-seen.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { LeaderTakeover } from "../../../src/controller/leader-takeover.js";
import { Leadership } from "../../../src/controller/leadership.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { WorkQueue } from "../../../src/controller/work-queue.js";

describe("LeaderTakeover: a follower's newly ready Signer", () => {
  it("queues no request on a follower (the new leader requeues them all)", () => {
    const queues = {
      csrs: new WorkQueue(),
      signers: new WorkQueue(),
      podCertificateRequests: new WorkQueue(),
    };
    let generation = 0;
    const parts = {
      metrics: new ControllerMetrics(),
      leaseName: "csr-signer",
      // A follower: the elector never reported the lease held.
      leadership: new Leadership({ isLeader: false }),
      queues,
      firstSeen: new CsrFirstSeen(),
      registry: { all: () => [] },
      publication: { publishers: () => [] },
      meshConfigSync: { request: () => undefined },
      informers: {
        // Pending CSRs churn: each ready transition sees fresh names (the old ones were deleted).
        csrs: {
          list: () =>
            [0, 1, 2].map(
              (i) =>
                ({
                  metadata: { name: `g${generation}-${i}` },
                  spec: { signerName: "example.com/ours" },
                }) as CsrObject,
            ),
        },
        podCertificateRequests: { list: () => [] },
      },
      csrReconciler: { isOurs: () => true },
      podCertificateReconciler: { isOurs: () => true },
    } as unknown as ConstructorParameters<typeof LeaderTakeover>[0];
    const takeover = new LeaderTakeover(parts);
    expect(parts.leadership.holdsLease).to.equal(false);
    for (generation = 0; generation < 100; generation++)
      takeover.requeuePending(new Set(["example.com/ours"]));
    expect(queues.csrs.length, "CSR keys queued on a follower").to.equal(0);
  });
});

describe("Leadership.release", () => {
  it("does not make a follower report the lease held", () => {
    const leadership = new Leadership({ isLeader: false });
    leadership.acquired();
    leadership.lost();
    leadership.release(); // shutting down: waiters go on
    expect(leadership.holdsLease).to.equal(false);
  });
});

import { expect } from "chai";
import { CsrFirstSeen } from "../../../src/controller/csr-first-seen.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { LeaderTakeover } from "../../../src/controller/leader-takeover.js";
import { Leadership } from "../../../src/controller/leadership.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import type { PodCertificateRequestObject } from "../../../src/controller/pod-certificate-object.js";
import { WorkQueue } from "../../../src/controller/work-queue.js";

const ours = new Set(["example.com/ours", "example.com/also-ours"]);

function csr(name: string, signerName: string): CsrObject {
  return { metadata: { name }, spec: { signerName } } as CsrObject;
}

function pcr(name: string, signerName: string, decided = false): PodCertificateRequestObject {
  return {
    metadata: { name, namespace: "apps" },
    spec: { signerName },
    ...(decided ? { status: { conditions: [{ type: "Issued", status: "True" }] } } : {}),
  } as PodCertificateRequestObject;
}

async function drain(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.length > 0) keys.push((await queue.get()) ?? "");
  return keys.sort();
}

function buildTakeover() {
  const queues = { csrs: new WorkQueue(), signers: new WorkQueue(), podCertificateRequests: new WorkQueue() };
  const firstSeen = new CsrFirstSeen();
  const meshConfigRequests: number[] = [];
  const metrics = new ControllerMetrics();
  const parts = {
    metrics,
    leaseName: "csr-signer",
    leadership: new Leadership({ isLeader: true }),
    queues,
    firstSeen,
    registry: { all: () => [{ objectName: "ours" }, { objectName: "also-ours" }] },
    publication: { publishers: () => ["gone-signer"] },
    meshConfigSync: { request: () => meshConfigRequests.push(1) },
    informers: {
      csrs: {
        list: () => [
          csr("a", "example.com/ours"),
          csr("b", "example.com/also-ours"),
          csr("c", "example.com/foreign"),
        ],
      },
      podCertificateRequests: {
        list: () => [
          pcr("p", "example.com/ours"),
          pcr("q", "example.com/also-ours"),
          pcr("decided", "example.com/ours", true),
          pcr("foreign", "example.com/foreign"),
        ],
      },
    },
    csrReconciler: { isOurs: (object: CsrObject) => ours.has(object.spec?.signerName ?? "") },
    podCertificateReconciler: {
      isOurs: (object: PodCertificateRequestObject) => ours.has(object.spec?.signerName ?? ""),
    },
  } as unknown as ConstructorParameters<typeof LeaderTakeover>[0];
  return { takeover: new LeaderTakeover(parts), queues, firstSeen, meshConfigRequests, metrics, parts };
}

async function leaderGauge(metrics: ControllerMetrics): Promise<number | undefined> {
  return (await metrics.leader.get()).values.find((value) => value.labels.name === "csr-signer")?.value;
}

describe("LeaderTakeover: what a new leader and newly ready Signers requeue", () => {
  it("a new leader queues every Signer, every publisher, our CSRs and our undecided PodCertificateRequests", async () => {
    const { takeover, queues, firstSeen, meshConfigRequests, metrics } = buildTakeover();
    takeover.leadingChanged(true);
    expect(await leaderGauge(metrics)).to.equal(1);
    expect(await drain(queues.signers)).to.deep.equal(["also-ours", "gone-signer", "ours"]);
    expect(await drain(queues.csrs)).to.deep.equal(["a", "b"]);
    expect(await drain(queues.podCertificateRequests)).to.deep.equal(["apps/p", "apps/q"]);
    expect(meshConfigRequests).to.have.length(1);
    // A CSR that arrived before its Signer was not ours then: its latency counts from the requeue.
    expect(firstSeen.size).to.equal(2);
  });

  it("losing the lease only lowers the gauge", async () => {
    const { takeover, queues, meshConfigRequests, metrics } = buildTakeover();
    takeover.leadingChanged(false);
    expect(await leaderGauge(metrics)).to.equal(0);
    expect([queues.signers.length, queues.csrs.length, queues.podCertificateRequests.length]).to.deep.equal([
      0, 0, 0,
    ]);
    expect(meshConfigRequests).to.have.length(0);
  });

  it("Signers that became ready requeue only their own pending requests", async () => {
    const { takeover, queues, parts } = buildTakeover();
    parts.leadership.acquired(); // a leader (a follower queues nothing)
    takeover.requeuePending(new Set(["example.com/also-ours"]));
    expect(await drain(queues.csrs)).to.deep.equal(["b"]);
    expect(await drain(queues.podCertificateRequests)).to.deep.equal(["apps/q"]);
    expect(queues.signers.length).to.equal(0);
  });
});

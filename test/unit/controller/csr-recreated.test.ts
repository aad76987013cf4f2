/**
 * A CSR deleted and created again under the same name, its deletion never seen: the new object
 * arrives as an update of the old name (the informer reports the deletion after a relist since
 * informer-relist.test.ts; this guards any path that does not). What the
 * controller keeps per CSR (the WaitingApproval grace and "told" state, the first sighting of the
 * issuance latency) belongs to the object, its uid: the new one gets its own grace period and
 * Event, and the old one's entries go.
 */
import { expect } from "chai";
import { CsrFirstSeen } from "../../../src/controller/csr-first-seen.js";
import type { CsrApi } from "../../../src/controller/csr-api.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { CsrReconciler } from "../../../src/controller/csr-reconciler.js";
import { enqueueOnCacheEvents } from "../../../src/controller/enqueue-on-cache-events.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import type { NodeAddressIndex } from "../../../src/controller/node-address-index.js";
import type { ActiveSigner } from "../../../src/controller/signer-builder.js";
import type { SignerRegistry } from "../../../src/controller/signer-registry.js";
import type { WorkQueue } from "../../../src/controller/work-queue.js";
import type { InformerEvent } from "../../../src/kube/informer.js";
import { jsonLogger } from "../../../src/logger.js";
import { csrOnlyInformers } from "../../support/csr-only-informers.js";

const signerName = "example.com/foo";

describe("a CSR re-created under its name, the deletion unseen (reported as an update)", () => {
  let now = 0;
  let cached: CsrObject | undefined;
  const events: string[] = [];
  const queued: [string, number][] = [];
  const ready = { objectName: "foo", spec: { signerName }, authority: {} } as unknown as ActiveSigner;
  const registry = {
    forSignerName: (name: string) => (name === signerName ? ready : undefined),
  } as unknown as SignerRegistry;
  const firstSeen = new CsrFirstSeen(() => now);
  const reconciler = new CsrReconciler(
    registry,
    { get: () => cached },
    {} as CsrApi, // nothing is written while a CSR waits for approval
    { record: (target, _type, reason) => void events.push(`${reason} ${target.uid}`) },
    new ControllerMetrics(),
    jsonLogger({ level: "error", write: () => undefined }),
    { now: () => new Date(now), randomBytes: () => new Uint8Array() },
    undefined, // someone else approves
    10_000,
    firstSeen,
  );
  let csrEvent: (event: InformerEvent, csr: CsrObject) => void = () => undefined;
  enqueueOnCacheEvents(
    csrOnlyInformers((handler) => (csrEvent = handler)),
    registry,
    {
      csrs: {
        add: (name: string) => void queued.push([name, 0]),
        addAfter: (name: string, ms: number) => void queued.push([name, ms]),
      } as unknown as WorkQueue,
      signers: {} as WorkQueue,
    },
    reconciler,
    {} as NodeAddressIndex,
    firstSeen,
  );
  const pending = (uid: string): CsrObject => ({
    metadata: { name: "web", uid },
    spec: { signerName, username: "alice" },
  });

  it("gets its own grace period and WaitingApproval Event, and the old uid's first sighting goes", async () => {
    cached = pending("uid-old");
    csrEvent("upsert", cached);
    expect(queued).to.deep.equal([["web", 10_000]]);
    now = 10_000;
    expect(await reconciler.reconcile("web")).to.deep.equal({ kind: "done" });
    expect(events).to.deep.equal(["WaitingApproval uid-old"]);

    now = 15_000; // deleted and created again; the new object is reported as an update
    cached = pending("uid-new");
    csrEvent("upsert", cached);
    expect(queued).to.deep.equal([
      ["web", 10_000],
      ["web", 10_000], // a grace period of its own, not the old one's "told"
    ]);
    expect(firstSeen.size).to.equal(1);
    expect(firstSeen.seenAt(pending("uid-old"))).to.equal(undefined);
    expect(firstSeen.seenAt(pending("uid-new"))).to.equal(15_000);

    now = 20_000; // an early reconcile (another update) waits out the rest of the new one's grace
    expect(await reconciler.reconcile("web")).to.deep.equal({ kind: "after", milliseconds: 5_000 });
    now = 25_000;
    expect(await reconciler.reconcile("web")).to.deep.equal({ kind: "done" });
    expect(events).to.deep.equal(["WaitingApproval uid-old", "WaitingApproval uid-new"]);
  });
});

import { expect } from "chai";
import type { SignerStatus } from "../../../src/api/signer.js";
import type { TrustBundlePublication } from "../../../src/bundle/publication.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { SignerReconciler } from "../../../src/controller/signer-reconciler.js";
import { signerRegistryFor } from "../../support/ready-signer-registry.js";
import { silentLogger } from "../../support/silent-logger.js";

describe("SignerReconciler: the Signer status limiter", function () {
  this.timeout(20_000);

  it("comes back when the limiter has no token instead of waiting for one (its one worker also loads CAs and publishes)", async () => {
    const registry = await signerRegistryFor("status-limit");
    const writes: [string, SignerStatus][] = [];
    let limiterWaitMs = 250;
    const publication = {
      publish: async () => ({ complete: true, problems: [] }),
      withdraw: async () => undefined,
    } as unknown as TrustBundlePublication;
    const reconciler = new SignerReconciler(
      registry,
      publication,
      {
        waitMs: () => limiterWaitMs,
        write: async (objectName, status) => {
          writes.push([objectName, status]);
          return "ok";
        },
      },
      new ControllerMetrics(),
      silentLogger,
      {
        isLeader: () => true,
        now: () => new Date(),
        signersReady: () => undefined,
        enqueue: () => undefined,
      },
    );
    const first = await reconciler.reconcile("status-limit");
    expect(writes, "no write while the limiter would make it wait").to.deep.equal([]);
    expect(first.kind).to.equal("after");
    expect(first.kind === "after" && first.milliseconds).to.be.within(1, 250);

    limiterWaitMs = 0;
    await reconciler.reconcile("status-limit");
    expect(writes.map(([objectName]) => objectName)).to.deep.equal(["status-limit"]);
    expect(writes[0]![1].conditions?.map((condition) => condition.type)).to.include("Ready");
  });
});

import { expect } from "chai";
import { desiredSignerStatus, type SignerStatusFacts } from "../../../src/controller/signer-status.js";
import type { ActiveSigner } from "../../../src/controller/signer-registry.js";

const now = new Date("2026-06-01T12:00:00Z");
const facts: SignerStatusFacts = {
  publicationProblem: undefined,
  signingTrouble: undefined,
  issuedSince: 0,
  failedSince: 0,
  recordedRoots: undefined,
  now,
};
const waiting: ActiveSigner = {
  objectName: "foo",
  generation: 3,
  spec: undefined,
  authority: undefined,
  degraded: undefined,
  bundle: undefined,
  expiring: undefined,
  problem: { reason: "RootNotYetPublished", message: "root must be published" },
};

describe("desiredSignerStatus (pure)", () => {
  it("says why a Signer cannot sign on Ready, with observedGeneration, and adds the counts since the last write", () => {
    const status = desiredSignerStatus(
      waiting,
      { issuedCount: 4 },
      { ...facts, issuedSince: 2, failedSince: 1 },
    )!;
    expect(status.observedGeneration).to.equal(3);
    expect(status.conditions!.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ["Ready", "False", "RootNotYetPublished"],
      ["Degraded", "False", "AsExpected"],
      ["CertificateAuthorityExpiring", "False", "AsExpected"],
    ]);
    expect([status.issuedCount, status.failedCount]).to.deep.equal([6, 1]);
  });

  it("names a failing publication as the cause of a root waiting for it, and reports it as Degraded", () => {
    const status = desiredSignerStatus(
      waiting,
      {},
      { ...facts, publicationProblem: "ConfigMap a/b: forbidden" },
    )!;
    const [ready, degraded] = status.conditions!;
    expect(ready!.message).to.equal(
      "root must be published; publishing the trust bundle fails: ConfigMap a/b: forbidden",
    );
    expect(degraded).to.include({ status: "True", reason: "TrustBundlePublicationFailed" });
  });

  it("is undefined when the status says it all already, and keeps lastTransitionTime of unchanged conditions", () => {
    const first = desiredSignerStatus(waiting, {}, facts)!;
    expect(desiredSignerStatus(waiting, first, { ...facts, now: new Date(now.getTime() + 60_000) })).to.equal(
      undefined,
    );
    const troubled = desiredSignerStatus({ ...waiting, problem: undefined }, first, {
      ...facts,
      signingTrouble: { reason: "CertificateWriteFailed", message: "403" },
      now: new Date(now.getTime() + 60_000),
    })!;
    const [ready, degraded] = troubled.conditions!;
    expect(ready).to.include({
      reason: "CertificateWriteFailed",
      lastTransitionTime: "2026-06-01T12:01:00Z",
    });
    expect(degraded!.lastTransitionTime).to.equal("2026-06-01T12:00:00Z");
  });
});

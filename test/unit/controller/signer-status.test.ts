import { expect } from "chai";
import {
  changesOnlyCounts,
  desiredSignerStatus,
  signerConditions,
  statusWriteDelayMs,
  type SignerStatusFacts,
} from "../../../src/controller/signer-status.js";
import type { SignerStatus } from "../../../src/api/signer.js";
import type { ActiveSigner } from "../../../src/controller/signer-builder.js";
import { defaultMinimumRootPublicationSeconds, parseSignerSpec } from "../../../src/policy/signer-spec.js";

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
    // The headline (reason, start of the message) is the cause; the root waiting for it comes after.
    expect(ready).to.include({ status: "False", reason: "TrustBundlePublicationFailed" });
    expect(ready!.message).to.equal(
      "publishing the trust bundle fails, so the new root cannot sign yet: ConfigMap a/b: forbidden (RootNotYetPublished: root must be published)",
    );
    expect(degraded).to.include({ status: "True", reason: "TrustBundlePublicationFailed" });
  });

  it("a rotation held by a failing publication: Degraded leads with the publication, Ready stays True", () => {
    const rotating: ActiveSigner = {
      ...waiting,
      problem: undefined,
      degraded: { reason: "RootNotYetPublished", message: "update not used: root must be published" },
    };
    const [ready, degraded] = signerConditions(rotating, {
      publicationProblem: "ClusterTrustBundle x: forbidden",
      signingTrouble: undefined,
    });
    expect(ready).to.include({ status: "True", reason: "Ready" });
    expect(degraded).to.include({ status: "True", reason: "TrustBundlePublicationFailed" });
    expect(degraded!.message).to.match(/^publishing the trust bundle fails.*ClusterTrustBundle x: forbidden/);
  });

  it("roots left out of an Istio mesh ConfigMap make the Signer Degraded (IstioMeshConfigTooLarge) while Ready stays True, after publication problems", () => {
    const meshConfigProblem = {
      reason: "IstioMeshConfigTooLarge" as const,
      message: "its 4 roots do not fit",
    };
    const signing: ActiveSigner = { ...waiting, problem: undefined };
    const [ready, degraded] = signerConditions(signing, {
      publicationProblem: undefined,
      signingTrouble: undefined,
      meshConfigProblem,
    });
    expect(ready).to.include({ status: "True", reason: "Ready" });
    expect(degraded).to.include({
      status: "True",
      reason: "IstioMeshConfigTooLarge",
      message: "its 4 roots do not fit",
    });
    expect(
      signerConditions(signing, {
        publicationProblem: "CTB: forbidden",
        signingTrouble: undefined,
        meshConfigProblem,
      })[1],
    ).to.include({ reason: "TrustBundlePublicationFailed" });
  });

  it("a refused approval write makes an Automatic Signer Degraded (ApprovalWriteFailed), after CA and publication problems", () => {
    const approvalTrouble = { reason: "ApprovalWriteFailed" as const, message: "needs verb approve" };
    const signing: ActiveSigner = { ...waiting, problem: undefined };
    expect(
      signerConditions(signing, {
        publicationProblem: undefined,
        signingTrouble: undefined,
        approvalTrouble,
      })[1],
    ).to.include({ status: "True", reason: "ApprovalWriteFailed", message: "needs verb approve" });
    expect(
      signerConditions(signing, {
        publicationProblem: "CTB: forbidden",
        signingTrouble: undefined,
        approvalTrouble,
      })[1],
    ).to.include({ reason: "TrustBundlePublicationFailed" });
    expect(
      signerConditions(signing, { publicationProblem: undefined, signingTrouble: undefined })[1],
    ).to.include({
      status: "False",
      reason: "AsExpected",
    });
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

describe("desiredSignerStatus: RootPublicationHoldShort warns of a minimumRootPublication below the default", () => {
  const withHold = (seconds: number): ActiveSigner => ({
    ...waiting,
    spec: parseSignerSpec(
      {
        signerName: "example.com/foo",
        certificateAuthority: { secretName: "foo" },
        policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: ["foo"] } },
        trustBundle: { minimumRootPublication: `${seconds}s` },
      },
      "foo",
    ),
  });

  it("is True with reason ShorterThanDefault and names the field and the default when the hold is shorter", () => {
    const status = desiredSignerStatus(withHold(5), {}, facts)!;
    const warning = status.conditions!.find((c) => c.type === "RootPublicationHoldShort");
    expect(warning).to.include({ status: "True", reason: "ShorterThanDefault", observedGeneration: 3 });
    expect(warning!.message).to.contain("spec.trustBundle.minimumRootPublication is 5s");
    expect(warning!.message).to.contain(`default of ${defaultMinimumRootPublicationSeconds}s`);
    // A warning only: it says nothing about whether the Signer signs.
    expect(status.conditions!.map((c) => c.type)).to.include.members(["Ready", "Degraded"]);
  });

  it("is absent at the default or longer, and without a valid spec", () => {
    for (const signer of [withHold(defaultMinimumRootPublicationSeconds), withHold(3600), waiting]) {
      const types = desiredSignerStatus(signer, {}, facts)!.conditions!.map((c) => c.type);
      expect(types).to.deep.equal(["Ready", "Degraded", "CertificateAuthorityExpiring"]);
    }
  });

  it("leaves status when the hold is raised to the default (the condition list is replaced whole)", () => {
    const warned = desiredSignerStatus(withHold(5), {}, facts)!;
    const fixed = desiredSignerStatus(withHold(600), warned, facts)!;
    expect(fixed.conditions!.map((c) => c.type)).not.to.include("RootPublicationHoldShort");
  });
});

describe("statusWriteDelayMs (pure): count-only changes are paced, everything else is written at once", () => {
  const ready = {
    type: "Ready",
    status: "True",
    reason: "Ready",
    message: "signing",
    lastTransitionTime: "2026-06-01T11:00:00Z",
  } as const;
  const current = { observedGeneration: 3, conditions: [ready], issuedCount: 10, failedCount: 1 };
  const at = now.getTime();
  const cases: [string, SignerStatus, number | undefined, number, number][] = [
    ["counts moved, never written by this instance", { ...current, issuedCount: 11 }, undefined, at, 0],
    ["counts moved 500 ms after the last write", { ...current, issuedCount: 11 }, at - 500, at, 1500],
    ["counts moved 2 s after the last write", { ...current, failedCount: 2 }, at - 2000, at, 0],
    [
      "a condition changed 500 ms after the last write",
      { ...current, issuedCount: 11, conditions: [{ ...ready, status: "False", reason: "NotReady" }] },
      at - 500,
      at,
      0,
    ],
    [
      "observedGeneration changed 1 ms after the last write",
      { ...current, observedGeneration: 4 },
      at - 1,
      at,
      0,
    ],
  ];
  for (const [name, desired, lastWrite, nowMs, expected] of cases)
    it(`${name}: waits ${expected} ms`, () => {
      expect(statusWriteDelayMs(changesOnlyCounts(desired, current), lastWrite, nowMs)).to.equal(expected);
    });
  it("leaves transition times out of the comparison (they move only with the rest)", () => {
    const retimed = {
      ...current,
      issuedCount: 11,
      conditions: [{ ...ready, lastTransitionTime: "2026-06-01T12:00:00Z" }],
    };
    expect(statusWriteDelayMs(changesOnlyCounts(retimed, current), at - 100, at)).to.equal(1900);
  });
});

describe("desiredSignerStatus compares with the status as the API server returns it", () => {
  it("finds nothing to write when the cached status holds the same values in the server's key order", () => {
    const written = desiredSignerStatus(waiting, {}, facts)!;
    // What the API server echoes: the same status, keys sorted, conditions' keys too.
    const sortKeys = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(sortKeys)
        : value && typeof value === "object"
          ? Object.fromEntries(
              Object.entries(value)
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([key, entry]) => [key, sortKeys(entry)]),
            )
          : value;
    const echoed = sortKeys(written) as typeof written;
    expect(Object.keys(echoed)).to.not.deep.equal(Object.keys(written));
    expect(desiredSignerStatus(waiting, echoed, facts)).to.equal(undefined);
  });
});

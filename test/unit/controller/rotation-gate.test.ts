import { expect } from "chai";
import { rotationGate, type RotationGateInput } from "../../../src/controller/rotation-gate.js";
import type { RecordedRoot } from "../../../src/api/signer.js";

const now = new Date("2026-06-01T12:00:00Z");
const ago = (seconds: number): string => new Date(now.getTime() - seconds * 1000).toISOString();
const root = (fingerprintSha256: string, firstPublished?: string): RecordedRoot => ({
  fingerprintSha256,
  subject: `CN=${fingerprintSha256}`,
  notAfter: "2036-01-01T00:00:00Z",
  pem: "",
  ...(firstPublished ? { firstPublished } : {}),
});

describe("rotationGate (which CA material may sign)", () => {
  const base: RotationGateInput = {
    previousAnchor: undefined,
    candidateAnchor: { fingerprintSha256: "B", subject: "CN=B" },
    recorded: [],
    minimumRootPublicationSeconds: 600,
    now,
  };
  const cases: [string, Partial<RotationGateInput>, string, string, Date | undefined][] = [
    [
      "same root as the material in use (an intermediate renewal)",
      { previousAnchor: "B" },
      "adopt",
      "same root",
      undefined,
    ],
    ["a first root, not yet published", {}, "hold", "not yet published", undefined],
    [
      "a first root, just published (no minimum: nobody trusts an older one)",
      { recorded: [root("B", ago(0))] },
      "adopt",
      "first root published",
      undefined,
    ],
    [
      "a new root during a rotation, not yet published",
      { previousAnchor: "A", recorded: [root("A", ago(86400)), root("B")] },
      "hold",
      "not yet published",
      undefined,
    ],
    [
      "a new root published 599 s ago of 600",
      { previousAnchor: "A", recorded: [root("A", ago(86400)), root("B", ago(599))] },
      "hold",
      "published too recently",
      new Date(now.getTime() + 1000),
    ],
    [
      "a new root published exactly 600 s ago",
      { previousAnchor: "A", recorded: [root("A", ago(86400)), root("B", ago(600))] },
      "adopt",
      "published long enough",
      undefined,
    ],
    [
      "the previous CA expired, but a published older root still makes it a rotation (pacing survives restarts)",
      { previousAnchor: undefined, recorded: [root("A", ago(86400)), root("B", ago(10))] },
      "hold",
      "published too recently",
      new Date(now.getTime() + 590_000),
    ],
    [
      "an older root that was never published does not make it a rotation",
      { recorded: [root("A"), root("B", ago(1))] },
      "adopt",
      "first root published",
      undefined,
    ],
  ];
  for (const [name, input, verdict, rule, until] of cases) {
    it(`${name}: ${verdict} (${rule})`, () => {
      const decision = rotationGate({ ...base, ...input });
      expect(decision.verdict).to.equal(verdict);
      expect(decision.rule).to.equal(rule);
      if (decision.verdict === "hold") {
        expect(decision.until?.getTime()).to.equal(until?.getTime());
        const rotating =
          input.previousAnchor ||
          input.recorded?.some((r) => r.fingerprintSha256 !== "B" && r.firstPublished);
        expect(decision.message).to.equal(
          rotating
            ? `root "CN=B" (B) must be in the published trust bundle for 600s before it signs`
            : `root "CN=B" (B) signs once the trust bundle holding it is published (a first root waits for no hold)`,
        );
        expect(decision.message).not.to.contain("for 0s");
      }
    });
  }
});

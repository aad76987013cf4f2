import { expect } from "chai";
import { CsrSigning } from "../../../src/controller/csr-signing.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { jsonLogger } from "../../../src/logger.js";
import type { CsrApi } from "../../../src/controller/csr-api.js";
import type { SignerRegistry } from "../../../src/controller/signer-registry.js";

describe("CsrSigning: WaitingApproval after a grace period", () => {
  let now = 0;
  const reasons: string[] = [];
  const signing = new CsrSigning(
    {} as SignerRegistry, // not consulted while a CSR waits for approval
    {} as CsrApi,
    { record: (_target, _type, reason) => void reasons.push(reason) },
    new ControllerMetrics(),
    jsonLogger({ level: "error", write: () => undefined }),
    { now: () => new Date(now), randomBytes: () => new Uint8Array() },
    10_000,
  );
  const csr = { metadata: { name: "a" }, spec: { signerName: "example.com/foo" } };

  it("comes back when the grace ends, records one Event then, and none again; a forgotten CSR waits afresh", () => {
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "after", milliseconds: 10_000 });
    now = 4_000; // another event meanwhile (an unrelated update): the grace still counts from the first
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "after", milliseconds: 6_000 });
    expect(reasons).to.deep.equal([]);
    now = 10_000;
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "done" });
    now = 60_000;
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "done" });
    expect(reasons).to.deep.equal(["WaitingApproval"]);
    signing.forget("a"); // approved, or gone
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "after", milliseconds: 10_000 });
  });
});

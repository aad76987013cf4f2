import { expect } from "chai";
import { CsrFirstSeen } from "../../../src/controller/csr-first-seen.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";

describe("CsrFirstSeen: the start of csr_signer_issuance_latency_seconds", () => {
  let nowMs = 0;
  const pending = (uid: string, name = "csr-a"): CsrObject => ({
    metadata: { name, uid, creationTimestamp: "2026-12-02T00:00:00Z" },
    spec: { signerName: "example.com/foo" },
  });

  it("counts from the first sighting with sub-second resolution, not from the whole-second creationTimestamp", () => {
    const seen = new CsrFirstSeen(() => nowMs);
    nowMs = 1_000.25;
    seen.saw(pending("u1"));
    nowMs = 1_010.5; // a later update event does not move the start
    seen.saw(pending("u1"));
    nowMs = 1_023.25;
    expect(seen.secondsSince(pending("u1"))).to.be.closeTo(0.023, 1e-9);
  });

  it("forgets a CSR once decided or deleted, and a CSR re-created under its name (new uid) counts afresh", () => {
    const seen = new CsrFirstSeen(() => nowMs);
    nowMs = 0;
    seen.saw(pending("u1"));
    seen.forget(pending("u1"));
    expect(seen.secondsSince(pending("u1"))).to.equal(undefined);
    expect(seen.size).to.equal(0);
    nowMs = 5_000;
    seen.saw(pending("u2"));
    nowMs = 5_040;
    expect(seen.secondsSince(pending("u2"))).to.be.closeTo(0.04, 1e-9);
  });

  it("does not start counting for a CSR already issued, failed or denied (our own status write, a resync)", () => {
    const seen = new CsrFirstSeen(() => nowMs);
    seen.saw({ ...pending("issued"), status: { certificate: "Y2VydA==" } });
    for (const type of ["Failed", "Denied"]) {
      seen.saw({ ...pending(type), status: { conditions: [{ type, status: "True" }] } } as CsrObject);
    }
    expect(seen.size).to.equal(0);
    expect(seen.secondsSince(pending("issued"))).to.equal(undefined);
  });

  it("never reports a negative duration", () => {
    let clock = 100;
    const seen = new CsrFirstSeen(() => clock);
    seen.saw(pending("u3"));
    clock = 50;
    expect(seen.secondsSince(pending("u3"))).to.equal(0);
  });
});

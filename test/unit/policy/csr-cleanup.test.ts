import { expect } from "chai";
import { cleanupReason, defaultCleanupPeriods } from "../../../src/policy/csr-cleanup.js";

describe("cleanupReason (kube-controller-manager's periods, plus approved-but-never-signed)", () => {
  const created = new Date("2030-01-01T00:00:00Z");
  const at = (hours: number) => new Date(created.getTime() + hours * 3600_000);
  const approved = { type: "Approved", status: "True", lastUpdateTime: at(0) };
  it("deletes an issued CSR 1 h after approval, and at once when its certificate expired", () => {
    expect(
      cleanupReason(
        { created, conditions: [approved], certificateNotAfter: at(100) },
        at(0.9),
        defaultCleanupPeriods,
      ),
    ).to.equal(undefined);
    expect(
      cleanupReason(
        { created, conditions: [approved], certificateNotAfter: at(100) },
        at(1),
        defaultCleanupPeriods,
      ),
    ).to.equal("Issued");
    expect(
      cleanupReason(
        { created, conditions: [approved], certificateNotAfter: at(0.5) },
        at(0.5),
        defaultCleanupPeriods,
      ),
    ).to.equal("Expired");
  });
  it("deletes Denied and Failed 1 h after the condition, pending after 24 h, approved-unsigned after its own period", () => {
    expect(
      cleanupReason(
        { created, conditions: [{ type: "Denied", status: "True", lastUpdateTime: at(2) }] },
        at(2.5),
        defaultCleanupPeriods,
      ),
    ).to.equal(undefined);
    expect(
      cleanupReason(
        { created, conditions: [{ type: "Denied", status: "True", lastUpdateTime: at(2) }] },
        at(3),
        defaultCleanupPeriods,
      ),
    ).to.equal("Denied");
    expect(
      cleanupReason(
        { created, conditions: [approved, { type: "Failed", status: "True", lastUpdateTime: at(1) }] },
        at(2),
        defaultCleanupPeriods,
      ),
    ).to.equal("Failed");
    expect(cleanupReason({ created, conditions: [] }, at(23), defaultCleanupPeriods)).to.equal(undefined);
    expect(cleanupReason({ created, conditions: [] }, at(24), defaultCleanupPeriods)).to.equal("Pending");
    expect(cleanupReason({ created, conditions: [approved] }, at(23), defaultCleanupPeriods)).to.equal(
      undefined,
    );
    expect(
      cleanupReason({ created, conditions: [approved] }, at(2), {
        ...defaultCleanupPeriods,
        approvedUnsignedSeconds: 3600,
      }),
    ).to.equal("ApprovedUnsigned");
  });
});

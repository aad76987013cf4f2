import { expect } from "chai";
import { cachedCsr } from "../../../src/controller/csr-cache.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";

const ours = (signerName: string): boolean => signerName === "example.com/ours";
const request = Buffer.from(
  "-----BEGIN CERTIFICATE REQUEST-----\nQUJD\n-----END CERTIFICATE REQUEST-----\n",
).toString("base64");

function csr(status?: CsrObject["status"], signerName = "example.com/ours"): CsrObject {
  return {
    metadata: { name: "a", uid: "u-1", resourceVersion: "7", creationTimestamp: "2026-12-02T10:00:00Z" },
    spec: { signerName, request, usages: ["client auth"], username: "alice" },
    ...(status ? { status } : {}),
  };
}

const approvedCondition = { type: "Approved", status: "True", reason: "R", message: "m" };

describe("cachedCsr: what the CSR cache keeps of spec.request", () => {
  it("keeps the request of our CSR while it may still be signed or approved", () => {
    expect(cachedCsr(csr(), ours).spec?.request).to.equal(request);
    const approved = cachedCsr(csr({ conditions: [approvedCondition] }), ours);
    expect(approved.spec?.request).to.equal(request);
    expect(approved.spec?.requestOmitted).to.equal(undefined);
  });

  it("drops the request of our settled CSR (a certificate, Denied or Failed), keeping its size and the rest", () => {
    const bytes = Buffer.from(request, "base64").length;
    const settled: Array<CsrObject["status"]> = [
      { conditions: [approvedCondition], certificate: "Q0VSVA==" },
      { conditions: [{ type: "Denied", status: "True", reason: "R", message: "m" }] },
      { conditions: [approvedCondition, { type: "Failed", status: "True", reason: "R", message: "m" }] },
    ];
    for (const status of settled) {
      const cached = cachedCsr(csr(status), ours);
      expect(cached.spec?.request, JSON.stringify(status)).to.equal(undefined);
      expect(cached.spec?.requestOmitted).to.deep.equal({ reason: "Settled", bytes });
      expect(cached.spec?.usages).to.deep.equal(["client auth"]);
      // Of a certificate, only its presence and the leaf's NotAfter ("CERT" has none to read).
      expect(cached.status?.certificate).to.equal(undefined);
      expect(cached.status?.certificateOmitted).to.deep.equal(
        status?.certificate ? { reason: "Ours", notAfterMs: undefined } : undefined,
      );
    }
  });

  it("a foreign CSR keeps no request whatever its state (NotOurs)", () => {
    const cached = cachedCsr(csr(undefined, "example.com/theirs"), ours);
    expect(cached.spec?.request).to.equal(undefined);
    expect(cached.spec?.requestOmitted?.reason).to.equal("NotOurs");
  });
});

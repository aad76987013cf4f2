import { expect } from "chai";
import { cachedCsr } from "../../../src/controller/csr-cache.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { WrittenCertificates } from "../../../src/controller/written-certificates.js";

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

describe("cachedCsr and WrittenCertificates: the echo of our own write", () => {
  const certificate = "Q0VSVA=="; // "CERT": no NotAfter to read from it
  const issued = (text: string): CsrObject => csr({ conditions: [approvedCondition], certificate: text });

  it("takes the NotAfter told for exactly the text written, once; any other text under the name is read from its bytes", () => {
    const written = new WrittenCertificates();
    written.writing("a", certificate, 42_000);
    expect(cachedCsr(issued("Q0VSVCE="), ours, written).status?.certificateOmitted).to.deep.equal({
      reason: "Ours",
      notAfterMs: undefined,
    });
    expect(written.size, "another writer's text leaves ours waiting").to.equal(1);
    expect(cachedCsr(issued(certificate), ours, written).status?.certificateOmitted).to.deep.equal({
      reason: "Ours",
      notAfterMs: 42_000,
    });
    expect(written.size).to.equal(0);
    expect(cachedCsr(issued(certificate), ours, written).status?.certificateOmitted).to.deep.equal({
      reason: "Ours",
      notAfterMs: undefined,
    });
  });

  it("a foreign CSR's certificate is never looked up", () => {
    const written = new WrittenCertificates();
    written.writing("a", certificate, 42_000);
    const foreign = csr({ conditions: [approvedCondition], certificate }, "example.com/theirs");
    expect(cachedCsr(foreign, ours, written).status?.certificateOmitted).to.deep.equal({ reason: "NotOurs" });
    expect(written.size).to.equal(1);
  });

  it("holds at most its budget of text, the oldest going first; a name written again counts as new", () => {
    const written = new WrittenCertificates(8, 4);
    written.writing("a", "AAAA", 1);
    written.writing("b", "BBBB", 2);
    written.writing("a", "A2A2", 3); // a moves last: b is now the oldest
    written.writing("c", "CC", 4); // 10 bytes: b goes
    expect(written.size).to.equal(2);
    expect(written.take("b", "BBBB")).to.equal(undefined);
    expect(written.take("a", "AAAA")).to.equal(undefined);
    expect(written.take("a", "A2A2")).to.equal(3);
    expect(written.take("c", "CC")).to.equal(4);
    expect(written.size).to.equal(0);
  });

  it("never keeps a chain longer than its entry limit, and forgets a write that did not go through", () => {
    const written = new WrittenCertificates(64, 4);
    written.writing("long", "LONGER", 1);
    expect(written.size).to.equal(0);
    written.writing("a", "AAAA", 2);
    written.writing("long", "LONGER", 3); // replaces nothing it could keep
    expect(written.size).to.equal(1);
    written.forget("a");
    expect(written.take("a", "AAAA")).to.equal(undefined);
    for (let index = 0; index < 100; index++) written.writing(`n${index}`, "NNNN", index);
    expect(written.size, "64 bytes of 4-byte texts").to.equal(16);
  });
});

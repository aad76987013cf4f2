import { expect } from "chai";
import { isSettled, nextCsrStep, type CsrOwnership } from "../../../src/controller/csr-gates.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";

const withConditions = (...types: string[]): CsrObject => ({
  metadata: { name: "csr" },
  spec: { signerName: "example.com/foo" },
  status: { conditions: types.map((type) => ({ type, status: "True" })) },
});
const pending = withConditions();
const approved = withConditions("Approved");
const issued: CsrObject = { ...approved, status: { ...approved.status, certificate: "Y2VydA==" } };
const issuedForeignCopy: CsrObject = {
  ...approved,
  status: { ...approved.status, certificateOmitted: { reason: "NotOurs" } },
};

const signerOnly = (signer: CsrOwnership["signer"]): CsrOwnership => ({ signer, approving: false });
const approverOnly: CsrOwnership = { signer: "none", approving: true };
const both: CsrOwnership = { signer: "ready", approving: true };

describe("nextCsrStep (the reconcile gate order)", () => {
  const cases: [string, CsrObject | undefined, CsrOwnership, string][] = [
    ["gone from the cache", undefined, both, "skip: gone"],
    [
      "neither our Signer nor our approver (even when approved)",
      approved,
      { signer: "none", approving: false },
      "skip: not ours",
    ],
    ["Denied", withConditions("Denied"), both, "skip: denied or failed"],
    [
      "Failed, then Approved by someone",
      withConditions("Failed", "Approved"),
      both,
      "skip: denied or failed",
    ],
    [
      "Approved and Denied (Denied wins)",
      withConditions("Approved", "Denied"),
      signerOnly("ready"),
      "skip: denied or failed",
    ],
    ["not yet decided, our approver handles it", pending, both, "decide approval"],
    ["not yet decided, approver only (kubelet)", pending, approverOnly, "decide approval"],
    [
      "not yet decided, only our Signer: someone else approves",
      pending,
      signerOnly("ready"),
      "wait for approval",
    ],
    [
      "not yet decided, our Signer cannot sign yet: still waits for approval first",
      pending,
      signerOnly("not ready"),
      "wait for approval",
    ],
    [
      "approved, we approve but do not sign (kube-controller-manager signs)",
      approved,
      approverOnly,
      "skip: approved for a signer we do not run",
    ],
    ["approved, certificate set", issued, signerOnly("ready"), "skip: certificate set"],
    [
      "not approved, yet a certificate set (kube-apiserver takes one from whoever may sign)",
      { ...pending, status: { ...pending.status, certificate: "Y2VydA==" } },
      both,
      "skip: certificate set",
    ],
    [
      "approved, a certificate the cache did not keep",
      issuedForeignCopy,
      signerOnly("ready"),
      "skip: certificate set",
    ],
    ["approved, certificate set, Signer not ready", issued, signerOnly("not ready"), "skip: certificate set"],
    ["approved, Signer not ready", approved, signerOnly("not ready"), "wait for signer"],
    ["approved, Signer ready", approved, signerOnly("ready"), "sign"],
    ["approved by our own approver, Signer ready", approved, both, "sign"],
  ];
  for (const [name, csr, ownership, expected] of cases) {
    it(`${name} -> ${expected}`, () => {
      const next = nextCsrStep(csr, ownership);
      expect(next.step === "skip" ? `skip: ${next.gate}` : next.step).to.equal(expected);
    });
  }
});

describe("isSettled (update events the CSR queue need not see)", () => {
  const cases: [string, CsrObject, boolean][] = [
    ["pending", pending, false],
    ["approved, no certificate yet", approved, false],
    ["approved, certificate set", issued, true],
    ["approved, a certificate the cache did not keep", issuedForeignCopy, true],
    ["Denied", withConditions("Denied"), true],
    ["Failed", withConditions("Approved", "Failed"), true],
    [
      "a Denied condition whose status is False",
      { ...pending, status: { conditions: [{ type: "Denied", status: "False" }] } },
      false,
    ],
    ["an empty certificate", { ...approved, status: { ...approved.status, certificate: "" } }, false],
    [
      "unapproved, with a certificate",
      { ...pending, status: { ...pending.status, certificate: "Y2VydA==" } },
      true,
    ],
  ];
  for (const [name, csr, settled] of cases) {
    it(`${name} -> ${settled ? "settled" : "not settled"}`, () => {
      expect(isSettled(csr)).to.equal(settled);
      // Settled means skipped by every gate, whoever handles the CSR.
      if (settled)
        for (const ownership of [both, approverOnly, signerOnly("ready"), signerOnly("not ready")])
          expect(nextCsrStep(csr, ownership).step).to.equal("skip");
    });
  }
});

import { expect } from "chai";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { approvedUnsignedBySigner } from "../../../src/controller/state-gauges.js";

const condition = (type: string, status: string, time = "2026-12-02T10:00:00Z") => ({
  type,
  status,
  lastUpdateTime: time,
  lastTransitionTime: time,
});

function csr(signerName: string, status: CsrObject["status"]): CsrObject {
  return { metadata: { creationTimestamp: "2026-12-02T09:00:00Z" }, spec: { signerName }, status };
}

describe("state gauges", () => {
  it("counts approved CSRs without certificate, Failed or Denied per signer, with the oldest approval's age", () => {
    const now = new Date("2026-12-02T10:05:00Z");
    const result = approvedUnsignedBySigner(
      [
        csr("example.com/foo", { conditions: [condition("Approved", "True", "2026-12-02T10:00:00Z")] }),
        csr("example.com/foo", { conditions: [condition("Approved", "True", "2026-12-02T10:04:00Z")] }),
        // Issued, failed, denied, not approved, approved False: not waiting.
        csr("example.com/foo", { conditions: [condition("Approved", "True")], certificate: "Y2VydA==" }),
        csr("example.com/foo", {
          conditions: [condition("Approved", "True")],
          certificateOmitted: { reason: "NotOurs" },
        }),
        csr("example.com/foo", { conditions: [condition("Approved", "True"), condition("Failed", "True")] }),
        csr("example.com/foo", { conditions: [condition("Denied", "True")] }),
        csr("example.com/foo", {}),
        csr("example.com/foo", { conditions: [condition("Approved", "False")] }),
        // Not one of ours.
        csr("kubernetes.io/kube-apiserver-client", { conditions: [condition("Approved", "True")] }),
        // No condition time: the CSR's creation.
        csr("example.com/bar", { conditions: [{ type: "Approved", status: "True" }] }),
      ],
      ["example.com/foo", "example.com/bar", "example.com/idle"],
      now,
    );
    expect(Object.fromEntries(result)).to.deep.equal({
      "example.com/foo": { count: 2, oldestSeconds: 300 },
      "example.com/bar": { count: 1, oldestSeconds: 3900 },
      "example.com/idle": { count: 0, oldestSeconds: 0 },
    });
  });
});

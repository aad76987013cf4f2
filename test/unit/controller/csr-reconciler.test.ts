import { expect } from "chai";
import type { CsrApprover } from "../../../src/controller/approver.js";
import type { CsrApi } from "../../../src/controller/csr-api.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { CsrReconciler } from "../../../src/controller/csr-reconciler.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import type { ActiveSigner } from "../../../src/controller/signer-builder.js";
import type { SignerRegistry } from "../../../src/controller/signer-registry.js";
import { jsonLogger } from "../../../src/logger.js";

const signerName = "example.com/foo";

describe("CsrReconciler.queueDelayMs (when a cache event enters the CSR queue)", () => {
  let now = 0;
  const ready = { objectName: "foo", spec: { signerName }, authority: {} } as unknown as ActiveSigner;
  const registry = {
    forSignerName: (name: string) => (name === signerName ? ready : undefined),
  } as unknown as SignerRegistry;
  /** A reconciler over `signers` and `approver`; nothing else is consulted to place an event. */
  const reconcilerOf = (signers: SignerRegistry, approver?: CsrApprover): CsrReconciler =>
    new CsrReconciler(
      signers,
      { get: () => undefined },
      {} as CsrApi,
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "error", write: () => undefined }),
      { now: () => new Date(now), randomBytes: () => new Uint8Array() },
      approver,
      10_000,
    );
  const reconciler = reconcilerOf(registry); // no approver: someone else approves
  const csr = (name: string, signer: string, conditions: string[] = [], certificate?: string): CsrObject => ({
    metadata: { name, uid: `uid-${name}` },
    spec: { signerName: signer },
    status: {
      conditions: conditions.map((type) => ({ type, status: "True" })),
      ...(certificate ? { certificate } : {}),
    },
  });

  it("never queues a foreign or a settled CSR", () => {
    expect(reconciler.queueDelayMs(csr("a", "example.com/other"))).to.equal(undefined);
    expect(reconciler.queueDelayMs(csr("b", signerName, ["Approved"], "Y2VydA=="))).to.equal(undefined);
    expect(reconciler.queueDelayMs(csr("c", signerName, ["Denied"]))).to.equal(undefined);
    expect(reconciler.queueDelayMs(csr("d", signerName, ["Approved", "Failed"]))).to.equal(undefined);
  });

  it("queues an approved CSR at once, and one waiting for approval when its grace period ends", () => {
    now = 1_000;
    expect(reconciler.queueDelayMs(csr("e", signerName, ["Approved"]))).to.equal(0);
    expect(reconciler.queueDelayMs(csr("f", signerName))).to.equal(10_000);
    now = 4_000; // an unrelated update: the grace period counts from the first sighting
    expect(reconciler.queueDelayMs(csr("f", signerName))).to.equal(7_000);
    expect(reconciler.queueDelayMs(csr("f", signerName, ["Approved"]))).to.equal(0);
  });

  it("queues a CSR our approver decides until it is approved, and not the echo of our approval when another signer signs", () => {
    const approving = reconcilerOf(
      { forSignerName: () => undefined } as unknown as SignerRegistry, // kube-controller-manager signs
      { handles: (name: string) => name === "kubernetes.io/kubelet-serving" } as unknown as CsrApprover,
    );
    expect(approving.queueDelayMs(csr("g", "kubernetes.io/kubelet-serving"))).to.equal(0);
    expect(approving.queueDelayMs(csr("g", "kubernetes.io/kubelet-serving", ["Approved"]))).to.equal(
      undefined,
    );
    expect(approving.queueDelayMs(csr("h", signerName))).to.equal(undefined); // neither ours to sign nor to approve
  });
});

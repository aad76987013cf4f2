/**
 * The certificate write checks stillLeading (Leadership.isLeader) after the client's rate limiter
 * and answers "not sent" when it is false. During a late lease renewal isLeader is false and then
 * true again with no onChange, so no new leader and no takeover requeue follow: CsrSigning.sign must
 * look at the CSR again (it answered "done" once, and the approved CSR waited for the 10-minute
 * resync). Found by an adversarial review.
 */
import { expect } from "chai";
import { CsrSigning } from "../../../src/controller/csr-signing.js";
import { Leadership } from "../../../src/controller/leadership.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { jsonLogger } from "../../../src/logger.js";
import { systemIssuanceEnvironment } from "../../../src/pki/issuance.js";
import { settle } from "../../support/manual-clock.js";
import { startedSlowElector, startOneCsrWorker } from "../../support/slow-lease.js";
import { buildTestCertificateRequest, testKey } from "../../support/pki.js";
import { signerRegistryFor } from "../../support/ready-signer-registry.js";

describe("CsrSigning: a certificate write held back by a late lease renewal", () => {
  it("is written once the renewal lands (no takeover will requeue the CSR)", async function () {
    this.timeout(20_000);
    const registry = await signerRegistryFor("late");
    const requestPem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subjectAltNames: { dns: ["web.example.test"] },
    });
    const csr = {
      metadata: { name: "approved-csr", uid: "u", resourceVersion: "1" },
      spec: {
        signerName: "example.com/late",
        username: "admin",
        usages: ["digital signature", "server auth"],
        request: Buffer.from(requestPem).toString("base64"),
      },
    };
    const { clock, store, elector, changes } = await startedSlowElector();
    const leadership = new Leadership(elector, clock);
    leadership.acquired();
    // The write waits in the client's rate limiter (the same slowness that delays the renewal);
    // kubernetesCsrApi asks stillLeading (isLeader) once it is through.
    let releaseLimiter: () => void = () => undefined;
    let limited = true;
    const outcomes: string[] = [];
    const patchStatus = async (): Promise<"ok" | "not sent"> => {
      if (limited) await new Promise<void>((resolve) => (releaseLimiter = resolve));
      const outcome = leadership.isLeader ? "ok" : "not sent";
      outcomes.push(outcome);
      return outcome;
    };
    const signing = new CsrSigning(
      registry,
      {
        read: () => Promise.resolve(csr),
        patchStatus,
        patchStatusJson: () => Promise.reject(new Error("no condition")),
        replaceStatus: () => Promise.reject(new Error("no PUT")),
      },
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "error", write: () => undefined }),
      systemIssuanceEnvironment,
    );
    // CsrReconciler.reconcile answers signing.sign's result for an approved CSR of a ready Signer.
    const { queues, stop } = startOneCsrWorker(clock, leadership, () => signing.sign(csr, csr), csr);
    await settle();
    queues.csrs.add("approved-csr"); // approved while leading: the worker takes it and signs
    for (let i = 0; i < 50 && outcomes.length === 0 && releaseLimiter.toString().includes("undefined"); i++)
      await new Promise((r) => setTimeout(r, 20));
    store.hold = true; // the renewal at 2 s hangs
    await clock.advanceSettling(2_000);
    clock.advance(8_500); // past the renew deadline
    expect(leadership.isLeader).to.equal(false);
    limited = false;
    releaseLimiter(); // the write gets through the limiter now: "not sent"
    await settle();
    await settle();
    store.letThrough(); // the renewal lands: leading again, no onChange
    await settle();
    expect(leadership.isLeader).to.equal(true);
    expect(changes).to.deep.equal([true]);
    await clock.advanceSettling(60_000);
    await settle();
    await elector.stop();
    await stop();
    expect(outcomes, "write outcomes").to.deep.equal(["not sent", "ok"]);
  });
});

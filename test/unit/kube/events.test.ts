import { expect } from "chai";
import { KubernetesEventRecorder, type EventWriter } from "../../../src/kube/events.js";
import { silentLogger } from "../../support/silent-logger.js";

/** A stand-in writer that counts the Events it is given. */
function countingApi(): { api: EventWriter; sent: string[] } {
  const sent: string[] = [];
  const api: EventWriter = {
    createEvent: async (_namespace, event) => {
      sent.push(`${event.involvedObject.name}:${event.reason}`);
    },
  };
  return { api, sent };
}

const target = (name: string) => ({
  apiVersion: "certificates.k8s.io/v1",
  kind: "CertificateSigningRequest",
  name,
  uid: `uid-${name}`,
});

describe("KubernetesEventRecorder (its own budget: a restart with thousands of pending CSRs must not flood the API)", () => {
  it("drops a repeat of the same object, reason and message within the window", async () => {
    const { api, sent } = countingApi();
    const recorder = new KubernetesEventRecorder(api, "csr-signer", "test", silentLogger, {
      ratePerSecond: 1000,
      burst: 1000,
      maxQueued: 100,
      repeatWindowMs: 60_000,
    });
    recorder.record(target("a"), "Normal", "WaitingApproval", "waiting");
    recorder.record(target("a"), "Normal", "WaitingApproval", "waiting");
    recorder.record(target("b"), "Normal", "WaitingApproval", "waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).to.deep.equal(["a:WaitingApproval", "b:WaitingApproval"]);
    expect(recorder.dropped).to.equal(1);
  });

  it("drops what exceeds the queue instead of queueing without bound, and paces the rest", async () => {
    const { api, sent } = countingApi();
    const recorder = new KubernetesEventRecorder(api, "csr-signer", "test", silentLogger, {
      ratePerSecond: 50,
      burst: 5,
      maxQueued: 10,
      repeatWindowMs: 60_000,
    });
    for (let i = 0; i < 1000; i++)
      recorder.record(target(`csr-${i}`), "Normal", "WaitingApproval", "waiting");
    expect(recorder.dropped).to.be.at.least(1000 - 10 - 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sent.length).to.be.below(11); // the burst, not the thousand
  });
});

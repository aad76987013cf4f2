import { expect } from "chai";
import {
  defaultEventBudget,
  KubernetesEventRecorder,
  type EventBudget,
  type EventWriter,
} from "../../../src/kube/events.js";
import { eventTarget, requesterKey, requesterTenant } from "../../../src/controller/csr-object.js";
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

/** An API server that answers nothing until `release`: what follows the first Event stays queued. */
function blockedApi(): { api: EventWriter; sent: string[]; release: () => void } {
  const sent: string[] = [];
  let release!: () => void;
  const blocked = new Promise<void>((resolve) => (release = resolve));
  const api: EventWriter = {
    createEvent: async (_namespace, event) => {
      await blocked;
      sent.push(`${event.involvedObject.name}:${event.reason}`);
    },
  };
  return { api, sent, release };
}

/**
 * A recorder at time 0 whose overall budget never binds (1,000 a second, 100 queued), with the
 * shares given, telling each drop's cause to `causes`.
 */
function recorderWithShares(
  api: EventWriter,
  shares: Pick<EventBudget, "perObject" | "perTenant" | "perRequester">,
  causes: string[],
): KubernetesEventRecorder {
  return new KubernetesEventRecorder(
    api,
    "csr-signer",
    "test",
    silentLogger,
    { ratePerSecond: 1000, burst: 1000, maxQueued: 100, repeatWindowMs: 60_000, ...shares },
    () => 0,
    (cause) => causes.push(cause),
  );
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

describe("KubernetesEventRecorder: one object's share (a tenant churning its CA Secret must not silence other objects)", () => {
  const signer = {
    apiVersion: "csr-signer.io/v1alpha1",
    kind: "Signer",
    name: "tenant-a",
    uid: "uid-tenant-a",
  };
  const flush = () => new Promise((resolve) => setImmediate(resolve));

  it("allows one object a burst of 25 Events, then one per 5 minutes, while other objects' Events go out", async () => {
    const { api, sent } = countingApi();
    let now = 1_000_000;
    const recorder = new KubernetesEventRecorder(
      api,
      "csr-signer",
      "test",
      silentLogger,
      { ...defaultEventBudget, ratePerSecond: 1000, burst: 1000 },
      () => now,
    );
    // Each rewrite of the Secret gives a different message, so the repeat window does not drop them.
    for (let i = 0; i < 40; i++) {
      recorder.record(signer, "Warning", "CertificateAuthorityUpdateRefused", `attempt ${i}`);
      await flush();
    }
    expect(sent.filter((event) => event.startsWith("tenant-a:")).length).to.equal(25);
    recorder.record(target("b"), "Warning", "SignerNotAllowed", "refused");
    await flush();
    expect(sent.at(-1)).to.equal("b:SignerNotAllowed");
    now += 5 * 60_000;
    recorder.record(signer, "Warning", "CertificateAuthorityUpdateRefused", "attempt 40");
    recorder.record(signer, "Warning", "CertificateAuthorityUpdateRefused", "attempt 41");
    await flush();
    expect(sent.filter((event) => event.startsWith("tenant-a:")).length).to.equal(26);
    expect(recorder.dropped).to.equal(15 + 1);
  });

  it("never lets one object hold more than its share of the queue: another object's Warning still gets a slot", async () => {
    const { api, sent, release } = blockedApi(); // the API server is slow: what follows the first stays queued
    const recorder = new KubernetesEventRecorder(api, "csr-signer", "test", silentLogger, {
      ...defaultEventBudget,
      ratePerSecond: 1000,
      burst: 1000,
      perObject: { burst: 1000, refillEveryMs: 1000, maxQueued: 10 },
    });
    for (let i = 0; i < 150; i++)
      recorder.record(signer, "Normal", "CertificateAuthorityRotated", `rotation ${i}`);
    recorder.record(target("csr-b"), "Warning", "SignerNotAllowed", "refused");
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).to.include("csr-b:SignerNotAllowed");
    // The one being written when the rest queued, then its 10 slots.
    expect(sent.filter((event) => event.startsWith("tenant-a:")).length).to.equal(11);
  });
});

describe("KubernetesEventRecorder: per-object shares stay bounded", () => {
  it("remembers at most 10,000 objects, forgetting the least recently recorded, never the one recording in a loop", async () => {
    const { api, sent } = countingApi();
    const recorder = new KubernetesEventRecorder(
      api,
      "csr-signer",
      "test",
      silentLogger,
      { ...defaultEventBudget, ratePerSecond: 1e9, burst: 1e9, maxQueued: 1e9 },
      () => 0,
    );
    const spammer = {
      apiVersion: "csr-signer.io/v1alpha1",
      kind: "Signer",
      name: "spammer",
      uid: "uid-spammer",
    };
    for (let i = 0; i < 30; i++)
      recorder.record(spammer, "Normal", "CertificateAuthorityRotated", `rotation ${i}`);
    for (let i = 0; i < 12_000; i++) {
      recorder.record(target(`csr-${i}`), "Normal", "Issued", "issued");
      if (i % 50 === 0) recorder.record(spammer, "Normal", "CertificateAuthorityRotated", `later ${i}`);
      if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(recorder.trackedObjects).to.be.at.most(10_000);
    // Its share was never forgotten: 25 Events in all, however many other objects came and went.
    expect(sent.filter((event) => event.startsWith("spammer:")).length).to.equal(25);
  });
});

describe("KubernetesEventRecorder: one tenant's share (a tenant creating requests by the hundred must not silence another)", () => {
  const csr = (name: string, username: string, signerName = "example.com/team") =>
    eventTarget({ metadata: { name, uid: `uid-${name}` }, spec: { username, signerName } });

  it("keeps another tenant's Denied Warning when one tenant floods with 300 denied CSRs, each a fresh object", async () => {
    const { api, sent } = countingApi();
    const recorder = new KubernetesEventRecorder(api, "csr-signer", "test", silentLogger, undefined, () => 0);
    for (let i = 0; i < 300; i++)
      recorder.record(
        csr(`attacker-${i}`, `system:serviceaccount:attacker:sa-${i % 7}`),
        "Warning",
        "SignerNotAllowed",
        "refused",
      );
    recorder.record(
      csr("victim", "system:serviceaccount:victim:default"),
      "Warning",
      "SignerNotAllowed",
      "refused",
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).to.include("victim:SignerNotAllowed");
    // The attacker's namespace had its 20 slots (and the one being written), not the queue's 100.
    expect(sent.filter((event) => event.startsWith("attacker-")).length).to.be.at.most(21);
  });

  it("takes a tenant's share for all its objects, so its burst runs out across objects", async () => {
    const { api, sent } = countingApi();
    let now = 0;
    const recorder = new KubernetesEventRecorder(
      api,
      "csr-signer",
      "test",
      silentLogger,
      { ...defaultEventBudget, ratePerSecond: 1e6, burst: 1e6, maxQueued: 1e6 },
      () => now,
    );
    for (let i = 0; i < 80; i++) {
      recorder.record(csr(`alice-${i}`, "alice"), "Normal", "Issued", "issued");
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sent.length).to.equal(50);
    now += 6_000; // one more after the tenant's refill
    recorder.record(csr("alice-80", "alice"), "Normal", "Issued", "issued");
    recorder.record(csr("alice-81", "alice"), "Normal", "Issued", "issued");
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.length).to.equal(51);
  });

  it("folds a namespace's service accounts into one tenant per signer name; any other requester is its own", () => {
    const signer = "example.com/a";
    expect(requesterTenant(signer, "system:serviceaccount:team-a:builder")).to.equal(
      requesterTenant(signer, "system:serviceaccount:team-a:other"),
    );
    expect(requesterTenant(signer, "system:serviceaccount:team-a:builder")).not.to.equal(
      requesterTenant("example.com/b", "system:serviceaccount:team-a:builder"),
    );
    expect(requesterTenant(signer, "system:node:worker-1")).not.to.equal(
      requesterTenant(signer, "system:node:worker-2"),
    );
    expect(requesterTenant(signer, undefined)).to.equal(undefined);
  });

  it("keeps istiod's tenants apart: one tenant's Issued Events leave another's refusal Warning its share", async () => {
    const { api, sent } = countingApi();
    const recorder = new KubernetesEventRecorder(api, "csr-signer", "test", silentLogger, undefined, () => 0);
    const istiod = "system:serviceaccount:istio-system:istiod";
    for (let i = 0; i < 300; i++)
      recorder.record(csr(`busy-${i}`, istiod, "istio.example.com/busy"), "Normal", "Issued", "issued");
    recorder.record(
      csr("victim", istiod, "istio.example.com/quiet"),
      "Warning",
      "SignerNotAllowed",
      "refused",
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).to.include("victim:SignerNotAllowed");
  });
});

describe("KubernetesEventRecorder: dropped Events are told by cause (csr_signer_events_dropped_total)", () => {
  it("reports a repeat, a full queue, a spent object share and a spent tenant share, each as its cause", async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const api: EventWriter = { createEvent: async () => blocked };
    const causes: string[] = [];
    const recorder = new KubernetesEventRecorder(
      api,
      "csr-signer",
      "test",
      silentLogger,
      {
        ratePerSecond: 1000,
        burst: 1000,
        maxQueued: 3,
        repeatWindowMs: 60_000,
        perObject: { burst: 1, refillEveryMs: 60_000, maxQueued: 10 },
        perTenant: { burst: 2, refillEveryMs: 60_000, maxQueued: 10 },
      },
      () => 0,
      (cause) => causes.push(cause),
    );
    const of = (name: string, tenant: string) => ({ ...target(name), tenant });
    recorder.record(of("a", "t1"), "Normal", "Issued", "issued"); // written (the writer holds it)
    recorder.record(of("a", "t1"), "Normal", "Issued", "issued"); // repeat
    recorder.record(of("a", "t1"), "Normal", "Issued", "again"); // object: its one token is spent
    recorder.record(of("b", "t1"), "Normal", "Issued", "issued"); // queued: the tenant's second token
    recorder.record(of("c", "t1"), "Normal", "Issued", "issued"); // tenant: its two tokens are spent
    recorder.record(of("d", "t2"), "Normal", "Issued", "issued"); // queued
    recorder.record(of("e", "t3"), "Normal", "Issued", "issued"); // queued (3 of 3)
    recorder.record(of("f", "t4"), "Normal", "Issued", "issued"); // queue
    expect(causes).to.deep.equal(["repeat", "object", "tenant", "queue"]);
    expect(recorder.dropped).to.equal(4);
    release();
  });

  it("asks a known tenant's share first: once it is spent, even a repeat is told as the tenant's", () => {
    const causes: string[] = [];
    const recorder = recorderWithShares(
      { createEvent: async () => new Promise<void>(() => undefined) },
      {
        perObject: { burst: 5, refillEveryMs: 60_000, maxQueued: 10 },
        perTenant: { burst: 2, refillEveryMs: 60_000, maxQueued: 10 },
      },
      causes,
    );
    const of = (name: string) => ({ ...target(name), tenant: "t1" });
    recorder.record(of("a"), "Normal", "Issued", "issued"); // queued: the tenant's first token
    recorder.record(of("a"), "Normal", "Issued", "issued"); // repeat: the tenant still has one
    recorder.record(of("b"), "Normal", "Issued", "issued"); // queued: its second
    recorder.record(of("a"), "Normal", "Issued", "issued"); // tenant: asked before the repeat
    recorder.record(of("c"), "Normal", "Issued", "issued"); // tenant
    expect(causes).to.deep.equal(["repeat", "tenant", "tenant"]);
    expect(recorder.trackedObjects).to.equal(2);
  });

  it("a spent tenant share is asked before the full queue too: its Events count as the tenant's, another tenant's as the queue's", () => {
    const causes: string[] = [];
    const recorder = new KubernetesEventRecorder(
      { createEvent: async () => new Promise<void>(() => undefined) },
      "csr-signer",
      "test",
      silentLogger,
      {
        ratePerSecond: 1000,
        burst: 1000,
        maxQueued: 1,
        repeatWindowMs: 60_000,
        perObject: { burst: 5, refillEveryMs: 60_000, maxQueued: 10 },
        perTenant: { burst: 2, refillEveryMs: 60_000, maxQueued: 10 },
      },
      () => 0,
      (cause) => causes.push(cause),
    );
    recorder.record({ ...target("a"), tenant: "t1" }, "Normal", "Issued", "issued"); // being sent (the writer holds it)
    recorder.record({ ...target("b"), tenant: "t1" }, "Normal", "Issued", "issued"); // queued: t1 spent, queue full
    recorder.record({ ...target("c"), tenant: "t1" }, "Normal", "Issued", "issued"); // tenant
    recorder.record({ ...target("d"), tenant: "t2" }, "Normal", "Issued", "issued"); // queue
    expect(causes).to.deep.equal(["tenant", "queue"]);
  });

  it("an Event dropped for its tenant's share makes no share for its object (a new one per CSR issued under load)", () => {
    const causes: string[] = [];
    const recorder = recorderWithShares(
      { createEvent: async () => new Promise<void>(() => undefined) },
      {
        perObject: { burst: 1, refillEveryMs: 60_000, maxQueued: 10 },
        perTenant: { burst: 1, refillEveryMs: 60_000, maxQueued: 10 },
      },
      causes,
    );
    for (const name of ["a", "b", "c", "d"])
      recorder.record({ ...target(name), tenant: "t1" }, "Normal", "Issued", "issued");
    expect(causes).to.deep.equal(["tenant", "tenant", "tenant"]);
    expect(recorder.trackedObjects, "only the object whose Event was queued").to.equal(1);
  });
});

describe("KubernetesEventRecorder: one requester's share (CSRs to many signer names must not silence another tenant)", () => {
  const csr = (name: string, username: string, signerName: string) =>
    eventTarget({ metadata: { name, uid: `uid-${name}` }, spec: { username, signerName } });

  it("keeps another tenant's Denied Warning when one namespace sends 300 denied CSRs across 30 signer names", async () => {
    const { api, sent, release } = blockedApi(); // the API server is slow: what follows the first stays queued
    const causes: string[] = [];
    const recorder = new KubernetesEventRecorder(
      api,
      "csr-signer",
      "test",
      silentLogger,
      { ...defaultEventBudget, ratePerSecond: 1000, burst: 1000 },
      () => 0,
      (cause) => causes.push(cause),
    );
    // Each signer name is a tenant of its own (10 CSRs each, within its 20 slots): only the
    // requester's share holds the namespace back.
    for (let i = 0; i < 300; i++)
      recorder.record(
        csr(`attacker-${i}`, `system:serviceaccount:attacker:sa-${i % 7}`, `example.com/signer-${i % 30}`),
        "Warning",
        "SignerNotAllowed",
        "refused",
      );
    recorder.record(
      csr("victim", "system:serviceaccount:victim:default", "example.com/victim"),
      "Warning",
      "SignerNotAllowed",
      "refused",
    );
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).to.include("victim:SignerNotAllowed");
    // The one being written when the rest queued, then the requester's 40 slots, not the queue's 100.
    expect(sent.filter((event) => event.startsWith("attacker-")).length).to.equal(41);
    expect(causes).to.have.length(300 - 41);
    expect(new Set(causes)).to.deep.equal(new Set(["requester"]));
  });

  it("holds a requester to queue slots, not to a rate: istiod's busy tenants do not spend another tenant's Events", async () => {
    const { api, sent } = countingApi();
    const recorder = new KubernetesEventRecorder(
      api,
      "csr-signer",
      "test",
      silentLogger,
      { ...defaultEventBudget, ratePerSecond: 1e6, burst: 1e6, maxQueued: 1e6 },
      () => 0,
    );
    const istiod = "system:serviceaccount:istio-system:istiod";
    // Three busy tenants at their full burst (50 each), written as they come: 150 Events of one requester.
    for (let i = 0; i < 150; i++) {
      recorder.record(csr(`busy-${i}`, istiod, `example.com/busy-${i % 3}`), "Normal", "Issued", "issued");
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sent.length).to.equal(150);
    // Every other tenant of the same requester still gets its Warning out.
    for (let i = 0; i < 20; i++)
      recorder.record(
        csr(`quiet-${i}`, istiod, `example.com/quiet-${i}`),
        "Warning",
        "SignerNotAllowed",
        "refused",
      );
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.filter((event) => event.startsWith("quiet-")).length).to.equal(20);
  });

  it("reports a full requester share as its cause, and a drop spends none of the tenant's tokens", async () => {
    const { api, sent, release } = blockedApi(); // the API server is slow: what follows the first stays queued
    const causes: string[] = [];
    const recorder = recorderWithShares(
      api,
      {
        perObject: { burst: 10, refillEveryMs: 60_000, maxQueued: 10 },
        perTenant: { burst: 1, refillEveryMs: 60_000, maxQueued: 10 },
        perRequester: { maxQueued: 1 },
      },
      causes,
    );
    const of = (name: string, tenant: string, requester?: string) => ({
      ...target(name),
      tenant,
      ...(requester ? { requester } : {}),
    });
    recorder.record(of("a", "t1", "r1"), "Normal", "Issued", "issued"); // being written: out of the queue
    recorder.record(of("b", "t2", "r1"), "Normal", "Issued", "issued"); // queued: r1's one slot
    recorder.record(of("c", "t3", "r1"), "Normal", "Issued", "issued"); // requester: r1's slot is taken
    recorder.record(of("d", "t3"), "Normal", "Issued", "issued"); // queued: t3's one token was kept
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(causes).to.deep.equal(["requester"]);
    expect(sent).to.deep.equal(["a:Issued", "b:Issued", "d:Issued"]);
  });

  it("keys a CSR's requester share by its namespace (service accounts) or username, whatever the signer name", () => {
    const targetOf = (username: string | undefined, signerName: string) =>
      eventTarget({ metadata: { name: "x", uid: "uid-x" }, spec: { username, signerName } });
    expect(targetOf("system:serviceaccount:team-a:builder", "example.com/a").requester).to.equal(
      "namespace:team-a",
    );
    expect(targetOf("system:serviceaccount:team-a:other", "example.com/b").requester).to.equal(
      "namespace:team-a",
    );
    expect(targetOf("system:node:worker-1", "example.com/a").requester).to.equal("user:system:node:worker-1");
    expect(targetOf(undefined, "example.com/a")).not.to.have.property("requester");
    expect(requesterKey("system:serviceaccount:team-b:builder")).not.to.equal(
      requesterKey("system:serviceaccount:team-a:builder"),
    );
    // The tenant still has the signer name: one requester, two signer names, two tenant shares.
    expect(targetOf("alice", "example.com/a").tenant).not.to.equal(targetOf("alice", "example.com/b").tenant);
  });
});

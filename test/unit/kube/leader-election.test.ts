import { expect } from "chai";
import { KubeApiError } from "../../../src/kube/client.js";
import {
  LeaderElector,
  leaderElectionTimingsProblem,
  type Lease,
  type LeaseStore,
} from "../../../src/kube/leader-election.js";
import type { Clock } from "../../../src/api/clock.js";
import { ManualClock, settle } from "../../support/manual-clock.js";

/** One Lease in memory with the API server's rules: create fails if it exists, a stale replace is a conflict. */
class MemoryLeaseStore implements LeaseStore {
  lease: Lease | undefined;
  private version = 0;
  /** When set, every call fails with it (the API server unreachable or refusing). */
  failing: Error | undefined;

  /** Puts a Lease in place as another writer would. */
  seed(lease: Lease): void {
    this.lease = { ...lease, metadata: { ...lease.metadata, resourceVersion: this.next() } };
  }

  async read(): Promise<Lease | undefined> {
    if (this.failing) throw this.failing;
    return this.lease && structuredClone(this.lease);
  }
  async create(lease: Lease): Promise<void> {
    if (this.failing) throw this.failing;
    if (this.lease) throw new KubeApiError(409, "AlreadyExists", "lease exists");
    this.lease = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: this.next() } };
  }
  async replace(lease: Lease): Promise<void> {
    if (this.failing) throw this.failing;
    if (!this.lease) throw new KubeApiError(404, "NotFound", "no lease");
    if (lease.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion)
      throw new KubeApiError(409, "Conflict", "the object has been modified");
    this.lease = { ...structuredClone(lease), metadata: { ...lease.metadata, resourceVersion: this.next() } };
  }
  private next(): string {
    return String(++this.version);
  }
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function elector(store: LeaseStore, clock: Clock, identity: string, jitter = 0) {
  const changes: boolean[] = [];
  const candidate = new LeaderElector(store, {
    namespace: "csr-signer",
    name: "csr-signer",
    identity,
    ...timings,
    clock,
    jitter: () => jitter,
  });
  candidate.onChange((leading) => changes.push(leading));
  return { candidate, changes };
}

describe("LeaderElector (client-go's Lease semantics, on a manual clock)", () => {
  it("creates a missing Lease and leads, holding it with MicroTime acquire and renew times", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    const { candidate, changes } = elector(store, clock, "a");
    candidate.start();
    await settle();
    expect(candidate.isLeader).to.equal(true);
    expect(changes).to.deep.equal([true]);
    expect(store.lease?.spec).to.deep.equal({
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      acquireTime: "2026-12-01T00:00:00.000000Z",
      renewTime: "2026-12-01T00:00:00.000000Z",
      leaseTransitions: 0,
    });
    await candidate.stop();
  });

  it("renews every retry period while it leads", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    const { candidate, changes } = elector(store, clock, "a");
    candidate.start();
    await settle();
    await clock.advanceSettling(2_000);
    expect(store.lease?.spec?.renewTime).to.equal("2026-12-01T00:00:02.000000Z");
    expect(store.lease?.spec?.acquireTime).to.equal("2026-12-01T00:00:00.000000Z");
    await clock.advanceSettling(2_000);
    expect(store.lease?.spec?.renewTime).to.equal("2026-12-01T00:00:04.000000Z");
    expect(candidate.isLeader).to.equal(true);
    expect(changes).to.deep.equal([true]);
    await candidate.stop();
  });

  it("leaves a Lease another holder renewed alone until it expires, then takes it over as a transition", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    // "a" renewed it just now and then stopped renewing without releasing it (a crash).
    store.seed({
      metadata: { name: "csr-signer", namespace: "csr-signer" },
      spec: {
        holderIdentity: "a",
        leaseDurationSeconds: 15,
        acquireTime: "2026-12-01T00:00:00.000000Z",
        renewTime: "2026-12-01T00:00:00.000000Z",
        leaseTransitions: 0,
      },
    });
    const second = elector(store, clock, "b");
    second.candidate.start();
    await settle();
    expect(second.candidate.isLeader).to.equal(false);
    await clock.advanceSettling(14_000);
    expect(store.lease?.spec?.holderIdentity).to.equal("a");
    expect(second.candidate.isLeader).to.equal(false);
    // Expired at 15 s; taken at the first retry after that.
    await clock.advanceSettling(2_000);
    expect(second.candidate.isLeader).to.equal(true);
    expect(second.changes).to.deep.equal([true]);
    expect(store.lease?.spec).to.deep.equal({
      holderIdentity: "b",
      leaseDurationSeconds: 15,
      acquireTime: "2026-12-01T00:00:16.000000Z",
      renewTime: "2026-12-01T00:00:16.000000Z",
      leaseTransitions: 1,
    });
    await second.candidate.stop();
  });

  it("steps down once it could not renew for the renew deadline, before the Lease expires for others", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    // Retries every 2.2 s (0.1 jitter): rounds at 0, 2.2, ... 8.8, 11 s, so the 10 s deadline falls between two.
    const { candidate, changes } = elector(store, clock, "a", 0.1);
    candidate.start();
    await settle();
    store.failing = new KubeApiError(503, "ServiceUnavailable", "etcd unavailable");
    await clock.advanceSettling(9_999);
    expect(candidate.isLeader).to.equal(true);
    await clock.advanceSettling(1);
    // isLeader answers from the clock at once; the listener hears it at the next round.
    expect(candidate.isLeader).to.equal(false);
    expect(changes).to.deep.equal([true]);
    await clock.advanceSettling(1_000);
    expect(changes).to.deep.equal([true, false]);
    expect(clock.now() - Date.parse(store.lease!.spec!.renewTime!)).to.be.below(timings.leaseDurationMs);
    store.failing = undefined;
    await clock.advanceSettling(2_200);
    expect(candidate.isLeader).to.equal(true);
    expect(changes).to.deep.equal([true, false, true]);
    expect(store.lease?.spec?.leaseTransitions).to.equal(0); // the same holder again: no transition
    await candidate.stop();
  });

  it("a Lease read that took 9 s ages from when its answer arrived, not from when it was asked for", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    store.seed({
      metadata: { name: "csr-signer", namespace: "csr-signer" },
      spec: { holderIdentity: "a", leaseDurationSeconds: 15, renewTime: "2026-12-01T00:00:00.000000Z" },
    });
    let slowReads = 1;
    const slow: LeaseStore = {
      read: async () => {
        if (slowReads-- > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, 9_000));
        return store.read();
      },
      create: (lease) => store.create(lease),
      replace: (lease) => store.replace(lease),
    };
    const follower = elector(slow, clock, "b");
    follower.candidate.start();
    // Seen at 9 s: expires at 24 s by this instance's clock, not at 15 s.
    await clock.advanceSettling(20_000);
    expect(follower.candidate.isLeader).to.equal(false);
    await clock.advanceSettling(6_000);
    expect(follower.candidate.isLeader).to.equal(true);
    await follower.candidate.stop();
  });

  it("a follower whose clock runs 20 s ahead never takes over from a leader that keeps renewing", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const ahead = { now: () => clock.now() + 20_000, setTimeout: clock.setTimeout.bind(clock) };
    const store = new MemoryLeaseStore();
    const leader = elector(store, clock, "a");
    leader.candidate.start();
    await settle();
    const follower = elector(store, ahead, "b");
    follower.candidate.start();
    for (let round = 0; round < 30; round++) {
      await clock.advanceSettling(1_000);
      expect(follower.candidate.isLeader).to.equal(false);
      expect(store.lease?.spec?.holderIdentity).to.equal("a");
    }
    // Once the leader stops renewing (gone without releasing), the follower takes over a lease
    // duration after it last saw the Lease change, by its own clock.
    await leader.candidate.stop();
    store.seed({ ...store.lease!, spec: { ...store.lease!.spec, holderIdentity: "a" } });
    await clock.advanceSettling(17_000);
    expect(follower.candidate.isLeader).to.equal(true);
    await follower.candidate.stop();
  });

  it("two candidates racing for a free Lease: exactly one leads (create and replace are compare-and-swap)", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    const first = elector(store, clock, "a");
    const second = elector(store, clock, "b");
    first.candidate.start();
    second.candidate.start();
    await settle();
    for (let round = 0; round < 5; round++) {
      expect([first.candidate.isLeader, second.candidate.isLeader].filter(Boolean)).to.have.length(1);
      await clock.advanceSettling(2_000);
    }
    expect(store.lease?.spec?.holderIdentity).to.equal(first.candidate.isLeader ? "a" : "b");
    await first.candidate.stop();
    await second.candidate.stop();
  });

  it("stop() releases the Lease (no holder, 1 s) so a peer takes over at its next retry", async () => {
    const clock = new ManualClock(Date.parse("2026-12-01T00:00:00Z"));
    const store = new MemoryLeaseStore();
    const first = elector(store, clock, "a");
    const second = elector(store, clock, "b");
    first.candidate.start();
    await settle();
    second.candidate.start();
    await settle();
    await first.candidate.stop();
    expect(first.changes).to.deep.equal([true, false]);
    expect(store.lease?.spec?.holderIdentity).to.equal(undefined);
    expect(store.lease?.spec?.leaseDurationSeconds).to.equal(1);
    await clock.advanceSettling(2_000);
    expect(second.candidate.isLeader).to.equal(true);
    expect(store.lease?.spec?.leaseTransitions).to.equal(1);
    await second.candidate.stop();
  });
});

describe("leader election timings (client-go's NewLeaderElector checks)", () => {
  it("accepts client-go's defaults and refuses what lets two leaders overlap or leaves no retry", () => {
    expect(leaderElectionTimingsProblem(timings)).to.equal(undefined);
    expect(leaderElectionTimingsProblem({ ...timings, leaseDurationMs: 10_000 })).to.equal(
      "the lease duration must be greater than the renew deadline",
    );
    // 10 s is not more than 1.2 x 8.4 s: the last jittered retry could land after the deadline.
    expect(leaderElectionTimingsProblem({ ...timings, retryPeriodMs: 8_400 })).to.match(
      /renew deadline must be greater than the retry period times 1.2/,
    );
    expect(leaderElectionTimingsProblem({ ...timings, retryPeriodMs: 8_300 })).to.equal(undefined);
    expect(leaderElectionTimingsProblem({ ...timings, retryPeriodMs: 0 })).to.match(/must be positive/);
  });

  it("refuses a lease over 1h (setTimeout fires a > 2^31-1 ms timer after 1 ms: a Lease write loop) and a retry under 100ms", () => {
    const long = { leaseDurationMs: 3_600_001, renewDeadlineMs: 60_000, retryPeriodMs: 2_000 };
    expect(leaderElectionTimingsProblem(long)).to.match(/the lease duration must be at most 1h/);
    // 2^31 ms: client-go's rules alone accept it.
    expect(leaderElectionTimingsProblem({ ...long, leaseDurationMs: 2 ** 31 })).to.match(/at most 1h/);
    expect(leaderElectionTimingsProblem({ ...long, leaseDurationMs: 3_600_000 })).to.equal(undefined);
    expect(leaderElectionTimingsProblem({ ...timings, retryPeriodMs: 99 })).to.equal(
      "the retry period must be at least 100ms (shorter writes the Lease in a tight loop)",
    );
    expect(leaderElectionTimingsProblem({ ...timings, retryPeriodMs: 100 })).to.equal(undefined);
  });

  it("refuses to build an elector with such timings", () => {
    const store = new MemoryLeaseStore();
    expect(
      () =>
        new LeaderElector(store, {
          namespace: "csr-signer",
          name: "csr-signer",
          identity: "a",
          ...timings,
          renewDeadlineMs: 15_000,
        }),
    ).to.throw(/leader election: the lease duration must be greater than the renew deadline/);
  });
});

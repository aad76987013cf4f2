import { expect } from "chai";
import { WorkQueue } from "../../../src/controller/work-queue.js";
import { ManualClock } from "../../support/manual-clock.js";

/** Lets every pending promise callback run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const limits = { baseDelayMs: 5, maxDelayMs: 1000, ratePerSecond: 10, burst: 100 };

describe("WorkQueue", () => {
  it("queues a key once however often it is added", async () => {
    const queue = new WorkQueue(new ManualClock(), limits);
    queue.add("a");
    queue.add("a");
    queue.add("b");
    expect(queue.length).to.equal(2);
    expect(await queue.get()).to.equal("a");
    expect(await queue.get()).to.equal("b");
  });

  it("never hands a key to a second worker while it is processed; an add meanwhile re-queues it after done", async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, limits);
    queue.add("a");
    const first = await queue.get();
    queue.add("a"); // an update arrives while "a" is being reconciled
    expect(queue.length).to.equal(0);
    let secondGot: string | undefined;
    void queue.get().then((key) => (secondGot = key));
    await settle();
    expect(secondGot).to.equal(undefined);
    queue.done(first!, clock.now());
    await settle();
    expect(secondGot).to.equal("a");
  });

  it("backs off per key exponentially and forgets the count on success", async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, limits);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = clock.now();
      queue.addRateLimited("a");
      // Advance one millisecond at a time until the delayed add lands (bounded, so a bug cannot spin).
      while (queue.length === 0 && clock.now() - before < 10_000) clock.advance(1);
      delays.push(clock.now() - before);
      const key = await queue.get();
      queue.done(key!, clock.now());
    }
    expect(delays).to.deep.equal([5, 10, 20, 40]);
    expect(queue.retries("a")).to.equal(4);
    queue.forget("a");
    expect(queue.retries("a")).to.equal(0);
  });

  it("caps the per-key delay at maxDelayMs", async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, { ...limits, maxDelayMs: 30 });
    for (let attempt = 0; attempt < 6; attempt++) {
      const before = clock.now();
      queue.addRateLimited("a");
      while (queue.length === 0 && clock.now() - before < 10_000) clock.advance(1);
      if (attempt === 5) expect(clock.now() - before).to.equal(30);
      queue.done((await queue.get())!, clock.now());
    }
  });

  it("delays retries beyond the token bucket's burst, whatever the key", () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, { baseDelayMs: 1, maxDelayMs: 1, ratePerSecond: 10, burst: 2 });
    queue.addRateLimited("a");
    queue.addRateLimited("b");
    queue.addRateLimited("c"); // the bucket is empty: waits 100 ms for a token
    clock.advance(1);
    expect(queue.length).to.equal(2);
    clock.advance(98);
    expect(queue.length).to.equal(2);
    clock.advance(1);
    expect(queue.length).to.equal(3);
  });

  it("keeps the earlier of two delayed adds and stops handing out keys after shutdown", async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, limits);
    queue.addAfter("a", 100);
    queue.addAfter("a", 500);
    clock.advance(100);
    expect(queue.length).to.equal(1);
    await queue.get();
    queue.shutDown();
    queue.add("b");
    expect(await queue.get()).to.equal(undefined);
  });
});

describe("WorkQueue: dropping a delayed add", () => {
  it("drops the key's pending delayed add only", () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, limits);
    queue.addAfter("a", 100);
    queue.addAfter("b", 100);
    queue.dropDelayed("a");
    queue.dropDelayed("c"); // nothing pending: nothing happens
    clock.advance(100);
    expect(queue.length).to.equal(1);
    // A later delayed add of the dropped key is not held back by the dropped one.
    queue.addAfter("a", 500);
    clock.advance(500);
    expect(queue.length).to.equal(2);
  });
});

describe("WorkQueue: in-flight items (workqueue_unfinished_work_seconds)", () => {
  it("reports how long each key being processed has run, and forgets it once done", async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, limits);
    queue.add("a");
    queue.add("b");
    const a = await queue.get();
    clock.advance(2000);
    const b = await queue.get();
    clock.advance(500);
    expect(queue.processingSeconds().sort()).to.deep.equal([0.5, 2.5]);
    queue.done(a!, 0);
    expect(queue.processingSeconds()).to.deep.equal([0.5]);
    queue.done(b!, 0);
    expect(queue.processingSeconds()).to.deep.equal([]);
  });
});

describe("WorkQueue: the overall retry limit per share (a tenant's signer name)", () => {
  /** When the victim's first retry is queued after 1,000 retries of another share (ms). */
  async function victimRetriedAt(shareOf?: (key: string) => string): Promise<number | undefined> {
    const clock = new ManualClock();
    const queue = new WorkQueue(clock, { ...limits, maxDelayMs: 1000_000 }, undefined, shareOf);
    // A tenant breaks its own CA Secret and sends approved CSRs: one waitForSigner retry each.
    for (let i = 0; i < 1000; i++) queue.addRateLimited(`attacker-${i}`);
    queue.addRateLimited("victim"); // another tenant's CSR meets one transient error
    let queuedAt: number | undefined;
    while (queuedAt === undefined && clock.now() < 200_000) {
      clock.advance(100);
      while (queue.length > 0) {
        const key = (await queue.get())!;
        if (key === "victim") queuedAt = clock.now();
        queue.done(key, clock.now());
      }
    }
    return queuedAt;
  }

  it("another tenant's flood of retries does not hold back a tenant's first retry", async () => {
    const tenantOf = (key: string) =>
      key.startsWith("attacker-") ? "example.com/attacker" : "example.com/victim";
    expect(await victimRetriedAt(tenantOf)).to.equal(100); // its 5 ms backoff, seen at the first 100 ms step
  });

  it("with one share for all keys (client-go's), the victim waits behind the flood", async () => {
    expect(await victimRetriedAt()).to.be.greaterThan(80_000);
  });
});

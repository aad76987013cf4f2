import { expect } from "chai";
import { ProgressMonitor } from "../../../src/controller/progress-monitor.js";

describe("ProgressMonitor (what /healthz answers)", () => {
  it("reports a worker stuck in one step longer than the limit, and forgets it once the step ends", async () => {
    let now = 0;
    const monitor = new ProgressMonitor(60_000, () => now);
    let finish!: () => void;
    const step = monitor.track("csr a", () => new Promise<void>((resolve) => (finish = resolve)));
    now = 60_000;
    expect(monitor.problems()).to.deep.equal([]);
    now = 60_001;
    expect(monitor.problems()).to.deep.equal(["worker csr a stuck in one step for 60s (limit 60s)"]);
    finish();
    await step;
    expect(monitor.problems()).to.deep.equal([]);
  });

  it("a step that throws still ends", async () => {
    let now = 0;
    const monitor = new ProgressMonitor(1000, () => now);
    await monitor.track("signers", async () => Promise.reject(new Error("x"))).catch(() => undefined);
    now = 10_000;
    expect(monitor.problems()).to.deep.equal([]);
  });

  it("reports a list call hung longer than the limit; a source between steps is fine", () => {
    let now = 0;
    const list: { startedAt?: number } = {};
    const monitor = new ProgressMonitor(1000, () => now);
    monitor.watch({ name: "list /api/v1/secrets", busySince: () => list.startedAt });
    now = 50_000;
    expect(monitor.problems()).to.deep.equal([]);
    list.startedAt = 48_000;
    expect(monitor.problems()).to.deep.equal(["list /api/v1/secrets stuck in one step for 2s (limit 1s)"]);
  });
});

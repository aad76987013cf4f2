import { expect } from "chai";
import { ProgressMonitor } from "../../../src/controller/progress-monitor.js";

describe("ProgressMonitor (what /healthz answers)", () => {
  it("reports a worker stuck in one step longer than the limit, and forgets it once the step ends", () => {
    let now = 0;
    const monitor = new ProgressMonitor(60_000, () => now);
    const step = monitor.watchWorker("csr");
    step.begin("a");
    now = 60_000;
    expect(monitor.problems()).to.deep.equal([]);
    now = 60_001;
    expect(monitor.problems()).to.deep.equal(["worker csr a stuck in one step for 60s (limit 60s)"]);
    step.end();
    expect(monitor.problems()).to.deep.equal([]);
  });

  it("times each step from its own begin: a worker busy with many short steps is not stuck", () => {
    let now = 0;
    const monitor = new ProgressMonitor(1000, () => now);
    const step = monitor.watchWorker("csr");
    for (const key of ["a", "b", "c"]) {
      step.begin(key);
      now += 900;
      step.end();
    }
    step.begin("d");
    now += 900;
    expect(monitor.problems()).to.deep.equal([]);
    now += 101;
    expect(monitor.problems()).to.deep.equal(["worker csr d stuck in one step for 1s (limit 1s)"]);
  });

  it("names every stuck worker, and forgets a closed one even mid-step", () => {
    let now = 0;
    const monitor = new ProgressMonitor(1000, () => now);
    const first = monitor.watchWorker("csr");
    const second = monitor.watchWorker("signer");
    first.begin("a");
    second.begin("tenant-b");
    now = 5000;
    expect(monitor.problems()).to.deep.equal([
      "worker csr a stuck in one step for 5s (limit 1s)",
      "worker signer tenant-b stuck in one step for 5s (limit 1s)",
    ]);
    first.close();
    expect(monitor.problems()).to.deep.equal(["worker signer tenant-b stuck in one step for 5s (limit 1s)"]);
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

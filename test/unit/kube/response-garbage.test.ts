import { expect } from "chai";
import { responseBytesScavenger, type CollectGarbage } from "../../../src/kube/response-garbage.js";
import { runProcess } from "../../support/run-process.js";

describe("responseBytesScavenger (a scavenge per 8 MiB of response bodies)", () => {
  it("asks for one asynchronous minor collection each time the bytes reach the threshold, then counts afresh", () => {
    const asked: Parameters<CollectGarbage>[0][] = [];
    const count = responseBytesScavenger((options) => asked.push(options), 1000);
    count(400);
    count(599);
    expect(asked, "999 bytes").to.have.length(0);
    count(1);
    expect(asked).to.deep.equal([{ type: "minor", execution: "async" }]);
    count(999);
    expect(asked, "counted afresh after the first").to.have.length(1);
    count(5000); // one large chunk: one collection, not five
    expect(asked).to.have.length(2);
  });

  it("stops asking after a collector that throws, and never throws itself", () => {
    let calls = 0;
    const count = responseBytesScavenger(() => {
      calls++;
      throw new TypeError("options not understood");
    }, 10);
    expect(() => count(10)).not.to.throw();
    count(10);
    expect(calls).to.equal(1);
  });

  it("does nothing without node's --expose-gc", () => {
    const count = responseBytesScavenger(undefined, 1);
    expect(() => count(10)).not.to.throw();
  });

  it("makes node (as the image runs it, with --expose-gc) run a minor collection", async () => {
    // The module's own process-wide counter, in a node that has gc(): 8 MiB counted, a scavenge seen
    // and no full collection (an options object V8 did not know would make it one).
    const script = `
      import { PerformanceObserver, constants } from "node:perf_hooks";
      const { countResponseBytes, scavengeEveryBytes } = await import("./src/kube/response-garbage.ts");
      const kinds = [];
      new PerformanceObserver((list) => kinds.push(...list.getEntries().map((entry) => entry.detail.kind)))
        .observe({ entryTypes: ["gc"] });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = kinds.filter((kind) => kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
      countResponseBytes(scavengeEveryBytes);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const after = kinds.filter((kind) => kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
      const major = kinds.filter((kind) => kind === constants.NODE_PERFORMANCE_GC_MAJOR).length;
      console.log(JSON.stringify({ before, after, major }));
    `;
    const run = await runProcess(process.execPath, [
      "--expose-gc",
      "--import=tsx",
      "--input-type=module",
      "--eval",
      script,
    ]);
    expect(run.code, run.stderr).to.equal(0);
    const { before, after, major } = JSON.parse(run.stdout) as {
      before: number;
      after: number;
      major: number;
    };
    expect(after, `minor collections: ${before} before, ${after} after`).to.be.greaterThan(before);
    expect(major, "full collections").to.equal(0);
  });
});

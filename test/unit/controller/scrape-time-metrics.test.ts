import { expect } from "chai";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import {
  ScrapeTimeCounter,
  ScrapeTimeGauge,
  ScrapeTimeHistogram,
} from "../../../src/controller/scrape-time-metrics.js";

/** The same operations on prom-client's metrics and ours: the scraped text must be the same. */
describe("scrape-time metrics (prom-client's exposition, without hashing labels per call)", () => {
  const labelNames = ["signer", "reason"] as const;
  const buckets = [0.005, 0.1, 1, 10];

  function both(): {
    theirs: { registry: Registry; counter: Counter; gauge: Gauge; histogram: Histogram };
    ours: {
      registry: Registry;
      counter: ScrapeTimeCounter<"signer" | "reason">;
      gauge: ScrapeTimeGauge<"signer" | "reason">;
      histogram: ScrapeTimeHistogram<"signer" | "reason">;
    };
  } {
    const theirRegistry = new Registry();
    const ourRegistry = new Registry();
    const common = (name: string) => ({ name, help: `${name} help`, labelNames: [...labelNames] });
    return {
      theirs: {
        registry: theirRegistry,
        counter: new Counter({ ...common("test_total"), registers: [theirRegistry] }),
        gauge: new Gauge({ ...common("test_gauge"), registers: [theirRegistry] }),
        histogram: new Histogram({ ...common("test_seconds"), buckets, registers: [theirRegistry] }),
      },
      ours: {
        registry: ourRegistry,
        counter: new ScrapeTimeCounter({ ...common("test_total"), registers: [ourRegistry] }),
        gauge: new ScrapeTimeGauge({ ...common("test_gauge"), registers: [ourRegistry] }),
        histogram: new ScrapeTimeHistogram({ ...common("test_seconds"), buckets, registers: [ourRegistry] }),
      },
    };
  }

  it("scrapes as prom-client does: counters, gauges and histograms (bucket edges, +Inf, sum, count), label values escaped", async () => {
    const { theirs, ours } = both();
    const operations: Array<[{ signer: string; reason: string }, number]> = [
      [{ signer: "example.com/foo", reason: "Issued" }, 0.005],
      [{ signer: "example.com/foo", reason: "Issued" }, 0.5],
      [{ signer: "example.com/bar", reason: 'Quote"And\\Backslash\nNewline' }, 42],
      [{ signer: "example.com/foo", reason: "Issued" }, 0],
      [{ signer: "", reason: "Empty" }, 10],
    ];
    for (const [labels, value] of operations) {
      theirs.counter.inc(labels, value);
      ours.counter.inc(labels, value);
      theirs.gauge.set(labels, value);
      ours.gauge.set(labels, value);
      theirs.histogram.observe(labels, value);
      ours.histogram.observe(labels, value);
    }
    const ourText = await ours.registry.metrics();
    expect(ourText).to.equal(await theirs.registry.metrics());
    expect(ourText).to.include('test_seconds_bucket{le="+Inf",signer="example.com/foo",reason="Issued"} 3');
  });

  it("keeps one series per label set whatever object carries the labels, and starts over after reset", async () => {
    const { ours } = both();
    const labels = { signer: "a", reason: "r" };
    ours.counter.inc(labels);
    labels.signer = "b"; // the caller's object changes: the series it made keeps its labels
    ours.counter.inc({ reason: "r", signer: "a" }, 2);
    const values = (await ours.counter.get()).values;
    expect(values).to.deep.equal([{ labels: { signer: "a", reason: "r" }, value: 3 }]);
    ours.counter.reset();
    expect((await ours.counter.get()).values).to.deep.equal([]);
  });

  it("keeps apart label sets whose values would run together if joined, and counts a missing label as empty", async () => {
    const { ours } = both();
    ours.counter.inc({ signer: "a\0b", reason: "c" });
    ours.counter.inc({ signer: "a", reason: "b\0c" }, 2);
    ours.counter.inc({ signer: "a" } as { signer: string; reason: string }, 4);
    ours.counter.inc({ signer: "a", reason: "" }, 8);
    expect((await ours.counter.get()).values).to.deep.equal([
      { labels: { signer: "a\0b", reason: "c" }, value: 1 },
      { labels: { signer: "a", reason: "b\0c" }, value: 2 },
      { labels: { signer: "a", reason: "" }, value: 12 },
    ]);
  });

  it("a counter refuses to go down, as prom-client's does", () => {
    const { ours } = both();
    expect(() => ours.counter.inc({ signer: "a", reason: "r" }, -1)).to.throw(/only goes up/);
    expect(() => ours.counter.inc({ signer: "a", reason: "r" }, Number.NaN)).to.throw(/only goes up/);
  });
});

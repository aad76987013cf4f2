/**
 * Counters, gauges and histograms for the hot path, kept as plain numbers per label set and turned
 * into Prometheus samples only when scraped. prom-client's Counter, Gauge and Histogram hash their
 * labels on every call, even through labels() children (prom-client's util.hashObject), and a
 * signed certificate made about ten such calls (queue, reconcile and
 * issuance series): prom-client was about 2 % of the signer's CPU (BENCHMARKS.md, fifth pass); the
 * change per certificate was inside the benchmark's noise (sixth pass). Registered in prom-client's Registry,
 * which formats them as it does its own (it only calls get(), and reset() on resetMetrics), and
 * read the same way in tests (get() answers prom-client's shape).
 */
import type { Metric, Registry } from "prom-client";

/** One sample as prom-client's Registry formats it. */
interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

export interface ScrapedMetric {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  values: Sample[];
  aggregator: "sum";
}

interface Options<Label extends string> {
  name: string;
  help: string;
  labelNames: readonly Label[];
  registers: Registry[];
}

/**
 * A series per label set. Found through a Map per label, in labelNames order, keyed by that label's
 * value: the values are strings the callers already hold, whose hashes V8 keeps, so a lookup
 * builds no key (a joined key was a new string to flatten and hash on every call).
 */
abstract class LabelledSeries<Label extends string, Series> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly Label[];
  /** Every series, in the order made, for scraping. */
  protected readonly series: { labels: Record<Label, string>; data: Series }[] = [];
  /** labelNames.length levels of Maps; the last level's values are the series' data. */
  private index = new Map<string, unknown>();

  constructor(
    readonly type: ScrapedMetric["type"],
    options: Options<Label>,
  ) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  async get(): Promise<ScrapedMetric> {
    return { name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: "sum" };
  }

  reset(): void {
    this.series.length = 0;
    this.index = new Map();
  }

  protected abstract fresh(): Series;
  protected abstract samples(): Sample[];

  /** The series of `labels`, made on first use (labels copied: the caller's object may change). */
  protected seriesOf(labels: Record<Label, string>): Series {
    const names = this.labelNames;
    let level = this.index;
    let value = "";
    for (let index = 0; index < names.length; index++) {
      value = labels[names[index]!] ?? "";
      if (index === names.length - 1) break;
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const found = level.get(value) as Series | undefined;
    if (found !== undefined) return found;
    const copy = {} as Record<Label, string>;
    for (const name of names) copy[name] = labels[name] ?? "";
    const data = this.fresh();
    this.series.push({ labels: copy, data });
    level.set(value, data);
    return data;
  }
}

/** A counter's or a gauge's series: one number per label set. */
abstract class ScalarSeries<Label extends string> extends LabelledSeries<Label, { value: number }> {
  protected fresh(): { value: number } {
    return { value: 0 };
  }

  protected samples(): Sample[] {
    return this.series.map(({ labels, data }) => ({ labels, value: data.value }));
  }
}

export class ScrapeTimeCounter<Label extends string> extends ScalarSeries<Label> {
  constructor(options: Options<Label>) {
    super("counter", options);
  }

  inc(labels: Record<Label, string>, value = 1): void {
    if (!(value >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${value})`);
    this.seriesOf(labels).value += value;
  }
}

export class ScrapeTimeGauge<Label extends string> extends ScalarSeries<Label> {
  constructor(options: Options<Label>) {
    super("gauge", options);
  }

  set(labels: Record<Label, string>, value: number): void {
    this.seriesOf(labels).value = value;
  }
}

interface Buckets {
  /** Observations per bucket (not cumulative), the last one past the largest bound (+Inf). */
  counts: number[];
  sum: number;
}

export class ScrapeTimeHistogram<Label extends string> extends LabelledSeries<Label, Buckets> {
  private readonly buckets: readonly number[];

  constructor(options: Options<Label> & { buckets: readonly number[] }) {
    super("histogram", options);
    this.buckets = options.buckets;
  }

  observe(labels: Record<Label, string>, value: number): void {
    const series = this.seriesOf(labels);
    let bucket = 0;
    while (bucket < this.buckets.length && value > this.buckets[bucket]!) bucket++;
    series.counts[bucket]! += 1;
    series.sum += value;
  }

  protected fresh(): Buckets {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0 };
  }

  protected samples(): Sample[] {
    const samples: Sample[] = [];
    for (const { labels, data } of this.series) {
      let cumulative = 0;
      data.counts.forEach((count, index) => {
        cumulative += count;
        const le = index < this.buckets.length ? String(this.buckets[index]) : "+Inf";
        samples.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      samples.push({ metricName: `${this.name}_sum`, labels, value: data.sum });
      samples.push({ metricName: `${this.name}_count`, labels, value: cumulative });
    }
    return samples;
  }
}

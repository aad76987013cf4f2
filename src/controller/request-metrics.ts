/**
 * client-go's rest client metrics (k8s.io/client-go/tools/metrics): rest_client_requests_total{code,
 * method,host} and rest_client_request_duration_seconds{verb,host}, fed by KubeApi on every request.
 * On the hot path, so kept as plain numbers per label set and turned into Prometheus samples only at
 * scrape time: a request costs a Map lookup and a bucket walk (prom-client's Counter and Histogram
 * hash their labels on every call, even through labels() children: 10-15x more, measured). Labels
 * are bounded: status code, method and the API server's host, never a path or an object name.
 */
import type { Metric, Registry } from "prom-client";
import type { KubeRequestObserver } from "../kube/api-client.js";

const buckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

interface CountSeries {
  labels: { code: string; method: string; host: string };
  value: number;
}

interface DurationSeries {
  labels: { verb: string; host: string };
  /** Observations per bucket (not cumulative), the last one past the largest bound (+Inf). */
  counts: number[];
  sum: number;
}

interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

/** A metric prom-client's Registry serves from `values()` (it only calls get(), and reset() on resetMetrics). */
function scrapeTimeMetric(
  name: string,
  help: string,
  type: "counter" | "histogram",
  labelNames: string[],
  values: () => Sample[],
  reset: () => void,
): Metric {
  return {
    name,
    help,
    type,
    labelNames,
    get: async () => ({ name, help, type, values: values(), aggregator: "sum" }),
    reset,
  } as unknown as Metric;
}

export class KubeRequestMetrics {
  private readonly counts = new Map<string, CountSeries>();
  private readonly durations = new Map<string, DurationSeries>();
  readonly requests: Metric;
  readonly duration: Metric;

  constructor(registry: Registry) {
    this.requests = scrapeTimeMetric(
      "rest_client_requests_total",
      "HTTP requests to the API server, by status code, method and host",
      "counter",
      ["code", "method", "host"],
      () => [...this.counts.values()].map(({ labels, value }) => ({ labels, value })),
      () => this.counts.clear(),
    );
    this.duration = scrapeTimeMetric(
      "rest_client_request_duration_seconds",
      "API request latency (to the response's end; lists and watches to their headers), by verb and host",
      "histogram",
      ["verb", "host"],
      () => [...this.durations.values()].flatMap((series) => this.histogramSamples(series)),
      () => this.durations.clear(),
    );
    registry.registerMetric(this.requests);
    registry.registerMetric(this.duration);
  }

  /** What KubeApi calls per request. */
  readonly observe: KubeRequestObserver = (method, code, host, seconds) => {
    const verbKey = `${host} ${method}`;
    let duration = this.durations.get(verbKey);
    if (!duration) {
      duration = {
        labels: { verb: method, host },
        counts: new Array<number>(buckets.length + 1).fill(0),
        sum: 0,
      };
      this.durations.set(verbKey, duration);
    }
    let bucket = 0;
    while (bucket < buckets.length && seconds > buckets[bucket]!) bucket++;
    duration.counts[bucket]! += 1;
    duration.sum += seconds;
    const countKey = `${code} ${verbKey}`;
    let count = this.counts.get(countKey);
    if (!count) {
      count = { labels: { code, method, host }, value: 0 };
      this.counts.set(countKey, count);
    }
    count.value += 1;
  };

  private histogramSamples({ labels, counts, sum }: DurationSeries): Sample[] {
    const name = "rest_client_request_duration_seconds";
    const samples: Sample[] = [];
    let cumulative = 0;
    counts.forEach((count, index) => {
      cumulative += count;
      const le = index < buckets.length ? String(buckets[index]) : "+Inf";
      samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
    });
    samples.push({ metricName: `${name}_sum`, labels, value: sum });
    samples.push({ metricName: `${name}_count`, labels, value: cumulative });
    return samples;
  }
}

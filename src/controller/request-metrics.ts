/**
 * client-go's rest client metrics (k8s.io/client-go/tools/metrics): rest_client_requests_total{code,
 * method,host} and rest_client_request_duration_seconds{verb,host}, fed by KubeApi on every request.
 * On the hot path, so kept as scrape-time series (scrape-time-metrics.ts): a request costs a Map
 * lookup and a bucket walk. Labels
 * are bounded: status code, method and the API server's host, never a path or an object name.
 */
import type { Registry } from "prom-client";
import type { KubeRequestObserver } from "../kube/api-client.js";
import { ScrapeTimeCounter, ScrapeTimeHistogram } from "./scrape-time-metrics.js";

const buckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

export class KubeRequestMetrics {
  readonly requests: ScrapeTimeCounter<"code" | "method" | "host">;
  readonly duration: ScrapeTimeHistogram<"verb" | "host">;

  constructor(registry: Registry) {
    this.requests = new ScrapeTimeCounter({
      name: "rest_client_requests_total",
      help: "HTTP requests to the API server, by status code, method and host",
      labelNames: ["code", "method", "host"],
      registers: [registry],
    });
    this.duration = new ScrapeTimeHistogram({
      name: "rest_client_request_duration_seconds",
      help: "API request latency (to the response's end; lists and watches to their headers), by verb and host",
      labelNames: ["verb", "host"],
      buckets,
      registers: [registry],
    });
  }

  /** What KubeApi calls per request. */
  readonly observe: KubeRequestObserver = (method, code, host, seconds) => {
    this.duration.observe({ verb: method, host }, seconds);
    this.requests.inc({ code, method, host });
  };
}

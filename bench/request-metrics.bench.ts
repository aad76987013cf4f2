/**
 * Cost per API request of the rest client metrics (src/controller/request-metrics.ts) beside
 * prom-client's own Counter and Histogram with the same labels, and of performance.now() for scale.
 * `node --import tsx bench/request-metrics.bench.ts`; on a shared machine compare the ratios only.
 */
import { Registry, Histogram, Counter } from "prom-client";
import { KubeRequestMetrics } from "../src/controller/request-metrics.js";
const registry = new Registry();
const metrics = new KubeRequestMetrics(registry);
const h = new Histogram({
  name: "h",
  help: "h",
  labelNames: ["verb", "host"],
  registers: [registry],
  buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
});
const c = new Counter({
  name: "c",
  help: "c",
  labelNames: ["code", "method", "host"],
  registers: [registry],
});
const n = 2_000_000;
const methods = ["GET", "PATCH", "PUT", "POST"];
for (let round = 0; round < 3; round++) {
  let t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) metrics.observe(methods[i & 3]!, "200", "127.0.0.1:6443", 0.003 * (i & 7));
  const ours = Number(process.hrtime.bigint() - t) / n;
  t = process.hrtime.bigint();
  for (let i = 0; i < n / 10; i++) {
    h.observe({ verb: methods[i & 3]!, host: "127.0.0.1:6443" }, 0.003 * (i & 7));
    c.inc({ code: "200", method: methods[i & 3]!, host: "127.0.0.1:6443" });
  }
  const promClient = Number(process.hrtime.bigint() - t) / (n / 10);
  t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) performance.now();
  const now = Number(process.hrtime.bigint() - t) / n;
  console.log(
    `scrape-time series ${ours.toFixed(0)} ns/request; prom-client Histogram+Counter ${promClient.toFixed(0)} ns; performance.now ${now.toFixed(0)} ns`,
  );
}
console.log(
  (await registry.getSingleMetricAsString("rest_client_request_duration_seconds"))
    .split("\n")
    .slice(0, 6)
    .join("\n"),
);

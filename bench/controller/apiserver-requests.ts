/**
 * kube-apiserver's own count of the requests it served (`apiserver_request_total` on its /metrics),
 * summed by verb, resource and subresource: taken before and after a phase, the difference says
 * what each signer asked of the API server per certificate, whoever's client sent it.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { request } from "node:https";

/** "VERB resource[/subresource]" -> requests served. */
export type RequestCounts = Map<string, number>;

/** The counts kube-apiserver reports now (its /metrics, read with `admin`'s client certificate). */
export async function apiserverRequestCounts(admin: KubeConfig): Promise<RequestCounts> {
  const text = await getMetricsText(admin);
  const counts: RequestCounts = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const labels = line.slice(line.indexOf("{") + 1, line.lastIndexOf("}"));
    const label = (name: string): string => new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1] ?? "";
    const resource = label("resource");
    if (!resource) continue;
    const subresource = label("subresource");
    const key = `${label("verb")} ${resource}${subresource ? `/${subresource}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return counts;
}

/** What was served between two readings, the requests that did not change left out. */
export function requestsBetween(before: RequestCounts, after: RequestCounts): RequestCounts {
  const served: RequestCounts = new Map();
  for (const [key, count] of after) {
    const difference = count - (before.get(key) ?? 0);
    if (difference > 0) served.set(key, difference);
  }
  return served;
}

function getMetricsText(admin: KubeConfig): Promise<string> {
  const cluster = admin.getCurrentCluster();
  const user = admin.getCurrentUser();
  if (!cluster || !user?.certData || !user.keyData || !cluster.caData)
    throw new Error(
      "reading kube-apiserver's /metrics needs a kubeconfig with inline client certificate and CA",
    );
  const fromBase64 = (data: string): Buffer => Buffer.from(data, "base64");
  return new Promise((resolve, reject) => {
    const call = request(
      new URL("/metrics", cluster.server),
      { ca: fromBase64(cluster.caData!), cert: fromBase64(user.certData!), key: fromBase64(user.keyData!) },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          response.statusCode === 200
            ? resolve(Buffer.concat(chunks).toString("utf8"))
            : reject(new Error(`kube-apiserver /metrics answered ${response.statusCode}`)),
        );
        response.on("error", reject);
      },
    );
    call.on("error", reject);
    call.end();
  });
}

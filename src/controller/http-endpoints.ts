/**
 * The controller's two HTTP listeners: /metrics (Prometheus text), and /healthz + /readyz. /healthz
 * fails when a worker or a list call has stopped making progress (a restart would help); /readyz
 * when a cache is not synced or a watch is not live (a restart would not). As controller-runtime
 * serves them: /metrics over HTTPS behind TokenReview and SubjectAccessReview (metrics-access.ts)
 * unless plain HTTP is asked for; the probes in plain HTTP on their own port, for the kubelet.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Registry } from "prom-client";
import type { AccessAnswer } from "./metrics-access.js";
import type { ServingCertificate } from "../pki/self-signed-serving.js";

export interface EndpointSources {
  metrics: Registry;
  /** Why no progress is being made; empty when all is well. */
  stalls(): string[];
  /** True when caches are synced and every watch is live. */
  ready(): boolean;
  /** Who may read /metrics (from the request's Authorization header); absent: anyone. */
  metricsAccess?: (authorization: string | undefined, path: string) => Promise<AccessAnswer>;
}

const accessRefusals: Partial<Record<AccessAnswer, string>> = {
  401: "Unauthorized\n",
  403: "Forbidden: needs get on the non-resource URL /metrics (ClusterRole csr-signer-metrics-reader)\n",
  500: "the access review failed\n",
};

type Answer = [status: number, contentType: string, body: string];

export class HttpEndpoints {
  private constructor(private readonly servers: Server[]) {}

  /** Listens on `metricsAddress` and `probeAddress` (host:port; empty or undefined: that server is off). */
  static async start(
    addresses: {
      metricsAddress?: string | undefined;
      probeAddress?: string | undefined;
      metricsTls?: ServingCertificate | undefined;
      /** Where a new certificate comes from (serving-certificate-files.ts): taken for new connections. */
      onMetricsTlsChange?: ((listener: (tls: ServingCertificate) => void) => void) | undefined;
    },
    sources: EndpointSources,
  ): Promise<HttpEndpoints> {
    const endpoints = new HttpEndpoints([]);
    try {
      await endpoints.listen(
        addresses.metricsAddress,
        async (path, request) => {
          if (path !== "/metrics") return [404, "text/plain", "not found\n"];
          const access = sources.metricsAccess
            ? await sources.metricsAccess(request.headers.authorization, path)
            : 200;
          if (access !== 200) return [access, "text/plain", accessRefusals[access] ?? ""];
          return [200, sources.metrics.contentType, await sources.metrics.metrics()];
        },
        addresses.metricsTls,
        addresses.onMetricsTlsChange,
      );
      await endpoints.listen(addresses.probeAddress, async (path) => {
        if (path === "/healthz") {
          const stalls = sources.stalls();
          return stalls.length === 0
            ? [200, "text/plain", "ok\n"]
            : [503, "text/plain", `${stalls.join("\n")}\n`];
        }
        if (path === "/readyz")
          return sources.ready()
            ? [200, "text/plain", "ok\n"]
            : [503, "text/plain", "caches not synced or watches not live\n"];
        return [404, "text/plain", "not found\n"];
      });
    } catch (error) {
      await endpoints.close(); // the metrics server may be up when the probe port is taken
      throw error;
    }
    return endpoints;
  }

  /** Bound addresses (port 0 resolved), metrics first. */
  addresses(): string[] {
    return this.servers.map((server) => {
      const address = server.address();
      return typeof address === "object" && address ? `${address.address}:${address.port}` : String(address);
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.splice(0).map((server) => {
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeAllConnections(); // keep-alive scrapes would otherwise hold close() open
        return closed;
      }),
    );
  }

  private async listen(
    address: string | undefined,
    handle: (path: string, request: IncomingMessage) => Promise<Answer>,
    tls?: ServingCertificate,
    onTlsChange?: (listener: (tls: ServingCertificate) => void) => void,
  ): Promise<void> {
    if (!address) return;
    const separator = address.lastIndexOf(":");
    const host = address.slice(0, separator) || "0.0.0.0";
    const port = Number(address.slice(separator + 1));
    const listener: RequestListener = (request, response) => {
      // Only the path is read, and never parsed as a URL: `GET http://[` must not throw in here.
      const path = (request.url ?? "/").split("?")[0]!;
      handle(path, request).then(
        ([status, contentType, body]) =>
          response.writeHead(status, { "Content-Type": contentType }).end(body),
        () => response.writeHead(500).end(),
      );
    };
    let server: Server;
    if (tls) {
      const tlsOptions = (pair: ServingCertificate) =>
        ({ cert: pair.certificatePem, key: pair.keyPem, minVersion: "TLSv1.2" }) as const;
      const secureServer = createTlsServer(tlsOptions(tls), listener);
      // Connections open keep the certificate they shook hands with; new ones get the new pair.
      onTlsChange?.((pair) => secureServer.setSecureContext(tlsOptions(pair)));
      server = secureServer;
    } else server = createServer(listener);
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
    this.servers.push(server);
  }
}

/**
 * Serving /metrics and the probes: chooses the metrics certificate (the operator's from
 * --metrics-cert-dir, watched for renewals, else self-signed) and who may read /metrics, then starts
 * the listeners (http-endpoints.ts).
 */
import { hostname } from "node:os";
import { KubeApi } from "../kube/api-client.js";
import { createSelfSignedServingCertificate, type ServingCertificate } from "../pki/self-signed-serving.js";
import type { ControllerOptions } from "./controller-options.js";
import { HttpEndpoints, type EndpointSources } from "./http-endpoints.js";
import { MetricsAccess } from "./metrics-access.js";
import { ServingCertificateFiles } from "./serving-certificate-files.js";

export class HttpServing {
  private constructor(
    private readonly endpoints: HttpEndpoints,
    /** The operator's metrics certificate (--metrics-cert-dir), watched for renewals. */
    private readonly certificateFiles: ServingCertificateFiles | undefined,
  ) {}

  static async start(
    options: ControllerOptions,
    sources: Omit<EndpointSources, "metricsAccess">,
  ): Promise<HttpServing> {
    const secure = options.metricsSecure !== false && Boolean(options.metricsAddress);
    const access = secure ? new MetricsAccess(KubeApi.for(options.kubeConfig), options.logger) : undefined;
    const certificateFiles =
      secure && options.metricsCertDir
        ? new ServingCertificateFiles(options.metricsCertDir, options.logger, options.metricsCertPollMs)
        : undefined;
    const metricsTls = secure ? await metricsCertificate(options, certificateFiles) : undefined;
    const endpoints = await HttpEndpoints.start(
      {
        ...options,
        metricsTls,
        onMetricsTlsChange: certificateFiles && ((listener) => certificateFiles.onChange(listener)),
      },
      {
        ...sources,
        ...(access ? { metricsAccess: (authorization, path) => access.check(authorization, path) } : {}),
      },
    );
    certificateFiles?.start();
    return new HttpServing(endpoints, certificateFiles);
  }

  /** Bound addresses (port 0 resolved). */
  addresses(): string[] {
    return this.endpoints.addresses();
  }

  async close(): Promise<void> {
    this.certificateFiles?.stop();
    await this.endpoints.close();
  }
}

/**
 * The metrics server's certificate: the operator's (tls.crt, tls.key in metricsCertDir, reloaded when
 * they change), else self-signed.
 */
async function metricsCertificate(
  options: ControllerOptions,
  certificateFiles: ServingCertificateFiles | undefined,
): Promise<ServingCertificate> {
  if (certificateFiles) return certificateFiles.current;
  const service = "csr-signer-metrics";
  const namespace = options.namespace;
  return createSelfSignedServingCertificate("csr-signer-metrics", [
    hostname(),
    "localhost",
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
  ]);
}

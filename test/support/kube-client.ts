/** Test-side kubeconfigs and request options: a client-certificate KubeConfig, JSON merge patches. */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { ConnectionReusingKubeConfig } from "../../src/kube/client.js";

/** Everything needed to talk to an API server with an X.509 client certificate. */
export interface ClientCertificateCredentials {
  /** Base URL of the API server, e.g. `https://127.0.0.1:6443`. */
  server: string;
  /** PEM of the CA that signed the API server's serving certificate (TLS is always verified). */
  certificateAuthorityPem: string;
  /** PEM of the client certificate (CN = user name, O = groups). */
  clientCertificatePem: string;
  /** PEM of the client certificate's private key. */
  clientKeyPem: string;
  /** Name used for the cluster, user and context entries; defaults to `default`. */
  name?: string;
}

/**
 * A KubeConfig (current context set, connections reused) that authenticates with a client certificate
 * and verifies TLS.
 */
export function kubeConfigForClientCertificate(
  credentials: ClientCertificateCredentials,
): ConnectionReusingKubeConfig {
  const name = credentials.name ?? "default";
  const base64 = (pem: string): string => Buffer.from(pem, "utf8").toString("base64");
  const kubeConfig = new ConnectionReusingKubeConfig();
  kubeConfig.loadFromClusterAndUser(
    {
      name,
      server: credentials.server,
      caData: base64(credentials.certificateAuthorityPem),
      skipTLSVerify: false,
    },
    {
      name,
      certData: base64(credentials.clientCertificatePem),
      keyData: base64(credentials.clientKeyPem),
    },
  );
  return kubeConfig;
}

/** client-node request options that send a JSON merge patch (client-node defaults to JSON Patch). */
export const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

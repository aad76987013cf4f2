/**
 * Real Istio processes for the end-to-end tier, out of cluster on 127.0.0.1: istiod (pilot-discovery) as
 * a registration authority in front of the Kubernetes CSR API, and proxyless pilot-agents as workloads.
 * Each runs in its own process group and working folder under the control plane's folder, on free
 * ports, authenticated by a service account token from the TokenRequest API (as in a pod), and is
 * recorded with the control plane's run so that a crashed run's successor kills it.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import tls from "node:tls";
import { CoreV1Api } from "@kubernetes/client-node";
import { apiErrorCode } from "../../../src/kube/client.js";
import { findFreePorts, type ControlPlane } from "../control-plane.js";
import { kubectl } from "../controller.js";
import {
  describeLog,
  exitedProcess,
  spawnInOwnGroup,
  terminate,
  type ManagedProcess,
} from "../control-plane/processes.js";
import { testBinary } from "../testbin.js";
import { waitFor } from "../wait.js";

export const istioNamespace = "istio-system";

/** Creates a namespace and service accounts in it unless they exist (the test API server has no ServiceAccount admission). */
export async function ensureServiceAccounts(
  controlPlane: ControlPlane,
  namespace: string,
  names: string[],
): Promise<void> {
  const core = controlPlane.kubeConfig().makeApiClient(CoreV1Api);
  const ignoreConflict = (error: unknown): void => {
    if (apiErrorCode(error) !== 409) throw error;
  };
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignoreConflict);
  for (const name of names) {
    await core
      .createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })
      .catch(ignoreConflict);
  }
}

/** A token for a service account from the TokenRequest API (`kubectl create token`), as kubelet projects it. */
export function serviceAccountToken(
  controlPlane: ControlPlane,
  namespace: string,
  serviceAccount: string,
  audience?: string,
): string {
  const args = ["create", "token", serviceAccount, "-n", namespace, "--duration=2h"];
  if (audience !== undefined) args.push(`--audience=${audience}`);
  return kubectl(controlPlane, args).trim();
}

/** A kubeconfig file authenticating as the service account with a bound token, TLS verified. */
function writeServiceAccountKubeconfig(
  controlPlane: ControlPlane,
  file: string,
  namespace: string,
  serviceAccount: string,
): void {
  const token = serviceAccountToken(controlPlane, namespace, serviceAccount);
  const ca = Buffer.from(controlPlane.servingCaPem).toString("base64");
  fs.writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: test, cluster: {server: "${controlPlane.server}", certificate-authority-data: "${ca}"}}]`,
      `users: [{name: ${serviceAccount}, user: {token: "${token}"}}]`,
      `contexts: [{name: test, context: {cluster: test, user: ${serviceAccount}, namespace: ${namespace}}}]`,
      "current-context: test",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
}

interface IstioProcess {
  readonly managed: ManagedProcess;
  readonly workDir: string;
  /** The process's log so far (stdout and stderr). */
  log(): string;
  /** Why it is not running, or undefined while it runs. */
  exited(): string | undefined;
  stop(): Promise<void>;
}

function startIstioProcess(
  controlPlane: ControlPlane,
  name: string,
  binary: "pilot-discovery" | "pilot-agent",
  args: string[],
  environment: Record<string, string>,
  workDir: string,
): IstioProcess {
  const logPath = path.join(workDir, `${binary}.log`);
  // Istio reads ./etc and ./var paths relative to its working folder: spawnInOwnGroup has no cwd
  // option, so the working folder is set through a shell that execs the binary (same pid and group).
  const managed = spawnInOwnGroupIn(
    workDir,
    name,
    testBinary("ISTIO_BIN_DIR", binary),
    args,
    environment,
    logPath,
  );
  controlPlane.adoptProcess(name, managed.pid);
  return {
    managed,
    workDir,
    log: () => readText(logPath),
    exited: () => exitedProcess([managed]),
    stop: () => terminate(managed, 10_000),
  };
}

/** spawnInOwnGroup with a working folder and environment, via `sh -c 'cd ... && exec ...'`. */
function spawnInOwnGroupIn(
  workDir: string,
  name: string,
  binary: string,
  args: string[],
  environment: Record<string, string>,
  logPath: string,
): ManagedProcess {
  const assignments = Object.entries(environment).map(([key, value]) => `${key}=${shellQuote(value)}`);
  const script = `cd ${shellQuote(workDir)} && exec env ${assignments.join(" ")} ${[binary, ...args]
    .map(shellQuote)
    .join(" ")}`;
  return spawnInOwnGroup(name, "/bin/sh", ["-c", script], logPath);
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return ""; // Not written yet.
  }
}

export interface Istiod extends IstioProcess {
  readonly revision: string;
  /** host:port of istiod's TLS gRPC port (XDS and the CA service; 15012 in a cluster). */
  readonly secureGrpcAddress: string;
  /** The certificate chain istiod serves on its TLS gRPC port, as PEM (leaf first). */
  servingChain(): Promise<string>;
}

export interface IstiodOptions {
  /** "" for the default revision, else e.g. "canary" (service account istiod-canary, mesh ConfigMap istio-canary). */
  revision: string;
  /** CERT_SIGNER_DOMAIN: workload signerName = <domain>/<ISTIO_META_CERT_SIGNER>. */
  certSignerDomain: string;
  /** PILOT_CERT_PROVIDER, e.g. k8s.io/example.com/istio-system: who signs istiod's serving certificate. */
  pilotCertProvider: string;
  /** ISTIOD_CUSTOM_HOST, when set. */
  customHost?: string;
}

/**
 * Starts pilot-discovery as istiod of `revision`, with the settings of an external-CA install:
 * EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API, CERT_SIGNER_DOMAIN and PILOT_CERT_PROVIDER=k8s.io/<signer>, its
 * mesh config from the ConfigMap istio[-<revision>] in istio-system (no mesh file in its working
 * folder), and no ./etc/external-ca-cert root (the roots come from meshConfig caCertificates). Resolves
 * once /ready answers 200, which istiod does only after its own serving certificate was issued.
 */
export async function startIstiod(controlPlane: ControlPlane, options: IstiodOptions): Promise<Istiod> {
  const suffix = options.revision === "" ? "" : `-${options.revision}`;
  const serviceAccount = `istiod${suffix}`;
  const workDir = path.join(controlPlane.dir, "istio", serviceAccount);
  fs.mkdirSync(workDir, { recursive: true });
  const kubeconfig = path.join(workDir, "kubeconfig");
  writeServiceAccountKubeconfig(controlPlane, kubeconfig, istioNamespace, serviceAccount);
  const [http, grpc, secureGrpc, https, monitoring, ctrlz] = await findFreePorts(6);
  const secureGrpcAddress = `127.0.0.1:${secureGrpc}`;
  const process = startIstioProcess(
    controlPlane,
    serviceAccount,
    "pilot-discovery",
    [
      "discovery",
      `--kubeconfig=${kubeconfig}`,
      `--httpAddr=127.0.0.1:${http}`,
      `--grpcAddr=127.0.0.1:${grpc}`,
      `--secureGRPCAddr=${secureGrpcAddress}`,
      `--httpsAddr=127.0.0.1:${https}`,
      `--monitoringAddr=127.0.0.1:${monitoring}`,
      `--ctrlz_port=${ctrlz}`,
      "--ctrlz_address=127.0.0.1",
      "--log_output_level=default:info",
    ],
    {
      POD_NAMESPACE: istioNamespace,
      POD_NAME: `${serviceAccount}-0`,
      SERVICE_ACCOUNT: serviceAccount,
      REVISION: options.revision === "" ? "default" : options.revision,
      EXTERNAL_CA: "ISTIOD_RA_KUBERNETES_API",
      CERT_SIGNER_DOMAIN: options.certSignerDomain,
      PILOT_CERT_PROVIDER: options.pilotCertProvider,
      ...(options.customHost === undefined ? {} : { ISTIOD_CUSTOM_HOST: options.customHost }),
      KUBECONFIG: kubeconfig,
      // Nothing of the host's proxy settings: every address is loopback.
      HOME: workDir,
    },
    workDir,
  );
  const istiod: Istiod = {
    ...process,
    revision: options.revision,
    secureGrpcAddress,
    servingChain: () => servedChain("127.0.0.1", secureGrpc!, `istiod${suffix}.${istioNamespace}.svc`),
  };
  try {
    // Its own serving certificate comes first; istiod waits up to 60 s for it, then exits.
    await waitFor(
      `${serviceAccount} /ready`,
      () =>
        httpStatus(`http://127.0.0.1:${http}/ready`).then((status) => (status === 200 ? true : undefined)),
      180_000,
      { intervalMs: 250, giveUpIf: process.exited },
    );
  } catch (error) {
    await process.stop();
    throw new Error(`${String(error)}\n${describeLog(process.managed, 60)}`, { cause: error });
  }
  return istiod;
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { timeout: 5_000, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("timeout", () => request.destroy(new Error(`${url}: no answer in 5 s`)));
    request.on("error", reject);
  });
}

/** The chain a TLS server presents (leaf first), as PEM; the chain is not verified here. */
function servedChain(host: string, port: number, serverName: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      servername: serverName,
      ALPNProtocols: ["h2"],
      // Only reading what is presented; the test verifies it with openssl against the right root.
      rejectUnauthorized: false,
      timeout: 10_000,
    });
    socket.once("secureConnect", () => {
      const pems: string[] = [];
      const seen = new Set<string>();
      let certificate = socket.getPeerCertificate(true);
      while (certificate?.raw !== undefined && !seen.has(certificate.fingerprint256)) {
        seen.add(certificate.fingerprint256);
        const base64 = certificate.raw.toString("base64").replace(/.{64}/g, "$&\n");
        pems.push(`-----BEGIN CERTIFICATE-----\n${base64.replace(/\n$/, "")}\n-----END CERTIFICATE-----\n`);
        certificate = certificate.issuerCertificate;
      }
      socket.end();
      resolve(pems.join(""));
    });
    socket.once("timeout", () => socket.destroy(new Error(`${host}:${port}: TLS handshake timed out`)));
    socket.once("error", reject);
  });
}

export interface Workload extends IstioProcess {
  readonly namespace: string;
  /** OUTPUT_CERTS: cert-chain.pem, key.pem and root-cert.pem once the agent has its certificate. */
  readonly outputDir: string;
  /** The agent's certificate chain (leaf first) once written, else undefined. */
  certificateChain(): string | undefined;
  /** The root the agent was given with its certificate (its view of the mesh trust), else undefined. */
  rootCertificate(): string | undefined;
}

export interface WorkloadOptions {
  namespace: string;
  serviceAccount: string;
  /** ISTIO_META_CERT_SIGNER: the signer name's last part (signerName = CERT_SIGNER_DOMAIN/<this>). */
  certSigner: string;
  /** Distinguishes several workloads of one namespace. */
  name: string;
}

/**
 * Starts a proxyless pilot-agent (DISABLE_ENVOY=true) for a workload: its token from the TokenRequest
 * API with audience istio-ca at ./var/run/secrets/tokens/istio-token, the namespace's
 * istio-ca-root-cert (which istiod publishes) at ./var/run/secrets/istio/root-cert.pem to verify
 * istiod, and OUTPUT_CERTS where it writes the certificate it obtains. Does not wait for it.
 */
export async function startWorkload(
  controlPlane: ControlPlane,
  istiod: Istiod,
  options: WorkloadOptions,
): Promise<Workload> {
  const workDir = path.join(controlPlane.dir, "istio", `${options.namespace}-${options.name}`);
  const outputDir = path.join(workDir, "output-certs");
  fs.mkdirSync(outputDir, { recursive: true }); // as a pod's emptyDir: the agent writes into it, never creates it
  fs.mkdirSync(path.join(workDir, "var/run/secrets/tokens"), { recursive: true });
  fs.mkdirSync(path.join(workDir, "var/run/secrets/istio"), { recursive: true });
  fs.writeFileSync(
    path.join(workDir, "var/run/secrets/tokens/istio-token"),
    serviceAccountToken(controlPlane, options.namespace, options.serviceAccount, "istio-ca"),
  );
  fs.writeFileSync(
    path.join(workDir, "var/run/secrets/istio/root-cert.pem"),
    await istioCaRootCert(controlPlane, options.namespace),
  );
  const [statusPort] = await findFreePorts(1);
  const podName = `${options.name}-0`;
  const process = startIstioProcess(
    controlPlane,
    `pilot-agent-${options.namespace}-${options.name}`,
    "pilot-agent",
    // The second --log_target names the working folder, so a crashed run's successor recognises the process.
    ["proxy", "sidecar", "--log_target=stdout", `--log_target=${path.join(workDir, "agent.log")}`],
    {
      DISABLE_ENVOY: "true",
      OUTPUT_CERTS: outputDir,
      // The CA is the discovery address (CA_ADDR unset, as in a cluster); ISTIOD_SAN applies only then:
      // istiod's serving certificate names the service, not the loopback address dialled.
      ISTIOD_SAN: `istiod${istiod.revision === "" ? "" : `-${istiod.revision}`}.${istioNamespace}.svc`,
      PROXY_CONFIG: JSON.stringify({ discoveryAddress: istiod.secureGrpcAddress, statusPort }),
      ISTIO_META_CERT_SIGNER: options.certSigner,
      POD_NAME: podName,
      POD_NAMESPACE: options.namespace,
      SERVICE_ACCOUNT: options.serviceAccount,
      INSTANCE_IP: "127.0.0.1",
      HOME: workDir,
    },
    workDir,
  );
  const read = (file: string): string | undefined => readText(path.join(outputDir, file)) || undefined;
  return {
    ...process,
    namespace: options.namespace,
    outputDir,
    certificateChain: () => read("cert-chain.pem"),
    rootCertificate: () => read("root-cert.pem"),
  };
}

/** The root istiod publishes in a namespace (ConfigMap istio-ca-root-cert, key root-cert.pem), once there. */
export async function istioCaRootCert(controlPlane: ControlPlane, namespace: string): Promise<string> {
  const core = controlPlane.kubeConfig().makeApiClient(CoreV1Api);
  return waitFor(
    `istiod's istio-ca-root-cert in ${namespace}`,
    async () =>
      (await core.readNamespacedConfigMap({ name: "istio-ca-root-cert", namespace })).data?.["root-cert.pem"],
    60_000,
    { intervalMs: 200 },
  );
}

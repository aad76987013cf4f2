import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConnectionReusingKubeConfig } from "../kube/client.js";
import { jsonLogger, type LogLevel } from "../logger.js";
import { SignerController } from "../controller/controller.js";
import { parseGoDuration, parseGoDurationMilliseconds } from "../api/duration.js";
import type { defaultLeaderElectionTimings } from "../kube/leader-election.js";
import { leaderElectionTimingsProblem } from "../kube/leader-election.js";
import { parseMeshConfigMapRef } from "../controller/istio-mesh-config-sync.js";
import { UsageError, type CommandIo } from "./io.js";
import { kubeConfigFromFile } from "./kubeconfig.js";
import { buildInfo } from "./version.js";
import { defaultCleanupIntervalMs } from "../policy/csr-cleanup.js";
import {
  compileKubeletServingSettings,
  KubeletServingSettingsError,
  kubeletServingUnconfigured,
  type KubeletServingSettings,
} from "../policy/kubelet-serving-settings.js";

const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/**
 * Concurrent CSR reconciles by default. A reconcile mostly waits for its status write, so more in
 * flight cost little CPU: on 1,000 CSRs (`make bench-controller`) 8 workers gave a p99 about a third
 * of 4's at the same CPU per certificate, and 16 nothing more (BENCHMARKS.md).
 */
export const defaultWorkers = 8;

export const controllerHelp = `Usage: csr-signer controller [options]

Runs the signer: watches CertificateSigningRequests and the cluster's Signer resources
(signers.csr-signer.io), signs approved requests that pass their Signer's policy, and writes
Signer status. Only the leader of the Lease signs.

Options:
  --kubeconfig PATH          kubeconfig to use; without it, the in-cluster service account
                             (outside a cluster that is an error, never a localhost fallback)
  --namespace NAME           namespace of CA Secrets and the leader Lease
                             (default: $POD_NAMESPACE, else the service account's namespace,
                             else csr-signer)
  --metrics-address ADDR     host:port serving /metrics (default 0.0.0.0:8443; "" disables)
  --metrics-secure BOOL      serve /metrics over HTTPS to callers whose bearer token passes a
                             TokenReview and who may get the non-resource URL /metrics
                             (SubjectAccessReview; ClusterRole csr-signer-metrics-reader), as
                             controller-runtime does (default true); false: plain HTTP, no checks
  --metrics-cert-dir DIR     the HTTPS certificate and key, DIR/tls.crt and DIR/tls.key, reloaded
                             when they change (a mismatched pair keeps the one in use); default: a
                             self-signed certificate made at start
  --probe-address ADDR       host:port serving /healthz and /readyz (default 0.0.0.0:8081; "" disables);
                             /readyz: caches synced and watches live; /healthz fails only when one work
                             item or list call has been stuck for 10 min
  --kube-api-qps N           API requests per second (default 100). Each certificate
                             or refusal is one CSR status write, so this caps istiod's
                             CSRs/s a little under QPS (CSRs we approve cost an
                             approval write too, and SubjectAccessReviews with
                             requireRbacVerb): 100 answers 50 CSRs/s with room to
                             catch up after an outage (istiod ships 80). Watches, Events and the
                             Lease are outside it: Events have a budget of 5/s,
                             burst 25, one object's at most 25 then 1 per 5 min and
                             10 of the 100 queued, one tenant's at most 50 then 10 a
                             minute and 20 queued, one CSR requester's (all signer
                             names) at most 40 queued; the Lease's calls a limiter of
                             their own (20/s), so renewals never wait behind writes,
                             and Signer status writes one too (5/s, burst 10, all Signers)
  --kube-api-burst N         API request burst, a whole number (default 200)
  --workers N                concurrent CSR reconciles (default ${defaultWorkers})
  --leader-elect BOOL        campaign on a coordination.k8s.io Lease (default true)
  --lease-name NAME          the Lease's name (default csr-signer)
  --leader-elect-lease-duration D  how long followers wait after the Lease last changed before
                                   taking it over, at most 1h (default 15s)
  --leader-elect-renew-deadline D  how long the leader keeps retrying a renewal before it stops
                                   signing (default 10s; less than the lease duration)
  --leader-elect-retry-period D    how often candidates try to acquire or renew, plus up to 20%
                                   jitter (default 2s; at least 100ms; renew deadline > 1.2 x
                                   retry period).
                                   Durations as Go writes them: 15s, 1m, 500ms
  --log-level LEVEL          debug, info, warn or error (default info); info and debug lines
                             are held about 100 ms and written together; warn or error drops the
                             signature audit lines (README, "Running it in a cluster")

Approval automation (off unless enabled; tenant Signers opt in with spec.approval.mode):
  --approve-kubelet-serving BOOL      approve kubernetes.io/kubelet-serving CSRs whose every SAN is
                                      an address of the requesting Node AND passes the settings
                                      below (default false). A kubelet writes its own Node
                                      addresses, so they are never enough: without the settings a
                                      request needs, it stays pending with a Warning Event. Denied
                                      always: another Node's name or address, cluster service
                                      and cluster-domain names, Service and Pod IPs, loopback,
                                      link-local, unspecified, multicast and IPv4-in-IPv6
                                      addresses
  --kubelet-serving-ip-ranges CIDRS   IP SANs must lie in these ranges, comma-separated, e.g.
                                      10.0.0.0/16,fd00::/64 (repeatable; a ::ffff:a.b.c.d/n range
                                      is read as its IPv4 range; IPv4-mapped IP SANs are denied)
  --service-cluster-ip-range CIDRS    the Service ClusterIP ranges, as given to kube-apiserver
                                      (comma-separated, dual-stack): IP SANs inside are denied (a
                                      node could otherwise claim the kubernetes Service's address).
                                      Required for any IP SAN: without it they stay pending
  --cluster-cidr CIDRS                the Pod ranges, as given to kube-controller-manager
                                      (comma-separated): IP SANs inside are denied (optional)
  --kubelet-serving-dns-pattern RE    DNS SANs that are Node addresses must match this regular
                                      expression whole (anchored as ^(?:RE)$, lower-case names,
                                      linear-time engine: no backreferences or lookahead), e.g.
                                      'ip-[0-9-]+\\.([a-z0-9-]+\\.compute|ec2)\\.internal'
                                      (repeatable). Anchor it under a node-only domain: a
                                      single-label pattern also grants Service short names pods
                                      resolve via their search path
  --kubelet-serving-extra-dns PATTERN also allow this DNS name, which must contain {node} (the
                                      requesting node's name), e.g. {node}.nodes.example.com (repeatable)
  --cluster-domain DOMAIN             DNS SANs equal to or under DOMAIN are denied, as are any with
                                      a svc label, kubernetes and kubernetes.default (default
                                      cluster.local)
  --kubelet-serving-on-refusal WHAT   deny or leave-pending (default deny; roll new ranges and
                                      patterns out with leave-pending first)
  --kubelet-serving-max-expiration D  refuse a longer spec.expirationSeconds, e.g. 720h (default: none;
                                      a CSR without it gets its signer's default duration)
  --approve-kubelet-client BOOL       approve kubernetes.io/kube-apiserver-client-kubelet CSRs after a
                                      SubjectAccessReview, as kube-controller-manager does (default false)

Clean-up of CSRs our signers and approvers handled:
  --cleanup BOOL                      (default true)
  --cleanup-finished D                issued, denied or failed, after the condition (default 1h)
  --cleanup-pending D                 never approved nor denied, after creation (default 24h)
  --cleanup-approved-unsigned D       approved but never signed (default 24h)

Istio:
  --istio-mesh-config NS/NAME         keep meshConfig caCertificates in Istio's mesh ConfigMap NAME in
                                      NS (key mesh) equal to \`csr-signer istio mesh-config\` for every
                                      Signer, changing only that field; repeatable (one per revision,
                                      e.g. istio-system/istio and istio-system/istio-canary). Needs get
                                      and update on that ConfigMap. A Signer whose roots would take
                                      the ConfigMap past 900 KiB is left out of it (Degraded
                                      IstioMeshConfigTooLarge); the others are written. Default: none
`;

function booleanFlag(text: string, flag: string): boolean {
  if (text !== "true" && text !== "false") throw new UsageError(`${flag} must be true or false`);
  return text === "true";
}

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${flag} must be a whole number of at least 1`);
  return value;
}

function positiveNumber(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a positive number`);
  return value;
}

/** --leader-elect-lease-duration, -renew-deadline and -retry-period, checked as client-go checks them. */
function leaderElectionTimingFlags(values: Record<string, unknown>): typeof defaultLeaderElectionTimings {
  const milliseconds = (flag: string): number => {
    try {
      const value = parseGoDurationMilliseconds(values[flag]);
      if (value > 0) return value;
    } catch {
      // Reported below with the flag's name, as every other duration flag is.
    }
    throw new UsageError(`--${flag} must be a positive duration such as 15s or 500ms`);
  };
  const timings = {
    leaseDurationMs: milliseconds("leader-elect-lease-duration"),
    renewDeadlineMs: milliseconds("leader-elect-renew-deadline"),
    retryPeriodMs: milliseconds("leader-elect-retry-period"),
  };
  const problem = leaderElectionTimingsProblem(timings);
  if (problem)
    throw new UsageError(
      `${problem} (--leader-elect-lease-duration > --leader-elect-renew-deadline > 1.2 x --leader-elect-retry-period; lease duration at most 1h, retry period at least 100ms)`,
    );
  return timings;
}

export async function controllerCommand(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: "string" },
      namespace: { type: "string" },
      "metrics-address": { type: "string", default: "0.0.0.0:8443" },
      "metrics-secure": { type: "string", default: "true" },
      "metrics-cert-dir": { type: "string" },
      "probe-address": { type: "string", default: "0.0.0.0:8081" },
      "kube-api-qps": { type: "string", default: "100" },
      "kube-api-burst": { type: "string", default: "200" },
      workers: { type: "string", default: String(defaultWorkers) },
      "leader-elect": { type: "string", default: "true" },
      "lease-name": { type: "string", default: "csr-signer" },
      "leader-elect-lease-duration": { type: "string", default: "15s" },
      "leader-elect-renew-deadline": { type: "string", default: "10s" },
      "leader-elect-retry-period": { type: "string", default: "2s" },
      "log-level": { type: "string", default: "info" },
      "approve-kubelet-serving": { type: "string", default: "false" },
      "kubelet-serving-on-refusal": { type: "string", default: "deny" },
      "kubelet-serving-max-expiration": { type: "string" },
      "kubelet-serving-ip-ranges": { type: "string", multiple: true, default: [] },
      "kubelet-serving-dns-pattern": { type: "string", multiple: true, default: [] },
      "kubelet-serving-extra-dns": { type: "string", multiple: true, default: [] },
      "cluster-domain": { type: "string", default: "cluster.local" },
      "service-cluster-ip-range": { type: "string", multiple: true, default: [] },
      "cluster-cidr": { type: "string", multiple: true, default: [] },
      "approve-kubelet-client": { type: "string", default: "false" },
      cleanup: { type: "string", default: "true" },
      "cleanup-finished": { type: "string", default: "1h" },
      "cleanup-pending": { type: "string", default: "24h" },
      "cleanup-approved-unsigned": { type: "string", default: "24h" },
      "istio-mesh-config": { type: "string", multiple: true, default: [] },
    },
    strict: true,
  });
  if (!["debug", "info", "warn", "error"].includes(values["log-level"]))
    throw new UsageError("--log-level must be debug, info, warn or error");
  const leaderElection = booleanFlag(values["leader-elect"], "--leader-elect");
  const leaseTimings = leaderElectionTimingFlags(values);
  if (!["deny", "leave-pending"].includes(values["kubelet-serving-on-refusal"])) {
    throw new UsageError("--kubelet-serving-on-refusal must be deny or leave-pending");
  }
  const duration = (flag: string, text: string): number => {
    try {
      return parseGoDuration(text);
    } catch {
      throw new UsageError(`${flag} must be a duration such as 1h or 30m`);
    }
  };
  const cidrList = (lists: readonly string[]): string[] =>
    lists.flatMap((list) => list.split(",")).map((cidr) => cidr.trim());
  const kubeletServingSettings = (): KubeletServingSettings => {
    try {
      return compileKubeletServingSettings({
        ipRanges: cidrList(values["kubelet-serving-ip-ranges"]),
        dnsPatterns: values["kubelet-serving-dns-pattern"],
        extraDnsPatterns: values["kubelet-serving-extra-dns"],
        clusterDomain: values["cluster-domain"],
        serviceClusterIpRanges: cidrList(values["service-cluster-ip-range"]),
        clusterCidrs: cidrList(values["cluster-cidr"]),
        ...(values["kubelet-serving-max-expiration"]
          ? {
              maximumExpirationSeconds: duration(
                "--kubelet-serving-max-expiration",
                values["kubelet-serving-max-expiration"],
              ),
            }
          : {}),
      });
    } catch (error) {
      if (error instanceof KubeletServingSettingsError) throw new UsageError(error.message);
      throw error;
    }
  };
  const approval = {
    ...(booleanFlag(values["approve-kubelet-serving"], "--approve-kubelet-serving")
      ? {
          kubeletServing: {
            onRefusal:
              values["kubelet-serving-on-refusal"] === "deny" ? ("Deny" as const) : ("LeavePending" as const),
            ...kubeletServingSettings(),
          },
        }
      : {}),
    kubeletClient: booleanFlag(values["approve-kubelet-client"], "--approve-kubelet-client"),
  };
  const cleanup = booleanFlag(values.cleanup, "--cleanup")
    ? {
        finishedSeconds: duration("--cleanup-finished", values["cleanup-finished"]),
        pendingSeconds: duration("--cleanup-pending", values["cleanup-pending"]),
        approvedUnsignedSeconds: duration("--cleanup-approved-unsigned", values["cleanup-approved-unsigned"]),
        intervalMs: defaultCleanupIntervalMs,
      }
    : (false as const);
  const istioMeshConfigs = values["istio-mesh-config"].map((value) => {
    const ref = parseMeshConfigMapRef(value);
    if (!ref) throw new UsageError(`--istio-mesh-config must be <namespace>/<configmap>, not "${value}"`);
    return ref;
  });
  const qps = positiveNumber(values["kube-api-qps"], "--kube-api-qps");
  const burst = positiveInteger(values["kube-api-burst"], "--kube-api-burst");
  let kubeConfig: ConnectionReusingKubeConfig;
  if (values.kubeconfig) {
    kubeConfig = kubeConfigFromFile(values.kubeconfig);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(serviceAccountNamespaceFile)) {
    kubeConfig = new ConnectionReusingKubeConfig();
    kubeConfig.loadFromCluster();
  } else {
    throw new UsageError("not running in a cluster: pass --kubeconfig");
  }
  kubeConfig.setRateLimit(qps, burst);
  const namespace =
    values.namespace ||
    process.env.POD_NAMESPACE ||
    (existsSync(serviceAccountNamespaceFile)
      ? readFileSync(serviceAccountNamespaceFile, "utf8").trim()
      : "csr-signer");
  // Info lines are held about 100 ms (one write per certificate; see jsonLogger) and written out if
  // the process exits meanwhile (an uncaught error too).
  const logger = jsonLogger({ level: values["log-level"] as LogLevel, write: io.stderr, holdInfoMs: 100 });
  const flushLog = (): void => logger.flush();
  process.once("exit", flushLog);
  try {
    const serving = approval.kubeletServing;
    if (serving && kubeletServingUnconfigured(serving))
      // Said once at start too: the per-CSR Warning Events are easy to miss after an upgrade.
      logger.warn(
        "kubelet-serving approval is on but has no ranges or patterns: kubelet-serving CSRs stay pending (KubeletServingNotConfigured)",
        { missing: ["--kubelet-serving-ip-ranges", "--kubelet-serving-dns-pattern"] },
      );
    const controller = new SignerController({
      kubeConfig,
      namespace,
      workers: positiveInteger(values.workers, "--workers"),
      leaderElection,
      approval,
      cleanup,
      istioMeshConfigs,
      leaseName: values["lease-name"],
      leaseTimings,
      ...(process.env.POD_NAME ? { identity: process.env.POD_NAME } : {}),
      metricsAddress: values["metrics-address"],
      metricsSecure: booleanFlag(values["metrics-secure"], "--metrics-secure"),
      ...(values["metrics-cert-dir"] ? { metricsCertDir: values["metrics-cert-dir"] } : {}),
      probeAddress: values["probe-address"],
      logger,
      build: buildInfo(),
    });
    try {
      await controller.start();
    } catch (error) {
      // A controller that did not start must not linger half-alive (a probe server answering,
      // informers listing): release everything, and the CLI exits non-zero.
      await controller.stop().catch(() => undefined); // the start failure is the error worth reporting
      await kubeConfig.close();
      throw error;
    }
    await new Promise<void>((resolve) => {
      const shutdown = (signal: string): void => {
        logger.info("shutting down", { signal });
        resolve();
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
    });
    await controller.stop();
    await kubeConfig.close();
  } finally {
    logger.flush();
    process.off("exit", flushLog);
  }
}

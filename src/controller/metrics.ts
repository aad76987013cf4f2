/**
 * Prometheus metrics under the names controller-runtime users already chart, plus the
 * signer's own. Those updated per request or per certificate are scrape-time series
 * (scrape-time-metrics.ts); the rest are prom-client's. One Registry per controller instance (prom-client throws on double
 * registration, and tests run several controllers in one process). Labels carry signer names
 * and reasons only, never request contents.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import packageJson from "../../package.json" with { type: "json" };
import type { KubeRequestObserver } from "../kube/api-client.js";
import type { EventDropCause } from "../kube/events.js";
import type { CsrObject } from "./csr-object.js";
import { KubeRequestMetrics } from "./request-metrics.js";
import { ScrapeTimeCounter, ScrapeTimeGauge, ScrapeTimeHistogram } from "./scrape-time-metrics.js";
import { approvedUnsignedBySigner } from "./state-gauges.js";
import type { WorkQueueMetrics } from "./work-queue.js";

/** What the scrape-time gauges read (the controller's caches and clock). */
export interface ClusterStateSources {
  /** The CSR cache (it holds requests of our signer names only). */
  csrs(): readonly CsrObject[];
  /** The signer names our Signers serve now. */
  signerNames(): Iterable<string>;
  now(): Date;
}

/** A queue whose in-flight items the unfinished-work gauges read. */
export interface ProcessingQueue {
  processingSeconds(): number[];
}

/** Which build runs, as csr_signer_build_info reports it (the CLI passes its buildInfo()). */
export interface BuildLabels {
  version: string;
  commit: string;
}

/** Without build labels (a controller started from a test): package.json's version, commit unknown. */
const sourceBuild: BuildLabels = { version: packageJson.version, commit: "unknown" };

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new ScrapeTimeCounter({
    name: "controller_runtime_reconcile_total",
    help: "Reconciliations per controller and result",
    labelNames: ["controller", "result"],
    registers: [this.registry],
  });
  readonly reconcileErrors = new ScrapeTimeCounter({
    name: "controller_runtime_reconcile_errors_total",
    help: "Reconciliations that returned an error",
    labelNames: ["controller"],
    registers: [this.registry],
  });
  readonly reconcileTime = new ScrapeTimeHistogram({
    name: "controller_runtime_reconcile_time_seconds",
    help: "Time per reconciliation",
    labelNames: ["controller"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new ScrapeTimeGauge({
    name: "workqueue_depth",
    help: "Current depth of the work queue",
    labelNames: ["name"],
    registers: [this.registry],
  });
  readonly queueAdds = new ScrapeTimeCounter({
    name: "workqueue_adds_total",
    help: "Adds handled by the work queue",
    labelNames: ["name"],
    registers: [this.registry],
  });
  readonly queueRetries = new ScrapeTimeCounter({
    name: "workqueue_retries_total",
    help: "Rate-limited retries handled by the work queue",
    labelNames: ["name"],
    registers: [this.registry],
  });
  readonly queueDuration = new ScrapeTimeHistogram({
    name: "workqueue_queue_duration_seconds",
    help: "Time an item waits in the queue",
    labelNames: ["name"],
    buckets: [0.0001, 0.001, 0.01, 0.1, 1, 10, 60],
    registers: [this.registry],
  });
  readonly workDuration = new ScrapeTimeHistogram({
    name: "workqueue_work_duration_seconds",
    help: "Time processing an item",
    labelNames: ["name"],
    buckets: [0.0001, 0.001, 0.01, 0.1, 1, 10],
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "leader_election_master_status",
    help: "1 while this instance leads",
    labelNames: ["name"],
    registers: [this.registry],
  });
  readonly issued = new ScrapeTimeCounter({
    name: "csr_signer_certificates_issued_total",
    help: "Certificates issued per signer",
    labelNames: ["signer"],
    registers: [this.registry],
  });
  readonly refused = new ScrapeTimeCounter({
    name: "csr_signer_certificates_refused_total",
    help: "Requests marked Failed per signer and reason",
    labelNames: ["signer", "reason"],
    registers: [this.registry],
  });
  readonly issuanceLatency = new ScrapeTimeHistogram({
    name: "csr_signer_issuance_latency_seconds",
    help: "From the controller's first sight of a CSR (its first cache event, monotonic clock) to the certificate written",
    labelNames: ["signer"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120],
    registers: [this.registry],
  });
  readonly issuanceSinceCreation = new ScrapeTimeHistogram({
    name: "csr_signer_issuance_since_creation_seconds",
    help: "CSR metadata.creationTimestamp (whole seconds: up to 1 s too long) to certificate written; includes time before the controller saw it",
    labelNames: ["signer"],
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120],
    registers: [this.registry],
  });
  readonly caExpiry = new Gauge({
    name: "csr_signer_ca_certificate_expiry_timestamp_seconds",
    help: "NotAfter of each CA certificate a signer uses, as a Unix timestamp",
    labelNames: ["signer", "role", "subject", "fingerprint"],
    registers: [this.registry],
  });
  readonly approvals = new ScrapeTimeCounter({
    name: "csr_signer_approvals_total",
    help: "Approval decisions per signer, decision (approved, denied, left-pending) and reason",
    labelNames: ["signer", "decision", "reason"],
    registers: [this.registry],
  });
  readonly cleaned = new Counter({
    name: "csr_signer_csrs_cleaned_total",
    help: "CSRs deleted by the clean-up, by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly caParses = new Counter({
    name: "csr_signer_ca_parses_total",
    help: "CA material parsed per signer and result (loaded, refused); each distinct content is parsed once",
    labelNames: ["signer", "result"],
    registers: [this.registry],
  });
  readonly meshConfigSyncs = new Counter({
    name: "csr_signer_istio_mesh_config_syncs_total",
    help: "Passes over an Istio mesh ConfigMap (--istio-mesh-config) by outcome: updated, unchanged, failed",
    labelNames: ["configmap", "outcome"],
    registers: [this.registry],
  });
  readonly eventsDropped = new ScrapeTimeCounter({
    name: "csr_signer_events_dropped_total",
    help: "Events not recorded, by cause: repeat (same object, reason and message within 10 minutes), queue (recorder queue full), object (the involved object's share spent), tenant (its tenant's share spent), requester (a CSR requester's share across all signer names spent)",
    labelNames: ["cause"],
    registers: [this.registry],
  });
  /**
   * A Signer's Degraded condition shows one reason, so IstioMeshConfigTooLarge can hide under a
   * rotation hold or a failing publication: this says it apart (removed once the Signer fits again).
   */
  readonly meshConfigLeftOut = new Gauge({
    name: "csr_signer_istio_mesh_config_left_out",
    help: "1 while a signer's trust-bundle roots are left out of an Istio mesh ConfigMap (--istio-mesh-config) over its size budget",
    labelNames: ["configmap", "signer"],
    registers: [this.registry],
  });
  readonly signerReady = new Gauge({
    name: "csr_signer_signer_ready",
    help: "1 when a signer can sign",
    labelNames: ["signer"],
    registers: [this.registry],
  });
  /**
   * Degraded and CA expiry too, as `kubectl get signers` shows them; one series per Signer and type
   * (name, the object, tells apart two Signers claiming one signer name).
   */
  readonly signerCondition = new Gauge({
    name: "csr_signer_signer_condition",
    help: "1 when a Signer's condition (type: Ready, Degraded, CertificateAuthorityExpiring) is True, 0 otherwise",
    labelNames: ["signer", "name", "type"],
    registers: [this.registry],
  });

  readonly podCertificatesIssued = new ScrapeTimeCounter({
    name: "csr_signer_pod_certificates_issued_total",
    help: "PodCertificateRequests issued per signer",
    labelNames: ["signer"],
    registers: [this.registry],
  });
  readonly podCertificatesRefused = new ScrapeTimeCounter({
    name: "csr_signer_pod_certificates_refused_total",
    help: "PodCertificateRequests marked Denied or Failed per signer, condition and reason",
    labelNames: ["signer", "condition", "reason"],
    registers: [this.registry],
  });

  private readonly watchedQueues = new Map<string, ProcessingQueue>();
  private clusterState: ClusterStateSources | undefined;

  // client-go's workqueue gauges, computed from the in-flight items at scrape time.
  readonly queueUnfinishedWork = new Gauge({
    name: "workqueue_unfinished_work_seconds",
    help: "Seconds of work in progress not yet observed by work_duration; large values mean stuck workers",
    labelNames: ["name"],
    registers: [this.registry],
    collect: () => {
      for (const [name, queue] of this.watchedQueues)
        this.queueUnfinishedWork.set(
          { name },
          queue.processingSeconds().reduce((sum, seconds) => sum + seconds, 0),
        );
    },
  });
  readonly queueLongestRunning = new Gauge({
    name: "workqueue_longest_running_processor_seconds",
    help: "Seconds the longest running processor of the queue has been running",
    labelNames: ["name"],
    registers: [this.registry],
    collect: () => {
      for (const [name, queue] of this.watchedQueues)
        this.queueLongestRunning.set({ name }, Math.max(0, ...queue.processingSeconds()));
    },
  });

  /** client-go's rest_client_requests_total and rest_client_request_duration_seconds (request-metrics.ts). */
  readonly restClient = new KubeRequestMetrics(this.registry);

  readonly buildInfo = new Gauge({
    name: "csr_signer_build_info",
    help: "Always 1; the labels say which build runs",
    labelNames: ["version", "commit", "node_version"],
    registers: [this.registry],
  });

  // Read from the caches at scrape time (state-gauges.ts), rewritten whole each scrape.
  readonly approvedUnsignedOldest = new Gauge({
    name: "csr_signer_approved_unsigned_oldest_seconds",
    help: "Seconds since the oldest approved CSR of the signer without certificate, Failed or Denied was approved (0: none)",
    labelNames: ["signer"],
    registers: [this.registry],
    collect: () => this.collectApprovedUnsigned(),
  });
  readonly approvedUnsignedCount = new Gauge({
    name: "csr_signer_approved_unsigned_csrs",
    help: "Approved CSRs of the signer without certificate, Failed or Denied",
    labelNames: ["signer"],
    registers: [this.registry],
  });

  constructor(build: BuildLabels = sourceBuild) {
    // prom-client's process and Node runtime collectors (CPU, memory, heap, event-loop lag, GC),
    // under the names its users chart (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, ...).
    collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: build.version, commit: build.commit, node_version: process.version }, 1);
  }

  /** The queues whose in-flight items the unfinished-work gauges report. */
  watchQueues(queues: Record<string, ProcessingQueue>): void {
    for (const [name, queue] of Object.entries(queues)) this.watchedQueues.set(name, queue);
  }

  /** Where the scrape-time Signer and CSR gauges read from. */
  watchClusterState(sources: ClusterStateSources): void {
    this.clusterState = sources;
  }

  /** KubeApi's observer, feeding the rest client metrics. */
  kubeRequestObserver(): KubeRequestObserver {
    return this.restClient.observe;
  }

  private collectApprovedUnsigned(): void {
    this.approvedUnsignedOldest.reset();
    this.approvedUnsignedCount.reset();
    const state = this.clusterState;
    if (!state) return;
    for (const [signer, { count, oldestSeconds }] of approvedUnsignedBySigner(
      state.csrs(),
      state.signerNames(),
      state.now(),
    )) {
      this.approvedUnsignedOldest.set({ signer }, oldestSeconds);
      this.approvedUnsignedCount.set({ signer }, count);
    }
  }

  /** The Event recorder's drop callback (KubernetesEventRecorder's onDropped). */
  readonly eventDropped = (cause: EventDropCause): void => {
    this.eventsDropped.inc({ cause });
  };

  queueMetrics(name: string): WorkQueueMetrics {
    const labels = { name };
    return {
      depth: (value) => this.queueDepth.set(labels, value),
      added: () => this.queueAdds.inc(labels),
      retried: () => this.queueRetries.inc(labels),
      queued: (seconds) => this.queueDuration.observe(labels, seconds),
      worked: (seconds) => this.workDuration.observe(labels, seconds),
    };
  }
}

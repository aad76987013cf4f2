/**
 * The manager: builds the caches, the registry, the reconcilers, the work queues and (with leader
 * election) the elector; turns cache events into queue keys; runs the workers (CSR workers only
 * while this instance leads); serves /metrics, /healthz and /readyz.
 */
import { hostname } from "node:os";
import {
  AuthorizationV1Api,
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
} from "@kubernetes/client-node";
import { apiErrorCode, mergePatch } from "../kube/client.js";
import { KubernetesEventRecorder, type EventRecorder } from "../kube/events.js";
import { defaultLeaderElectionTimings, LeaderElector } from "../kube/leader-election.js";
import type { Logger } from "../logger.js";
import { systemIssuanceEnvironment, type IssuanceEnvironment } from "../pki/issuance.js";
import { signerApiGroup, signerApiVersion, signerPlural, type SignerObject } from "../api/signer.js";
import { TrustBundlePublisher } from "../bundle/publishers.js";
import { TrustBundlePublication } from "../bundle/publication.js";
import {
  defaultCleanupIntervalMs,
  defaultCleanupPeriods,
  kubeletServingSignerName,
  type CleanupPeriods,
} from "../policy/kubelet-approval.js";
import { CsrApprover, type ApprovalSettings } from "./approver.js";
import { CsrCleaner } from "./csr-cleaner.js";
import { CsrReconciler } from "./csr-reconciler.js";
import { hasCondition, type CsrObject } from "./csr-object.js";
import { HttpEndpoints } from "./http-endpoints.js";
import { ControllerInformers } from "./informers.js";
import { kubernetesApprovalApi, kubernetesCsrApi } from "./kubernetes-adapters.js";
import { ControllerMetrics } from "./metrics.js";
import { NodeAddressIndex } from "./node-address-index.js";
import { ProgressMonitor } from "./progress-monitor.js";
import { runWorker } from "./run-worker.js";
import { SignerReconciler, signersKey, statusKey } from "./signer-reconciler.js";
import { SignerRegistry } from "./signer-registry.js";
import { WorkQueue } from "./work-queue.js";

export { kubernetesApprovalApi, kubernetesCsrApi } from "./kubernetes-adapters.js";

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  /** Where CA Secrets and the leader Lease live. */
  namespace: string;
  workers: number;
  leaderElection: boolean;
  leaseName?: string;
  identity?: string;
  leaseTimings?: typeof defaultLeaderElectionTimings;
  /** host:port for /metrics, and for /healthz + /readyz; empty: no server. */
  metricsAddress?: string;
  probeAddress?: string;
  /** How often mounted CA folders are re-read (Secrets are watched). */
  caFolderPollMs?: number;
  resyncMs?: number;
  watchdogMs?: number;
  logger: Logger;
  environment?: IssuanceEnvironment;
  events?: EventRecorder;
  /** Approval automation for kubelet certificates (tenant Signers opt in through spec.approval). */
  approval?: ApprovalSettings;
  /** /healthz fails when one work item or list call has run longer than this (default 10 min). */
  stallAfterMs?: number;
  /** How long a CSR of ours may wait for approval before it gets a WaitingApproval Event (default 10 s). */
  waitingApprovalGraceMs?: number;
  /** CSR clean-up; kube-controller-manager's periods by default, every minute. false: off. */
  cleanup?: (CleanupPeriods & { intervalMs: number }) | false;
}

const defaultLeaseName = "csr-signer";

export class SignerController {
  readonly metrics = new ControllerMetrics();
  readonly registry: SignerRegistry;
  readonly progress: ProgressMonitor;
  private readonly informers: ControllerInformers;
  private readonly nodeAddresses: NodeAddressIndex;
  private readonly cleaner: CsrCleaner | undefined;
  private readonly cleanupIntervalMs: number = defaultCleanupIntervalMs;
  private readonly csrQueue = new WorkQueue(
    undefined,
    undefined,
    this.metrics.queueMetrics("certificatesigningrequest"),
  );
  private readonly signerQueue = new WorkQueue(undefined, undefined, this.metrics.queueMetrics("signer"));
  private readonly csrReconciler: CsrReconciler;
  private readonly signerReconciler: SignerReconciler;
  private readonly elector: LeaderElector | undefined;
  private endpoints: HttpEndpoints | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly leaseName: string;
  private stopped = false;
  /** resourceVersion of our last status write per Signer: its watch echo needs no new round. */
  private readonly ownStatusWrites = new Map<string, string>();
  private readonly leadershipWaiters: (() => void)[] = [];
  private readonly workerLoops: Promise<void>[] = [];

  constructor(private readonly options: ControllerOptions) {
    const { kubeConfig, namespace, logger } = options;
    this.leaseName = options.leaseName ?? defaultLeaseName;
    // One clock for everything that writes times (conditions, bundle records, clean-up).
    const environment = options.environment ?? systemIssuanceEnvironment;
    const now = (): Date => environment.now();
    const certificates = kubeConfig.makeApiClient(CertificatesV1Api);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const customObjects = kubeConfig.makeApiClient(CustomObjectsApi);
    this.informers = new ControllerInformers(kubeConfig, {
      namespace,
      watchdogMs: options.watchdogMs,
      resyncMs: options.resyncMs,
      nodes: options.approval?.kubeletServing !== undefined,
      logger,
      isOurSignerName: (signerName) => this.csrReconciler.isOurs({ spec: { signerName } }),
    });
    const caches = this.informers;
    this.nodeAddresses = new NodeAddressIndex(options.approval?.kubeletServing?.extraDnsPatterns);
    this.registry = new SignerRegistry(
      {
        signers: () => caches.signers.list(),
        secret: (ns, name) => caches.secrets.get(name, ns),
        namespaces: () => caches.namespaces.list(),
      },
      namespace,
      now,
      (signer, result) => this.metrics.caParses.inc({ signer, result }),
    );
    const identity = options.identity ?? `${hostname()}_${process.pid}`;
    const events = options.events ?? new KubernetesEventRecorder(core, "csr-signer", identity, logger);
    const approver = new CsrApprover(
      options.approval ?? {},
      this.registry,
      this.nodeAddresses,
      kubernetesApprovalApi(certificates, kubeConfig.makeApiClient(AuthorizationV1Api), kubeConfig),
      events,
      this.metrics,
      logger,
      now,
    );
    this.csrReconciler = new CsrReconciler(
      this.registry,
      { get: (name) => caches.csrs.get(name) },
      kubernetesCsrApi(certificates, kubeConfig),
      events,
      this.metrics,
      logger,
      environment,
      approver,
      options.waitingApprovalGraceMs,
    );
    const publication = new TrustBundlePublication(new TrustBundlePublisher(kubeConfig), {
      namespaces: () =>
        caches.namespaces
          .list()
          .flatMap((ns) =>
            ns.metadata?.name
              ? [{ name: ns.metadata.name, terminating: ns.status?.phase === "Terminating" }]
              : [],
          ),
      configMaps: () => caches.configMaps.list(),
    });
    this.signerReconciler = new SignerReconciler(
      this.registry,
      publication,
      async (name, status) => {
        try {
          const written = (await customObjects.patchClusterCustomObjectStatus(
            {
              group: signerApiGroup,
              version: signerApiVersion,
              plural: signerPlural,
              name,
              body: { status },
            },
            mergePatch,
          )) as SignerObject;
          this.ownStatusWrites.set(name, written.metadata?.resourceVersion ?? "");
          return "ok";
        } catch (error) {
          if (apiErrorCode(error) === 404) return "gone"; // deleted meanwhile
          throw error;
        }
      },
      this.metrics,
      logger,
      () => this.isLeader,
      (signerNames) => this.enqueueAllCsrs(signerNames),
    );
    if (options.cleanup !== false) {
      const cleanup = options.cleanup ?? { ...defaultCleanupPeriods, intervalMs: defaultCleanupIntervalMs };
      this.cleanupIntervalMs = cleanup.intervalMs;
      this.cleaner = new CsrCleaner(
        cleanup,
        (signerName) => this.registry.forSignerName(signerName) !== undefined || approver.handles(signerName),
        () => caches.csrs.list(),
        async (name, uid) => {
          await certificates.deleteCertificateSigningRequest({ name, body: { preconditions: { uid } } });
        },
        this.metrics,
        logger,
        now,
      );
    }
    if (options.leaderElection) {
      this.elector = new LeaderElector(kubeConfig.makeApiClient(CoordinationV1Api), {
        namespace,
        name: this.leaseName,
        identity,
        ...(options.leaseTimings ?? defaultLeaderElectionTimings),
        logger: (message, fields) => logger.info(message, fields),
      });
      this.elector.onChange((leading) => this.setLeading(leading));
    }
    this.metrics.leader.set({ name: this.leaseName }, this.elector ? 0 : 1);
    this.progress = new ProgressMonitor(options.stallAfterMs ?? 10 * 60_000);
    for (const informer of this.informers.all())
      this.progress.watch({ name: `list ${informer.path}`, busySince: () => informer.listingSince });
  }

  /** True when caches are synced and every watch is live (what /readyz answers). */
  get ready(): boolean {
    return this.informers.all().every((informer) => informer.healthy);
  }

  /** The cached form of CSR `name` (what the cache holds, for tests and benchmarks). */
  cachedCsr(name: string): CsrObject | undefined {
    return this.informers.csrs.get(name);
  }

  get isLeader(): boolean {
    return this.elector?.isLeader ?? true;
  }

  /** Bound addresses (port 0 resolved), for tests. */
  addresses(): string[] {
    return this.endpoints?.addresses() ?? [];
  }

  async start(): Promise<void> {
    this.endpoints = await HttpEndpoints.start(this.options, {
      metrics: this.metrics.registry,
      stalls: () => this.progress.problems(),
      ready: () => this.ready,
    });
    this.watchCaches();
    await this.informers.startSignerSide();
    this.signerReconciler.rebuild();
    await this.informers.csrs.start();
    this.every(this.options.caFolderPollMs ?? 10_000, () => this.signerQueue.add(signersKey));
    const cleaner = this.cleaner;
    if (cleaner) this.every(this.cleanupIntervalMs, () => void (this.isLeader && cleaner.sweep()));
    this.elector?.start();
    const common = { progress: this.progress, logger: this.options.logger };
    for (let i = 0; i < this.options.workers; i++) {
      const csrMetrics = { controller: "certificatesigningrequest", recorder: this.metrics };
      const reconcileCsr = async (name: string) => {
        // Lost the lease while waiting: leave the CSR to the new leader (it requeues everything).
        if (!this.isLeader) return { kind: "done" } as const;
        try {
          return await this.csrReconciler.reconcile(name);
        } finally {
          // Counts and troubles reach Signer status in one write per 2 s at most (addAfter coalesces).
          this.signerQueue.addAfter(statusKey, 2000);
        }
      };
      const beforeEach = () => this.waitForLeadership();
      this.workerLoops.push(
        runWorker(this.csrQueue, reconcileCsr, { ...common, name: "csr", metrics: csrMetrics, beforeEach }),
      );
    }
    this.workerLoops.push(
      runWorker(this.signerQueue, (key) => this.signerReconciler.reconcile(key), {
        ...common,
        name: "signers",
      }),
    );
    this.options.logger.info("controller started", {
      namespace: this.options.namespace,
      workers: this.options.workers,
      leaderElection: this.options.leaderElection,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.csrQueue.shutDown();
    this.signerQueue.shutDown();
    for (const resolve of this.leadershipWaiters.splice(0)) resolve();
    this.informers.stop();
    await this.elector?.stop();
    await Promise.all(this.workerLoops);
    await this.endpoints?.close();
  }

  /** Cache events become queue keys; handlers do nothing else. */
  private watchCaches(): void {
    const caches = this.informers;
    const enqueueSigners = (): void => this.signerQueue.add(signersKey);
    caches.signers.on((event, signer) => {
      // The echo of our own status write changes nothing a round would look at.
      const name = signer.metadata?.name ?? "";
      if (event === "upsert" && signer.metadata?.resourceVersion === this.ownStatusWrites.get(name)) return;
      enqueueSigners();
    });
    caches.secrets.on(enqueueSigners);
    caches.namespaces.on(() => {
      this.registry.namespacesChanged();
      enqueueSigners();
    });
    caches.configMaps.on(enqueueSigners); // an edited or deleted copy is put back at once
    caches.csrs.on((event, csr) => {
      const name = csr.metadata?.name;
      if (!name) return;
      // Only our signers' CSRs enter the queue; a deletion is queued so that per-CSR state is dropped.
      if (event === "delete" || this.csrReconciler.isOurs(csr)) this.csrQueue.add(name);
    });
    // Registered before the informer starts, so the first list fills the index.
    caches.nodes?.on((event, node) => {
      const changed =
        event === "delete" ? (this.nodeAddresses.delete(node), true) : this.nodeAddresses.upsert(node);
      // New addresses can make the Node's undecided kubelet-serving CSRs approvable; a heartbeat that
      // changes no address (most Node updates, and resyncs) costs no scan of the CSR cache.
      if (changed) this.requeueUndecidedKubeletServing(node.metadata?.name ?? "");
    });
  }

  private every(milliseconds: number, action: () => void): void {
    const timer = setInterval(action, milliseconds);
    timer.unref();
    this.timers.push(timer);
  }

  private setLeading(leading: boolean): void {
    this.metrics.leader.set({ name: this.leaseName }, leading ? 1 : 0);
    if (leading) {
      for (const resolve of this.leadershipWaiters.splice(0)) resolve();
      // A new leader takes over everything pending: nothing waits for the next event.
      this.signerQueue.add(signersKey);
      this.enqueueAllCsrs();
    }
  }

  private async waitForLeadership(): Promise<void> {
    while (!this.stopped && !this.isLeader) {
      await new Promise<void>((resolve) => {
        this.leadershipWaiters.push(resolve);
        setTimeout(resolve, 1000).unref(); // re-check: the renew deadline can pass without an event
      });
    }
  }

  private enqueueAllCsrs(signerNames?: ReadonlySet<string>): void {
    for (const csr of this.informers.csrs.list()) {
      const name = csr.metadata?.name;
      if (
        name &&
        this.csrReconciler.isOurs(csr) &&
        (!signerNames || signerNames.has(csr.spec?.signerName ?? ""))
      )
        this.csrQueue.add(name);
    }
  }

  private requeueUndecidedKubeletServing(nodeName: string): void {
    for (const csr of this.informers.csrs.list()) {
      if (
        csr.metadata?.name &&
        csr.spec?.signerName === kubeletServingSignerName &&
        csr.spec.username === `system:node:${nodeName}` &&
        !hasCondition(csr, "Approved") &&
        !hasCondition(csr, "Denied")
      )
        this.csrQueue.add(csr.metadata.name);
    }
  }
}

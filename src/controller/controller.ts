/**
 * The manager: builds the caches, the registry, the reconcilers, the work queues and (with leader
 * election) the elector; turns cache events into queue keys; runs the workers (CSR workers only
 * while this instance leads); serves /metrics, /healthz and /readyz.
 */
import { hostname } from "node:os";
import { KubeApi } from "../kube/api-client.js";
import { describeError } from "../kube/client.js";
import { KubernetesEventRecorder, kubernetesEventWriter } from "../kube/events.js";
import {
  defaultLeaderElectionTimings,
  kubernetesLeaseStore,
  LeaderElector,
} from "../kube/leader-election.js";
import { systemIssuanceEnvironment } from "../pki/issuance.js";
import { TrustBundlePublisher } from "../bundle/publishers.js";
import { TrustBundlePublication } from "../bundle/publication.js";
import type { ControllerOptions } from "./controller-options.js";
import type { CsrObject } from "./csr-object.js";
import { CsrFirstSeen } from "./csr-first-seen.js";
import { buildCsrHandlers, type CsrHandlers } from "./csr-handlers.js";
import type { CsrReconciler } from "./csr-reconciler.js";
import { enqueueOnCacheEvents } from "./enqueue-on-cache-events.js";
import { HttpEndpoints, type MetricsTls } from "./http-endpoints.js";
import { MetricsAccess } from "./metrics-access.js";
import { ServingCertificateFiles } from "./serving-certificate-files.js";
import { createSelfSignedServingCertificate } from "../pki/self-signed-serving.js";
import { ControllerInformers } from "./informers.js";
import { IstioMeshConfigSync } from "./istio-mesh-config-sync.js";
import { Leadership } from "./leadership.js";
import { ControllerMetrics } from "./metrics.js";
import { NodeAddressIndex } from "./node-address-index.js";
import {
  kubernetesPodCertificateApi,
  podCertificateRequestsServed,
} from "../kube/pod-certificate-api-binding.js";
import {
  isDecided,
  podCertificateRequestKey,
  type PodCertificateRequestObject,
} from "./pod-certificate-object.js";
import { PodCertificateReconciler } from "./pod-certificate-reconciler.js";
import { ProgressMonitor } from "./progress-monitor.js";
import { runWorker, type ReconcileResult } from "./run-worker.js";
import { SignerReconciler } from "./signer-reconciler.js";
import { SignerRegistry } from "./signer-registry.js";
import { TenantSecretWatches } from "./tenant-secret-watches.js";
import { kubernetesSignerStatusWriter } from "./signer-status-writer.js";
import { WorkQueue } from "./work-queue.js";
import { TokenKeys } from "./token-keys.js";
import { pkcs11TokenKeyBackend } from "./pkcs11-backend.js";

const defaultLeaseName = "csr-signer";

export class SignerController {
  readonly metrics = new ControllerMetrics();
  /** When each CSR in flight was first seen: the start of csr_signer_issuance_latency_seconds. */
  private readonly firstSeen = new CsrFirstSeen();
  private readonly meshConfigSync: IstioMeshConfigSync;
  readonly registry: SignerRegistry;
  readonly progress: ProgressMonitor;
  private readonly informers: ControllerInformers;
  /** Secrets Signers read in tenant namespaces (certificateAuthority.secretNamespace), one watch each. */
  private readonly tenantSecrets: TenantSecretWatches;
  private readonly tokenKeys: TokenKeys;
  private readonly nodeAddresses: NodeAddressIndex;
  private readonly publisher: TrustBundlePublisher;
  private readonly publication: TrustBundlePublication;
  private readonly cleaner: CsrHandlers["cleaner"];
  private readonly csrQueue = new WorkQueue(
    undefined,
    undefined,
    this.metrics.queueMetrics("certificatesigningrequest"),
  );
  private readonly signerQueue = new WorkQueue(undefined, undefined, this.metrics.queueMetrics("signer"));
  /** PodCertificateRequests, keyed namespace/name: a queue of their own, so neither kind waits behind the other. */
  private readonly podCertificateQueue = new WorkQueue(
    undefined,
    undefined,
    this.metrics.queueMetrics("podcertificaterequest"),
  );
  private readonly podCertificateReconciler: PodCertificateReconciler;
  private readonly csrReconciler: CsrReconciler;
  private readonly signerReconciler: SignerReconciler;
  private readonly elector: LeaderElector | undefined;
  private endpoints: HttpEndpoints | undefined;
  /** The operator's metrics certificate (--metrics-cert-dir), watched for renewals. */
  private certificateFiles: ServingCertificateFiles | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly leaseName: string;
  private readonly leadership: Leadership;
  private stopped = false;
  private readonly workerLoops: Promise<void>[] = [];
  private readonly stopObservingRequests: () => void;

  constructor(private readonly options: ControllerOptions) {
    const { kubeConfig, namespace, logger } = options;
    this.leaseName = options.leaseName ?? defaultLeaseName;
    // One clock for everything that writes times (conditions, bundle records, clean-up).
    const environment = options.environment ?? systemIssuanceEnvironment;
    const now = (): Date => environment.now();
    // One API client (one connection pool, one client rate limit) for every call this controller makes.
    const api = KubeApi.for(kubeConfig);
    const caches = (this.informers = new ControllerInformers(kubeConfig, {
      namespace,
      watchdogMs: options.watchdogMs,
      resyncMs: options.resyncMs,
      nodes: options.approval?.kubeletServing !== undefined,
      logger,
      isOurSignerName: (signerName) => this.csrReconciler.isOurs({ spec: { signerName } }),
      isOurPodSignerName: (signerName) => this.podCertificateReconciler.signerFor(signerName) !== undefined,
    }));
    this.nodeAddresses = new NodeAddressIndex(options.approval?.kubeletServing?.extraDnsPatterns);
    this.tokenKeys = new TokenKeys(
      options.tokenKeys?.backend ?? pkcs11TokenKeyBackend,
      // An open ended (either way) or a key failed: rebuild that Signer.
      (objectName) => this.signerQueue.add(objectName),
      now,
      options.tokenKeys?.timings,
    );
    this.tenantSecrets = new TenantSecretWatches(kubeConfig, {
      watchdogMs: options.watchdogMs,
      logger,
      changed: (ns, name) => {
        for (const signer of this.registry.usingSecret(name, ns)) this.signerQueue.add(signer);
      },
    });
    this.registry = new SignerRegistry(
      {
        signers: () => caches.signers.list(),
        signer: (name) => caches.signers.get(name),
        secret: (ns, name) =>
          ns === namespace ? caches.secrets.get(name, ns) : this.tenantSecrets.get(ns, name),
        namespaces: () => caches.namespaces.list(),
        tenantSecretsInUse: (keys) => this.tenantSecrets.retainOnly(keys),
      },
      namespace,
      now,
      (signer, result) => this.metrics.caParses.inc({ signer, result }),
      this.tokenKeys,
    );
    const identity = options.identity ?? `${hostname()}_${process.pid}`;
    const events =
      options.events ??
      new KubernetesEventRecorder(kubernetesEventWriter(api), "csr-signer", identity, logger);
    const csrSide = buildCsrHandlers(api, options, {
      registry: this.registry,
      csrs: caches.csrs,
      nodeAddresses: this.nodeAddresses,
      events,
      metrics: this.metrics,
      environment,
      firstSeen: this.firstSeen,
      stillLeading: () => this.isLeader,
    });
    this.csrReconciler = csrSide.reconciler;
    this.podCertificateReconciler = new PodCertificateReconciler(
      this.registry,
      caches.podCertificateRequests,
      kubernetesPodCertificateApi(api),
      events,
      this.metrics,
      logger,
      environment,
      options.podCertificateRandom,
    );
    this.cleaner = csrSide.cleaner;
    this.publisher = new TrustBundlePublisher(kubeConfig);
    this.publication = new TrustBundlePublication(this.publisher, {
      namespaces: () =>
        caches.namespaces
          .list()
          .flatMap(({ metadata, status }) =>
            metadata?.name ? [{ name: metadata.name, terminating: status?.phase === "Terminating" }] : [],
          ),
      configMaps: () => caches.configMaps.list(),
      clusterTrustBundles: () => caches.clusterTrustBundles.list(),
    });
    this.meshConfigSync = new IstioMeshConfigSync(
      options.istioMeshConfigs ?? [],
      api,
      () => caches.signers.list(),
      now,
      logger,
      this.metrics,
      () => this.isLeader,
    );
    const writeStatus = kubernetesSignerStatusWriter(api);
    this.signerReconciler = new SignerReconciler(
      this.registry,
      this.publication,
      writeStatus,
      this.metrics,
      logger,
      {
        isLeader: () => this.isLeader,
        now,
        signersReady: (signerNames) => {
          this.enqueueAllCsrs(signerNames);
          this.enqueueAllPodCertificateRequests(signerNames);
        },
        enqueue: (objectName) => this.signerQueue.add(objectName),
      },
      events,
    );
    if (options.leaderElection) {
      this.elector = new LeaderElector(kubernetesLeaseStore(api, namespace, this.leaseName), {
        namespace,
        name: this.leaseName,
        identity,
        ...(options.leaseTimings ?? defaultLeaderElectionTimings),
        logger: (message, fields) => logger.info(message, fields),
      });
      this.elector.onChange((leading) => this.setLeading(leading));
    }
    this.leadership = new Leadership(this.elector);
    this.stopObservingRequests = api.observeRequests(this.metrics.kubeRequestObserver());
    this.metrics.watchQueues({
      certificatesigningrequest: this.csrQueue,
      signer: this.signerQueue,
      podcertificaterequest: this.podCertificateQueue,
    });
    this.metrics.watchClusterState({
      signers: () => caches.signers.list(),
      csrs: () => caches.csrs.list(),
      signerNames: () =>
        this.registry.all().flatMap((signer) => (signer.spec ? [signer.spec.signerName] : [])),
      now,
    });
    this.metrics.leader.set({ name: this.leaseName }, this.elector ? 0 : 1);
    this.progress = new ProgressMonitor(options.stallAfterMs ?? 10 * 60_000);
    for (const informer of [...caches.all(), caches.clusterTrustBundles, caches.podCertificateRequests])
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

  /** The cached form of PodCertificateRequest `namespace/name` (for tests). */
  cachedPodCertificateRequest(namespace: string, name: string): PodCertificateRequestObject | undefined {
    return this.informers.podCertificateRequests.get(name, namespace);
  }

  /** "namespace/name" of the Secrets watched in tenant namespaces now (for tests). */
  tenantSecretsWatched(): string[] {
    return this.tenantSecrets.watched();
  }

  get isLeader(): boolean {
    return this.leadership.isLeader;
  }

  /** Bound addresses (port 0 resolved), for tests. */
  addresses(): string[] {
    return this.endpoints?.addresses() ?? [];
  }

  async start(): Promise<void> {
    const { options } = this;
    const secure = options.metricsSecure !== false && Boolean(options.metricsAddress);
    const access = secure ? new MetricsAccess(KubeApi.for(options.kubeConfig), options.logger) : undefined;
    const metricsTls = secure ? await this.metricsTls() : undefined;
    const certificateFiles = this.certificateFiles;
    this.endpoints = await HttpEndpoints.start(
      {
        ...options,
        metricsTls,
        onMetricsTlsChange: certificateFiles && ((listener) => certificateFiles.onChange(listener)),
      },
      {
        metrics: this.metrics.registry,
        stalls: () => this.progress.problems(),
        ready: () => this.ready,
        ...(access ? { metricsAccess: (authorization, path) => access.check(authorization, path) } : {}),
      },
    );
    this.certificateFiles?.start();
    enqueueOnCacheEvents(
      this.informers,
      this.registry,
      { csrs: this.csrQueue, signers: this.signerQueue },
      (csr) => this.csrReconciler.isOurs(csr),
      this.nodeAddresses,
      this.firstSeen,
    );
    await this.informers.startSignerSide(await this.clusterTrustBundlesServed());
    this.signerReconciler.rebuildAll(); // the CSR cache keeps requests of our signer names only
    // That rebuild started the watches of Secrets in tenant namespaces: their first answers come
    // before the first status writes, so a restart does not flap those Signers to SecretNotYetListed.
    await this.tenantSecrets.firstAnswers(10_000);
    await this.informers.csrs.start();
    this.informers.podCertificateRequests.on((event, pcr) => {
      const key = podCertificateRequestKey(pcr);
      // Ours and undecided only: nothing is kept per request, so a deletion needs no key either.
      if (key && event !== "delete" && !isDecided(pcr) && this.podCertificateReconciler.isOurs(pcr))
        this.podCertificateQueue.add(key);
    });
    this.informers.startPodCertificateRequests(
      await this.askUntilAnswered("PodCertificateRequest discovery", () =>
        podCertificateRequestsServed(KubeApi.for(options.kubeConfig)),
      ),
    );
    // Mounted CA, PIN and passphrase files are not watched: only Signers reading files are polled.
    this.every(options.caFolderPollMs ?? 10_000, () => {
      for (const name of this.registry.usingFolders()) this.signerQueue.add(name);
    });
    const cleaner = this.cleaner;
    if (cleaner) this.every(cleaner.intervalMs, () => void (this.isLeader && cleaner.sweep()));
    if (this.meshConfigSync.enabled) {
      // Roots change in Signer status; the resync also reverts an edit that dropped them. Never before
      // the Signer cache is synced (startSignerSide above): a pass on an empty cache would drop every root.
      this.informers.signers.on(() => this.isLeader && this.meshConfigSync.request());
      this.every(
        options.istioMeshConfigResyncMs ?? 60_000,
        () => this.isLeader && this.meshConfigSync.request(),
      );
      if (this.isLeader) this.meshConfigSync.request();
    }
    this.elector?.start();
    const common = { progress: this.progress, logger: options.logger };
    const csrMetrics = { controller: "certificatesigningrequest", recorder: this.metrics };
    const beforeEach = (): Promise<void> => this.leadership.wait();
    for (let i = 0; i < options.workers; i++)
      this.workerLoops.push(
        runWorker(this.csrQueue, (name) => this.reconcileCsr(name), {
          ...common,
          name: "csr",
          metrics: csrMetrics,
          beforeEach,
        }),
      );
    const podCertificateMetrics = { controller: "podcertificaterequest", recorder: this.metrics };
    for (let i = 0; i < options.workers; i++)
      this.workerLoops.push(
        runWorker(this.podCertificateQueue, (key) => this.reconcilePodCertificateRequest(key), {
          ...common,
          name: "podcertificaterequest",
          metrics: podCertificateMetrics,
          beforeEach,
        }),
      );
    this.workerLoops.push(
      runWorker(this.signerQueue, (name) => this.signerReconciler.reconcile(name), {
        ...common,
        name: "signer",
      }),
    );
    options.logger.info("controller started", {
      namespace: options.namespace,
      workers: options.workers,
      leaderElection: options.leaderElection,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.csrQueue.shutDown();
    this.signerQueue.shutDown();
    this.podCertificateQueue.shutDown();
    this.leadership.release();
    this.informers.stop();
    this.tenantSecrets.stop();
    await this.meshConfigSync.stop();
    await this.elector?.stop();
    await Promise.all(this.workerLoops);
    await this.tokenKeys.closeAll();
    this.certificateFiles?.stop();
    await this.endpoints?.close();
    this.stopObservingRequests();
  }

  private async reconcileCsr(name: string): Promise<ReconcileResult> {
    // Lost the lease while waiting: leave the CSR to the new leader (it requeues everything).
    if (!this.isLeader) return { kind: "done" };
    const signer = this.registry.forSignerName(this.informers.csrs.get(name)?.spec?.signerName ?? "");
    try {
      return await this.csrReconciler.reconcile(name);
    } finally {
      // Counts and troubles reach the Signer's status in one write per 2 s at most (addAfter coalesces).
      if (signer) this.signerQueue.addAfter(signer.objectName, 2000);
    }
  }

  private async reconcilePodCertificateRequest(key: string): Promise<ReconcileResult> {
    // Lost the lease while waiting: leave the request to the new leader (it requeues everything).
    if (!this.isLeader) return { kind: "done" };
    const [namespace = "", name = ""] = key.split("/", 2);
    const pcr = this.informers.podCertificateRequests.get(name, namespace);
    const signer = this.podCertificateReconciler.signerFor(pcr?.spec?.signerName ?? "");
    try {
      return await this.podCertificateReconciler.reconcile(key);
    } finally {
      if (signer) this.signerQueue.addAfter(signer.objectName, 2000);
    }
  }

  /**
   * The metrics server's certificate: the operator's (tls.crt, tls.key in metricsCertDir, reloaded when
   * they change), else self-signed.
   */
  private async metricsTls(): Promise<MetricsTls> {
    const folder = this.options.metricsCertDir;
    if (folder) {
      this.certificateFiles = new ServingCertificateFiles(
        folder,
        this.options.logger,
        this.options.metricsCertPollMs,
      );
      return this.certificateFiles.current;
    }
    const service = "csr-signer-metrics";
    const namespace = this.options.namespace;
    return createSelfSignedServingCertificate("csr-signer-metrics", [
      hostname(),
      "localhost",
      service,
      `${service}.${namespace}`,
      `${service}.${namespace}.svc`,
    ]);
  }

  /** Whether the API serves ClusterTrustBundles; asked until it answers (as the caches list until they can). */
  private clusterTrustBundlesServed(): Promise<boolean> {
    return this.askUntilAnswered("API discovery", () => this.publisher.clusterTrustBundlesAvailable());
  }

  private async askUntilAnswered(what: string, question: () => Promise<boolean>): Promise<boolean> {
    for (let delay = 500; ; delay = Math.min(delay * 2, 30_000)) {
      try {
        return await question();
      } catch (error) {
        if (this.stopped) throw error;
        this.options.logger.warn(`${what} failed; retrying`, { error: describeError(error) });
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  private every(milliseconds: number, action: () => void): void {
    const timer = setInterval(action, milliseconds);
    timer.unref();
    this.timers.push(timer);
  }

  private setLeading(leading: boolean): void {
    this.metrics.leader.set({ name: this.leaseName }, leading ? 1 : 0);
    if (!leading) return;
    this.leadership.acquired();
    // A new leader takes over everything pending: nothing waits for the next event.
    for (const signer of this.registry.all()) this.signerQueue.add(signer.objectName);
    this.meshConfigSync.request();
    for (const publisher of this.publication.publishers()) this.signerQueue.add(publisher);
    this.enqueueAllCsrs();
    this.enqueueAllPodCertificateRequests();
  }

  private enqueueAllPodCertificateRequests(signerNames?: ReadonlySet<string>): void {
    for (const pcr of this.informers.podCertificateRequests.list()) {
      const key = podCertificateRequestKey(pcr);
      if (
        key &&
        !isDecided(pcr) &&
        this.podCertificateReconciler.isOurs(pcr) &&
        (!signerNames || signerNames.has(pcr.spec?.signerName ?? ""))
      )
        this.podCertificateQueue.add(key);
    }
  }

  private enqueueAllCsrs(signerNames?: ReadonlySet<string>): void {
    for (const csr of this.informers.csrs.list()) {
      const name = csr.metadata?.name;
      if (
        name &&
        this.csrReconciler.isOurs(csr) &&
        (!signerNames || signerNames.has(csr.spec?.signerName ?? ""))
      ) {
        // A CSR that arrived before its Signer was not ours then: its latency counts from now.
        this.firstSeen.saw(csr);
        this.csrQueue.add(name);
      }
    }
  }
}

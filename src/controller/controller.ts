/**
 * Wires the signer controller: informers for CSRs, Signers, CA Secrets, Namespaces, published
 * ConfigMaps and (when kubelet-serving approval is on) Nodes; one work
 * queue for CSRs and one for Signer status; workers that run only while this instance leads;
 * /metrics, /healthz and /readyz.
 */
import { createServer, type Server } from "node:http";
import type { ParsedCertificate } from "../pki/certificate.js";
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeApi, patchContentType } from "../kube/api-client.js";
import { apiErrorCode, describeError } from "../kube/client.js";
import { kubernetesApprovalApi, kubernetesCsrApi } from "../kube/csr-api.js";
import { KubernetesEventRecorder, kubernetesEventWriter, type EventRecorder } from "../kube/events.js";
import { ResilientInformer } from "../kube/informer.js";
import {
  defaultLeaderElectionTimings,
  kubernetesLeaseStore,
  LeaderElector,
} from "../kube/leader-election.js";
import type { Logger } from "../logger.js";
import { systemIssuanceEnvironment, type IssuanceEnvironment } from "../pki/issuance.js";
import { signerApiGroup, signerApiVersion, signerPlural } from "../policy/signer-spec.js";
import { TrustBundlePublisher, trustBundleLabel, type ConfigMapObject } from "../bundle/publishers.js";
import {
  defaultCleanupIntervalMs,
  defaultCleanupPeriods,
  kubeletServingSignerName,
  type CleanupPeriods,
} from "../policy/kubelet-approval.js";
import { CsrApprover, type ApprovalSettings } from "./approver.js";
import { CsrCleaner } from "./csr-cleaner.js";
import { NodeAddressIndex, type IndexedNode as NodeObject } from "./node-address-index.js";
import { CsrReconciler, hasCondition, type CsrObject, type ReconcileResult } from "./csr-reconciler.js";
import { ControllerMetrics } from "./metrics.js";
import { cachedCsr, maximumCsrStringBytes } from "./csr-cache.js";
import {
  SignerRegistry,
  type NamespaceObject,
  type SecretObject,
  type SignerObject,
} from "./signer-registry.js";
import { WorkQueue } from "./work-queue.js";
import { ProgressMonitor } from "./progress-monitor.js";

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
  /** CSR clean-up; kube-controller-manager's periods by default, every minute. false: off. */
  cleanup?: (CleanupPeriods & { intervalMs: number }) | false;
}

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const signersPath = `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}`;
/** Signer queue keys: a full round (rebuild, publish, status), or only the status write. */
const signersKey = "signers";
const statusKey = "status";
const defaultLeaseName = "csr-signer";
/**
 * CSRs per list page. A page is cut as it streams in, so its size bounds the objects parsed at once,
 * not bytes held; small pages also keep each response (up to ~1.5 MB per CSR on the wire) short.
 */
const csrPageSize = 16;

export class SignerController {
  readonly metrics = new ControllerMetrics();
  readonly registry: SignerRegistry;
  readonly progress: ProgressMonitor;
  private readonly csrInformer: ResilientInformer<CsrObject>;
  private readonly signerInformer: ResilientInformer<SignerObject>;
  private readonly secretInformer: ResilientInformer<SecretObject>;
  private readonly namespaceInformer: ResilientInformer<NamespaceObject>;
  private readonly nodeInformer: ResilientInformer<NodeObject> | undefined;
  private readonly nodeAddresses: NodeAddressIndex;
  private readonly configMapInformer: ResilientInformer<ConfigMapObject>;
  private readonly publisher: TrustBundlePublisher;
  private readonly cleaner: CsrCleaner | undefined;
  private readonly cleanupIntervalMs: number = defaultCleanupIntervalMs;
  private readonly csrQueue: WorkQueue;
  private readonly signerQueue: WorkQueue;
  private readonly reconciler: CsrReconciler;
  private readonly elector: LeaderElector | undefined;
  private readonly servers: Server[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly logger: Logger;
  private readonly api: KubeApi;
  private stopped = false;
  /** resourceVersion of our last status write per Signer: its watch echo needs no new round. */
  private readonly ownStatusWrites = new Map<string, string>();
  private readonly leadershipWaiters: (() => void)[] = [];
  private readonly workerLoops: Promise<void>[] = [];

  constructor(private readonly options: ControllerOptions) {
    this.nodeAddresses = new NodeAddressIndex(options.approval?.kubeletServing?.extraDnsPatterns);
    const { kubeConfig, namespace, logger } = options;
    this.logger = logger;
    // One clock for everything that writes times (conditions, bundle records, clean-up).
    const environment = options.environment ?? systemIssuanceEnvironment;
    const now = (): Date => environment.now();
    this.api = KubeApi.for(kubeConfig);
    const informerLog = (message: string, fields?: Record<string, unknown>): void =>
      logger.warn(message, fields);
    const common = { watchdogMs: options.watchdogMs ?? 90_000, logger: informerLog };
    this.csrInformer = new ResilientInformer<CsrObject>(kubeConfig, {
      ...common,
      path: csrPath,
      // A CSR may carry ~1.5 MB in spec.request: small pages, long strings cut from the bytes before
      // parsing (the informer lists and watches by itself then), and only what we will read is kept.
      maxStringBytes: maximumCsrStringBytes,
      pageSize: csrPageSize,
      transform: (csr) => cachedCsr(csr, (signerName) => this.reconciler.isOurs({ spec: { signerName } })),
      resyncMs: options.resyncMs ?? 10 * 60_000,
    });
    this.signerInformer = new ResilientInformer<SignerObject>(kubeConfig, {
      ...common,
      path: signersPath,
    });
    this.secretInformer = new ResilientInformer<SecretObject>(kubeConfig, {
      ...common,
      path: `/api/v1/namespaces/${namespace}/secrets`,
    });
    this.namespaceInformer = new ResilientInformer<NamespaceObject>(kubeConfig, {
      ...common,
      path: "/api/v1/namespaces",
    });
    // Only ConfigMaps we published (label-selected), so the cache stays small.
    this.configMapInformer = new ResilientInformer<ConfigMapObject>(kubeConfig, {
      ...common,
      path: "/api/v1/configmaps",
      labelSelector: trustBundleLabel,
    });
    this.publisher = new TrustBundlePublisher(kubeConfig);
    if (options.approval?.kubeletServing) {
      this.nodeInformer = new ResilientInformer<NodeObject>(kubeConfig, {
        ...common,
        path: "/api/v1/nodes",
      });
      // Registered before the informer starts, so the first list fills the index.
      this.nodeInformer.on((event, node) => {
        const changed =
          event === "delete" ? (this.nodeAddresses.delete(node), true) : this.nodeAddresses.upsert(node);
        // New addresses can make the Node's undecided kubelet-serving CSRs approvable; a heartbeat that
        // changes no address (most Node updates, and resyncs) costs no scan of the CSR cache.
        if (changed) this.requeueUndecidedKubeletServing(node.metadata?.name ?? "");
      });
    }
    this.registry = new SignerRegistry(
      {
        signers: () => this.signerInformer.list(),
        secret: (ns, name) => this.secretInformer.get(name, ns),
        namespaces: () => this.namespaceInformer.list(),
      },
      namespace,
      now,
      (signer, result) => this.metrics.caParses.inc({ signer, result }),
    );
    this.csrQueue = new WorkQueue(
      undefined,
      undefined,
      this.metrics.queueMetrics("certificatesigningrequest"),
    );
    this.signerQueue = new WorkQueue(undefined, undefined, this.metrics.queueMetrics("signer"));
    const identity = options.identity ?? `${hostname()}_${process.pid}`;
    const events =
      options.events ??
      new KubernetesEventRecorder(kubernetesEventWriter(this.api), "csr-signer", identity, logger);
    const csrApi = kubernetesCsrApi(this.api);
    const approver = new CsrApprover(
      options.approval ?? {},
      this.registry,
      {
        get: (name) => this.nodeAddresses.get(name),
        nodesWithAddress: (key) => this.nodeAddresses.nodesWithAddress(key),
      },
      kubernetesApprovalApi(this.api),
      events,
      this.metrics,
      logger,
      now,
    );
    this.reconciler = new CsrReconciler(
      this.registry,
      { get: (name) => this.csrInformer.get(name) },
      csrApi,
      events,
      this.metrics,
      logger,
      environment,
      approver,
    );
    if (options.cleanup !== false) {
      const cleanup = options.cleanup ?? { ...defaultCleanupPeriods, intervalMs: defaultCleanupIntervalMs };
      this.cleanupIntervalMs = cleanup.intervalMs;
      this.cleaner = new CsrCleaner(
        cleanup,
        (signerName) => this.registry.forSignerName(signerName) !== undefined || approver.handles(signerName),
        () => this.csrInformer.list(),
        async (name, uid) => {
          await this.api.delete(`${csrPath}/${name}`, { preconditions: { uid } });
        },
        this.metrics,
        logger,
        now,
      );
    }
    if (options.leaderElection) {
      const leaseName = options.leaseName ?? defaultLeaseName;
      this.elector = new LeaderElector(kubernetesLeaseStore(this.api, namespace, leaseName), {
        namespace,
        name: leaseName,
        identity,
        ...(options.leaseTimings ?? defaultLeaderElectionTimings),
        logger: (message, fields) => logger.info(message, fields),
      });
      this.elector.onChange((leading) => this.setLeading(leading));
    }
    this.metrics.leader.set({ name: options.leaseName ?? defaultLeaseName }, this.elector ? 0 : 1);
    this.progress = new ProgressMonitor(options.stallAfterMs ?? 10 * 60_000);
    for (const informer of this.informers())
      this.progress.watch({ name: `list ${informer.path}`, busySince: () => informer.listingSince });
  }

  /** True when caches are synced and every watch is live (what /readyz answers). */
  get ready(): boolean {
    return this.informers().every((informer) => informer.healthy);
  }

  private informers(): ResilientInformer<object>[] {
    const all: ResilientInformer<object>[] = [
      this.configMapInformer,
      this.csrInformer,
      this.signerInformer,
      this.secretInformer,
      this.namespaceInformer,
    ];
    if (this.nodeInformer) all.push(this.nodeInformer);
    return all;
  }

  /** The cached form of CSR `name` (what the cache holds, for tests and benchmarks). */
  cachedCsr(name: string): CsrObject | undefined {
    return this.csrInformer.get(name);
  }

  get isLeader(): boolean {
    return this.elector?.isLeader ?? true;
  }

  private requeueUndecidedKubeletServing(nodeName: string): void {
    for (const csr of this.csrInformer.list()) {
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

  async start(): Promise<void> {
    await this.startServers();
    const enqueueSigners = (): void => this.signerQueue.add(signersKey);
    this.signerInformer.on((event, signer) => {
      // The echo of our own status write changes nothing a round would look at.
      const name = signer.metadata?.name ?? "";
      if (event === "upsert" && signer.metadata?.resourceVersion === this.ownStatusWrites.get(name)) return;
      enqueueSigners();
    });
    this.secretInformer.on(enqueueSigners);
    this.namespaceInformer.on(() => {
      this.registry.namespacesChanged();
      enqueueSigners();
    });
    this.configMapInformer.on(enqueueSigners); // an edited or deleted copy is put back at once
    this.csrInformer.on((event, csr) => {
      const name = csr.metadata?.name;
      if (!name) return;
      // Only our signers' CSRs enter the queue; a deletion is queued so that per-CSR state is dropped.
      if (event === "delete" || this.reconciler.isOurs(csr)) this.csrQueue.add(name);
    });
    await Promise.all([
      this.signerInformer.start(),
      this.secretInformer.start(),
      this.namespaceInformer.start(),
      this.nodeInformer?.start(),
      this.configMapInformer.start(),
    ]);
    this.rebuildSigners();
    await this.csrInformer.start();
    const poll = setInterval(enqueueSigners, this.options.caFolderPollMs ?? 10_000);
    poll.unref();
    this.timers.push(poll);
    if (this.cleaner) {
      const cleaner = this.cleaner;
      const sweep = setInterval(() => {
        if (this.isLeader) void cleaner.sweep();
      }, this.cleanupIntervalMs);
      sweep.unref();
      this.timers.push(sweep);
    }
    this.elector?.start();
    for (let i = 0; i < this.options.workers; i++) this.workerLoops.push(this.runCsrWorker());
    this.workerLoops.push(this.runSignerWorker());
    this.logger.info("controller started", {
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
    for (const informer of this.informers()) informer.stop();
    await this.elector?.stop();
    await Promise.all(this.workerLoops);
    await Promise.all(
      this.servers.map((server) => {
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeAllConnections(); // keep-alive scrapes would otherwise hold close() open
        return closed;
      }),
    );
  }

  private setLeading(leading: boolean): void {
    this.metrics.leader.set({ name: this.options.leaseName ?? defaultLeaseName }, leading ? 1 : 0);
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
    for (const csr of this.csrInformer.list()) {
      const name = csr.metadata?.name;
      if (
        name &&
        this.reconciler.isOurs(csr) &&
        (!signerNames || signerNames.has(csr.spec?.signerName ?? ""))
      )
        this.csrQueue.add(name);
    }
  }

  private rebuildSigners(): void {
    const changed = this.registry.rebuild();
    // Rewritten from scratch each time, so retired CA certificates and deleted Signers drop out.
    this.metrics.signerReady.reset();
    this.metrics.caExpiry.reset();
    const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);
    for (const signer of this.registry.all()) {
      const signerName = signer.spec?.signerName ?? signer.objectName;
      this.metrics.signerReady.set({ signer: signerName }, signer.problem ? 0 : 1);
      const authority = signer.authority;
      if (!authority) continue;
      const certificates: [string, ParsedCertificate][] = [
        ["signing", authority.signingCertificate],
        ...authority.intermediates.map((c): [string, ParsedCertificate] => ["intermediate", c]),
        ...authority.roots.map((c): [string, ParsedCertificate] => ["root", c]),
      ];
      for (const [role, certificate] of certificates)
        this.metrics.caExpiry.set(
          // The fingerprint tells apart certificates with one subject (a renewed root).
          {
            signer: signerName,
            role,
            subject: certificate.subject,
            fingerprint: certificate.fingerprintSha256,
          },
          seconds(certificate.notAfter),
        );
    }
    if (changed.length > 0) {
      this.logger.info("signers ready", { signers: changed });
      this.enqueueAllCsrs(new Set(changed));
    }
  }

  private async runSignerWorker(): Promise<void> {
    for (;;) {
      const key = await this.signerQueue.get();
      if (key === undefined) return;
      const started = Date.now();
      try {
        const published = await this.progress.track(`signers ${key}`, async () => {
          if (key === statusKey) {
            // Counts and signing troubles only: no rebuild, no publication.
            if (this.isLeader) await this.writeSignerStatuses();
            return true;
          }
          this.rebuildSigners();
          if (!this.isLeader) return true;
          const complete = await this.publishTrustBundles();
          await this.writeSignerStatuses();
          return complete;
        });
        // An incomplete publication (RBAC missing, API errors) is tried again with backoff.
        if (published) this.signerQueue.forget(key);
        else this.signerQueue.addRateLimited(key);
      } catch (error) {
        this.logger.error("signer reconcile failed", { error: describeError(error) });
        this.signerQueue.addRateLimited(key);
      } finally {
        this.signerQueue.done(key, started);
      }
    }
  }

  /**
   * Publishes every Signer's bundle. Once all copies of a bundle are written its new roots count
   * as published, which may let new CA material be adopted: then the signers are rebuilt.
   * Returns false when some publication is incomplete.
   */
  private async publishTrustBundles(): Promise<boolean> {
    const namespaces = this.namespaceInformer.list();
    const ours = this.configMapInformer.list();
    const live = new Set<string>();
    let newlyPublished = false;
    let allComplete = true;
    for (const signer of this.registry.all()) {
      live.add(signer.objectName);
      const spec = signer.spec;
      const bundle = signer.bundle;
      if (!spec || !bundle || bundle.certificates.length === 0) continue; // nothing valid to publish yet
      const tenants = this.registry.tenantNamespaces(spec);
      const targets = namespaces
        .filter((ns) => ns.metadata?.name && tenants.has(ns.metadata.name))
        .map((ns) => ({ name: ns.metadata!.name!, terminating: ns.status?.phase === "Terminating" }));
      const mine = ours.filter((cm) => cm.metadata?.labels?.[trustBundleLabel] === signer.objectName);
      const configMaps = await this.publisher.publishConfigMaps(
        signer.objectName,
        spec.trustBundle.configMap,
        bundle.pem,
        targets,
        mine,
      );
      const clusterTrustBundle = await this.publisher.publishClusterTrustBundle(
        signer.objectName,
        spec.signerName,
        spec.trustBundle.clusterTrustBundle ? bundle.pem : undefined,
      );
      const problems = [...configMaps.problems, ...clusterTrustBundle.problems];
      for (const problem of problems)
        this.logger.warn("trust bundle publication problem", { signer: signer.objectName, problem });
      this.registry.reportPublication(signer.objectName, problems);
      if (!configMaps.complete || !clusterTrustBundle.complete) allComplete = false;
      else if (this.registry.markPublished(signer.objectName)) newlyPublished = true;
    }
    // Publications of Signers that no longer exist.
    const orphans = new Set(
      ours
        .map((cm) => cm.metadata?.labels?.[trustBundleLabel] ?? "")
        .filter((name) => name && !live.has(name)),
    );
    for (const orphan of orphans) {
      await this.publisher.publishConfigMaps(
        orphan,
        undefined,
        "",
        [],
        ours.filter((cm) => cm.metadata?.labels?.[trustBundleLabel] === orphan),
      );
      await this.publisher.publishClusterTrustBundle(orphan, "", undefined);
    }
    if (newlyPublished) this.rebuildSigners();
    return allComplete;
  }

  private async writeSignerStatuses(): Promise<void> {
    let failed = false;
    for (const signer of this.registry.all()) {
      const status = this.registry.desiredStatus(signer.objectName);
      if (!status) continue;
      try {
        const written = await this.api.patch<SignerObject>(
          `${signersPath}/${signer.objectName}/status`,
          patchContentType.merge,
          { status },
        );
        this.ownStatusWrites.set(signer.objectName, written.metadata?.resourceVersion ?? "");
        this.registry.statusWritten(signer.objectName);
      } catch (error) {
        if (apiErrorCode(error) === 404) continue; // deleted meanwhile
        failed = true;
        this.logger.warn("could not write Signer status", {
          signer: signer.objectName,
          error: describeError(error),
        });
      }
    }
    if (failed) throw new Error("some Signer statuses were not written");
  }

  private async runCsrWorker(): Promise<void> {
    for (;;) {
      await this.waitForLeadership();
      const name = await this.csrQueue.get();
      if (name === undefined) return;
      const started = Date.now();
      let result: ReconcileResult | undefined;
      try {
        if (!this.isLeader) {
          // Lost the lease while waiting: leave the CSR to the new leader (it requeues everything).
          result = { kind: "done" };
        } else {
          result = await this.progress.track(`csr ${name}`, () => this.reconciler.reconcile(name));
        }
      } catch (error) {
        this.metrics.reconcileErrors.inc({ controller: "certificatesigningrequest" });
        this.logger.error("reconcile failed", { csr: name, error: describeError(error) });
        result = { kind: "retry", reason: "Error" };
      } finally {
        this.metrics.reconcileTime.observe(
          { controller: "certificatesigningrequest" },
          (Date.now() - started) / 1000,
        );
      }
      const outcome = result!;
      if (outcome.kind === "done") {
        this.csrQueue.forget(name);
        this.metrics.reconcileTotal.inc({ controller: "certificatesigningrequest", result: "success" });
      } else {
        this.csrQueue.addRateLimited(name);
        this.metrics.reconcileTotal.inc({ controller: "certificatesigningrequest", result: "requeue" });
      }
      this.csrQueue.done(name, started);
      // Counts and troubles reach Signer status in one write per 2 s at most (addAfter coalesces).
      this.signerQueue.addAfter(statusKey, 2000);
    }
  }

  private async startServers(): Promise<void> {
    const listen = async (
      address: string | undefined,
      handle: (path: string) => Promise<[number, string, string]>,
    ): Promise<void> => {
      if (!address) return;
      const separator = address.lastIndexOf(":");
      const host = address.slice(0, separator) || "0.0.0.0";
      const port = Number(address.slice(separator + 1));
      const server = createServer((request, response) => {
        handle(new URL(request.url ?? "/", "http://x").pathname).then(
          ([status, contentType, body]) =>
            response.writeHead(status, { "Content-Type": contentType }).end(body),
          () => response.writeHead(500).end(),
        );
      });
      await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
      this.servers.push(server);
    };
    await listen(this.options.metricsAddress, async (path) =>
      path === "/metrics"
        ? [200, this.metrics.registry.contentType, await this.metrics.registry.metrics()]
        : [404, "text/plain", "not found\n"],
    );
    await listen(this.options.probeAddress, async (path) => {
      if (path === "/healthz") {
        const stuck = this.progress.problems();
        return stuck.length === 0
          ? [200, "text/plain", "ok\n"]
          : [503, "text/plain", `${stuck.join("\n")}\n`];
      }
      if (path === "/readyz")
        return this.ready
          ? [200, "text/plain", "ok\n"]
          : [503, "text/plain", "caches not synced or watches not live\n"];
      return [404, "text/plain", "not found\n"];
    });
  }

  /** Bound addresses (port 0 resolved), for tests. */
  addresses(): string[] {
    return this.servers.map((server) => {
      const address = server.address();
      return typeof address === "object" && address ? `${address.address}:${address.port}` : String(address);
    });
  }
}

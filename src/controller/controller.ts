/**
 * The manager: builds the collaborators (collaborators.ts), then starts them in order (the HTTP
 * endpoints, the caches, the periodic passes, the elector, the workers) and stops them. CSR and
 * PodCertificateRequest workers run only while this instance leads; a new leader takes over what
 * is pending (leader-takeover.ts).
 */
import { KubeApi } from "../kube/api-client.js";
import { podCertificateRequestsServed } from "../kube/pod-certificate-api-binding.js";
import { scavengesResponseBytes } from "../kube/response-garbage.js";
import { askUntilAnswered } from "./ask-until-answered.js";
import { buildCollaborators, type ControllerCollaborators } from "./collaborators.js";
import type { ControllerOptions } from "./controller-options.js";
import type { CsrObject } from "./csr-object.js";
import { enqueueOnCacheEvents, enqueueOnPodCertificateRequestEvents } from "./enqueue-on-cache-events.js";
import { HttpServing } from "./http-serving.js";
import { LeaderTakeover } from "./leader-takeover.js";
import type { ControllerMetrics } from "./metrics.js";
import { PeriodicPasses } from "./periodic-passes.js";
import type { PodCertificateRequestObject } from "./pod-certificate-object.js";
import type { ProgressMonitor } from "./progress-monitor.js";
import type { SignerRegistry } from "./signer-registry.js";
import { startWorkerSet } from "./worker-set.js";

export class SignerController {
  readonly metrics: ControllerMetrics;
  readonly registry: SignerRegistry;
  readonly progress: ProgressMonitor;
  private readonly parts: ControllerCollaborators;
  private readonly takeover: LeaderTakeover;
  private readonly passes = new PeriodicPasses();
  private serving: HttpServing | undefined;
  private stopped = false;
  private readonly workerLoops: Promise<void>[] = [];

  constructor(private readonly options: ControllerOptions) {
    this.parts = buildCollaborators(options, {
      signersReady: (signerNames) => this.takeover.requeuePending(signerNames),
    });
    this.takeover = new LeaderTakeover(this.parts);
    this.parts.elector?.onChange((leading) => this.takeover.leadingChanged(leading));
    this.metrics = this.parts.metrics;
    this.registry = this.parts.registry;
    this.progress = this.parts.progress;
  }

  /** True when caches are synced and every watch is live (what /readyz answers). */
  get ready(): boolean {
    return this.parts.informers.all().every((informer) => informer.healthy);
  }

  /** The cached form of CSR `name` (what the cache holds, for tests and benchmarks). */
  cachedCsr(name: string): CsrObject | undefined {
    return this.parts.informers.csrs.get(name);
  }

  /** The cached form of PodCertificateRequest `namespace/name` (for tests). */
  cachedPodCertificateRequest(namespace: string, name: string): PodCertificateRequestObject | undefined {
    return this.parts.informers.podCertificateRequests.get(name, namespace);
  }

  /** "namespace/name" of the Secrets watched in tenant namespaces now (for tests). */
  tenantSecretsWatched(): string[] {
    return this.parts.tenantSecrets.watched();
  }

  get isLeader(): boolean {
    return this.parts.leadership.isLeader;
  }

  /** Bound addresses (port 0 resolved), for tests. */
  addresses(): string[] {
    return this.serving?.addresses() ?? [];
  }

  async start(): Promise<void> {
    const { options, parts } = this;
    const { informers, queues } = parts;
    this.serving = await HttpServing.start(options, {
      metrics: this.metrics.registry,
      stalls: () => this.progress.problems(),
      ready: () => this.ready,
    });
    enqueueOnCacheEvents(
      informers,
      this.registry,
      { csrs: queues.csrs, signers: queues.signers },
      parts.csrReconciler,
      parts.nodeAddresses,
      parts.firstSeen,
      () => parts.leadership.holdsLease,
    );
    await informers.startSignerSide(
      await this.askUntilAnswered("API discovery", () => parts.publisher.clusterTrustBundlesAvailable()),
    );
    parts.signerReconciler.rebuildAll(); // the CSR cache keeps requests of our signer names only
    // That rebuild started the watches of Secrets in tenant namespaces: their first answers come
    // before the first status writes, so a restart does not flap those Signers to SecretNotYetListed.
    await parts.tenantSecrets.firstAnswers(10_000);
    await informers.csrs.start();
    enqueueOnPodCertificateRequestEvents(
      informers.podCertificateRequests,
      (pcr) => parts.podCertificateReconciler.isOurs(pcr),
      queues.podCertificateRequests,
      () => parts.leadership.holdsLease,
    );
    informers.startPodCertificateRequests(
      await this.askUntilAnswered("PodCertificateRequest discovery", () =>
        podCertificateRequestsServed(KubeApi.for(options.kubeConfig)),
      ),
    );
    this.passes.start(parts, options); // after startSignerSide: the Signer cache is synced
    parts.elector?.start();
    this.workerLoops.push(...startWorkerSet(parts, options));
    options.logger.info("controller started", {
      namespace: options.namespace,
      workers: options.workers,
      leaderElection: options.leaderElection,
      // false when node ran without --expose-gc: see src/kube/response-garbage.ts
      scavengesResponseBytes,
    });
  }

  async stop(): Promise<void> {
    const { parts } = this;
    this.stopped = true;
    this.passes.stop();
    parts.queues.csrs.shutDown();
    parts.queues.signers.shutDown();
    parts.queues.podCertificateRequests.shutDown();
    parts.leadership.release();
    parts.informers.stop();
    parts.tenantSecrets.stop();
    await parts.meshConfigSync.stop();
    await parts.elector?.stop();
    await Promise.all(this.workerLoops);
    await parts.tokenKeys.closeAll();
    await this.serving?.close();
    parts.stopObservingRequests();
  }

  private askUntilAnswered(what: string, question: () => Promise<boolean>): Promise<boolean> {
    return askUntilAnswered(what, question, { logger: this.options.logger, stopped: () => this.stopped });
  }
}

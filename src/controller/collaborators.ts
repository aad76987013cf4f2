/**
 * The controller's object graph, built in one place: the metrics and the three work queues, the
 * caches, the Signer registry with its token keys and tenant Secret watches, the CSR, Signer and
 * PodCertificateRequest reconcilers, trust-bundle publication, the mesh-config sync, the leader
 * elector and the wiring of metrics to all of them. Nothing here starts: the manager
 * (controller.ts) does.
 */
import { hostname } from "node:os";
import { TrustBundlePublication } from "../bundle/publication.js";
import { TrustBundlePublisher } from "../bundle/publishers.js";
import { KubeApi } from "../kube/api-client.js";
import { KubernetesEventRecorder, kubernetesEventWriter } from "../kube/events.js";
import {
  defaultLeaderElectionTimings,
  kubernetesLeaseStore,
  LeaderElector,
} from "../kube/leader-election.js";
import { kubernetesPodCertificateApi } from "../kube/pod-certificate-api-binding.js";
import { systemIssuanceEnvironment } from "../pki/issuance.js";
import type { ControllerOptions } from "./controller-options.js";
import { CsrFirstSeen } from "./csr-first-seen.js";
import { WrittenCertificates } from "./written-certificates.js";
import { buildCsrHandlers, type CsrHandlers } from "./csr-handlers.js";
import type { CsrReconciler } from "./csr-reconciler.js";
import { ControllerInformers } from "./informers.js";
import { IstioMeshConfigSync } from "./istio-mesh-config-sync.js";
import { Leadership } from "./leadership.js";
import { ControllerMetrics } from "./metrics.js";
import { NodeAddressIndex } from "./node-address-index.js";
import { pkcs11TokenKeyBackend } from "./pkcs11-backend.js";
import { PodCertificateReconciler } from "./pod-certificate-reconciler.js";
import { ProgressMonitor } from "./progress-monitor.js";
import { SignerReconciler } from "./signer-reconciler.js";
import { SignerRegistry } from "./signer-registry.js";
import { rateLimitedSignerStatusWriter } from "./signer-status-writer.js";
import { TenantSecretWatches } from "./tenant-secret-watches.js";
import { KeyDecryptions } from "./key-decryptions.js";
import { TokenKeys } from "./token-keys.js";
import { WorkQueue } from "./work-queue.js";

const defaultLeaseName = "csr-signer";

export interface ControllerQueues {
  /** CSR names. */
  readonly csrs: WorkQueue;
  /** Signer object names (and trust-bundle publishers). */
  readonly signers: WorkQueue;
  /** PodCertificateRequests, keyed namespace/name: a queue of their own, so neither kind waits behind the other. */
  readonly podCertificateRequests: WorkQueue;
}

export interface ControllerCollaborators {
  readonly metrics: ControllerMetrics;
  /** When each CSR in flight was first seen: the start of csr_signer_issuance_latency_seconds. */
  readonly firstSeen: CsrFirstSeen;
  readonly queues: ControllerQueues;
  readonly informers: ControllerInformers;
  readonly nodeAddresses: NodeAddressIndex;
  readonly tokenKeys: TokenKeys;
  /** Secrets Signers read in tenant namespaces (certificateAuthority.secretNamespace), one watch each. */
  readonly tenantSecrets: TenantSecretWatches;
  readonly registry: SignerRegistry;
  readonly csrReconciler: CsrReconciler;
  readonly cleaner: CsrHandlers["cleaner"];
  readonly podCertificateReconciler: PodCertificateReconciler;
  readonly publisher: TrustBundlePublisher;
  readonly publication: TrustBundlePublication;
  readonly meshConfigSync: IstioMeshConfigSync;
  readonly signerReconciler: SignerReconciler;
  /** Absent without leader election. */
  readonly elector: LeaderElector | undefined;
  readonly leadership: Leadership;
  readonly leaseName: string;
  readonly progress: ProgressMonitor;
  readonly stopObservingRequests: () => void;
}

export interface CollaboratorHooks {
  /** Signers became able to sign: their pending requests are worth another look. */
  signersReady(signerNames: ReadonlySet<string>): void;
}

export function buildCollaborators(
  options: ControllerOptions,
  hooks: CollaboratorHooks,
): ControllerCollaborators {
  const { kubeConfig, namespace, logger } = options;
  const metrics = new ControllerMetrics(options.build);
  const firstSeen = new CsrFirstSeen();
  const writtenCertificates = new WrittenCertificates();
  // Retries count per signer name (a tenant), so one tenant's flood of retries never delays another's.
  // Asked only after construction (by retries), when the informers below exist.
  const csrSignerName = (name: string): string => informers.csrs.get(name)?.spec?.signerName ?? "";
  const podCertificateSignerName = (key: string): string => {
    const [namespace = "", name = ""] = key.split("/", 2);
    return informers.podCertificateRequests.get(name, namespace)?.spec?.signerName ?? "";
  };
  const queues: ControllerQueues = {
    csrs: new WorkQueue(
      undefined,
      undefined,
      metrics.queueMetrics("certificatesigningrequest"),
      csrSignerName,
    ),
    signers: new WorkQueue(undefined, undefined, metrics.queueMetrics("signer")),
    podCertificateRequests: new WorkQueue(
      undefined,
      undefined,
      metrics.queueMetrics("podcertificaterequest"),
      podCertificateSignerName,
    ),
  };
  const leaseName = options.leaseName ?? defaultLeaseName;
  // Asked only after construction (by callbacks), when the leadership below exists.
  const isLeader = (): boolean => leadership.isLeader;
  // One clock for everything that writes times (conditions, bundle records, clean-up).
  const environment = options.environment ?? systemIssuanceEnvironment;
  const now = (): Date => environment.now();
  // One API client (one connection pool, one client rate limit) for every call this controller makes
  // but the Lease's, Events and Signer status writes: each has a limiter of its own.
  const api = KubeApi.for(kubeConfig);
  const informers: ControllerInformers = new ControllerInformers(kubeConfig, {
    namespace,
    watchdogMs: options.watchdogMs,
    resyncMs: options.resyncMs,
    nodes: options.approval?.kubeletServing !== undefined,
    logger,
    isOurSignerName: (signerName) => csrReconciler.isOurSignerName(signerName),
    writtenCertificates,
    isOurPodSignerName: (signerName) => podCertificateReconciler.signerFor(signerName) !== undefined,
  });
  const nodeAddresses = new NodeAddressIndex(options.approval?.kubeletServing?.extraDnsPatterns);
  const tokenKeys = new TokenKeys(
    options.tokenKeys?.backend ?? pkcs11TokenKeyBackend,
    // An open ended (either way) or a key failed: rebuild that Signer.
    (objectName) => queues.signers.add(objectName),
    now,
    options.tokenKeys?.timings,
  );
  const tenantSecrets = new TenantSecretWatches(kubeConfig, {
    watchdogMs: options.watchdogMs,
    logger,
    changed: (ns, name) => {
      for (const signer of registry.usingSecret(name, ns)) queues.signers.add(signer);
    },
  });
  const registry: SignerRegistry = new SignerRegistry(
    {
      signers: () => informers.signers.list(),
      signer: (name) => informers.signers.get(name),
      secret: (ns, name, dataKeys) =>
        ns === namespace ? informers.secrets.get(name, ns) : tenantSecrets.get(ns, name, dataKeys),
      namespaces: () => informers.namespaces.list(),
      tenantSecretsInUse: (keys) => tenantSecrets.retainOnly(keys),
    },
    namespace,
    now,
    (signer, result) => metrics.caParses.inc({ signer, result }),
    tokenKeys,
    // A decryption that settles rebuilds its Signer at once, not at the next recheck.
    new KeyDecryptions((objectName) => queues.signers.add(objectName)),
  );
  const identity = options.identity ?? `${hostname()}_${process.pid}`;
  const events =
    options.events ??
    new KubernetesEventRecorder(
      kubernetesEventWriter(api),
      "csr-signer",
      identity,
      logger,
      undefined,
      undefined,
      metrics.eventDropped,
    );
  const csrSide = buildCsrHandlers(api, options, {
    registry,
    csrs: informers.csrs,
    nodeAddresses,
    events,
    metrics,
    environment,
    firstSeen,
    writtenCertificates,
    stillLeading: isLeader,
  });
  const csrReconciler: CsrReconciler = csrSide.reconciler;
  const podCertificateReconciler: PodCertificateReconciler = new PodCertificateReconciler(
    registry,
    informers.podCertificateRequests,
    kubernetesPodCertificateApi(api, isLeader),
    events,
    metrics,
    logger,
    environment,
    options.podCertificateRandom,
  );
  const publisher = new TrustBundlePublisher(kubeConfig);
  const publication = new TrustBundlePublication(publisher, {
    namespaces: () =>
      informers.namespaces
        .list()
        .flatMap(({ metadata, status }) =>
          metadata?.name ? [{ name: metadata.name, terminating: status?.phase === "Terminating" }] : [],
        ),
    configMaps: () => informers.configMaps.list(),
    clusterTrustBundles: () => informers.clusterTrustBundles.list(),
  });
  const meshConfigSync = new IstioMeshConfigSync(
    options.istioMeshConfigs ?? [],
    api,
    () => informers.signers.list(),
    now,
    logger,
    metrics,
    isLeader,
    // A Signer left out (or back in) shows in its Degraded condition, written by its own reconcile.
    (leftOut) => {
      for (const objectName of registry.troubles.reportMeshConfigLeftOut(leftOut))
        queues.signers.add(objectName);
    },
  );
  const signerReconciler = new SignerReconciler(
    registry,
    publication,
    rateLimitedSignerStatusWriter(api),
    metrics,
    logger,
    {
      isLeader,
      now,
      signersReady: (signerNames) => hooks.signersReady(signerNames),
      enqueue: (objectName) => queues.signers.add(objectName),
    },
    events,
  );
  const elector = options.leaderElection
    ? new LeaderElector(kubernetesLeaseStore(api, namespace, leaseName), {
        namespace,
        name: leaseName,
        identity,
        ...(options.leaseTimings ?? defaultLeaderElectionTimings),
        logger: (message, fields) => logger.info(message, fields),
      })
    : undefined;
  const leadership: Leadership = new Leadership(elector);
  const stopObservingRequests = api.observeRequests(metrics.kubeRequestObserver());
  metrics.watchQueues({
    certificatesigningrequest: queues.csrs,
    signer: queues.signers,
    podcertificaterequest: queues.podCertificateRequests,
  });
  metrics.watchClusterState({
    csrs: () => informers.csrs.list(),
    signerNames: () => registry.all().flatMap((signer) => (signer.spec ? [signer.spec.signerName] : [])),
    now,
  });
  metrics.leader.set({ name: leaseName }, elector ? 0 : 1);
  const progress = new ProgressMonitor(options.stallAfterMs ?? 10 * 60_000);
  for (const informer of [
    ...informers.all(),
    informers.clusterTrustBundles,
    informers.podCertificateRequests,
  ])
    progress.watch({ name: `list ${informer.path}`, busySince: () => informer.listingSince });
  return {
    metrics,
    firstSeen,
    queues,
    informers,
    nodeAddresses,
    tokenKeys,
    tenantSecrets,
    registry,
    csrReconciler,
    cleaner: csrSide.cleaner,
    podCertificateReconciler,
    publisher,
    publication,
    meshConfigSync,
    signerReconciler,
    elector,
    leadership,
    leaseName,
    progress,
    stopObservingRequests,
  };
}

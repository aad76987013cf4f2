/**
 * The caches the controller reads: CSRs (cut to what we read), Signers, CA Secrets of the controller
 * namespace (tenant namespaces' are tenant-secret-watches.ts's), Namespaces, the ConfigMaps and ClusterTrustBundles we published (label-selected; the
 * latter when the API serves them) and, when kubelet-serving approval is on, Nodes.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { csrPath } from "../kube/csr-api-binding.js";
import { ResilientInformer } from "../kube/informer.js";
import type { Logger } from "../logger.js";
import { signerApiGroup, signerApiVersion, signerPlural, type SignerObject } from "../api/signer.js";
import {
  cachedConfigMap,
  trustBundleLabel,
  type ClusterTrustBundleObject,
  type ConfigMapObject,
} from "../bundle/publishers.js";
import type { SecretObject } from "./ca-source.js";
import { cachedCsr, maximumCsrStringBytes } from "./csr-cache.js";
import type { CsrObject } from "./csr-object.js";
import { cachedNode, type IndexedNode } from "./node-address-index.js";
import {
  cachedPodCertificateRequest,
  podCertificateRequestsPath,
  type PodCertificateRequestObject,
} from "./pod-certificate-object.js";
import type { NamespaceObject } from "./signer-registry.js";
import type { WrittenCertificates } from "./written-certificates.js";

const signersPath = `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}`;
/**
 * CSRs per list page. A page is cut as it streams in, so its size bounds the objects parsed at once,
 * not bytes held; small pages also keep each response (up to ~1.5 MB per CSR on the wire) short.
 */
const csrPageSize = 16;
/** Labelled ConfigMaps per list page (each may be 1 MiB). */
const configMapPageSize = 16;

export interface InformerSettings {
  /** Where CA Secrets live (but those of Signers naming certificateAuthority.secretNamespace: tenant-secret-watches.ts). */
  namespace: string;
  watchdogMs?: number | undefined;
  /** How often every cached CSR is handed to the handlers again (default 10 min). */
  resyncMs?: number | undefined;
  /** Whether Nodes are cached (kubelet-serving approval reads their addresses). */
  nodes: boolean;
  logger: Logger;
  /** Whether a signer name is ours: only then does the CSR cache keep spec.request. */
  isOurSignerName: (signerName: string) => boolean;
  /** The NotAfter of certificates this process wrote, for the echoes of its writes. */
  writtenCertificates: WrittenCertificates;
  /** Whether a Signer signs pod certificates for a signer name: only then are a request's key fields kept. */
  isOurPodSignerName: (signerName: string) => boolean;
}

export class ControllerInformers {
  readonly csrs: ResilientInformer<CsrObject>;
  readonly signers: ResilientInformer<SignerObject>;
  readonly secrets: ResilientInformer<SecretObject>;
  readonly namespaces: ResilientInformer<NamespaceObject>;
  readonly configMaps: ResilientInformer<ConfigMapObject>;
  readonly clusterTrustBundles: ResilientInformer<ClusterTrustBundleObject>;
  readonly nodes: ResilientInformer<IndexedNode> | undefined;
  readonly podCertificateRequests: ResilientInformer<PodCertificateRequestObject>;
  /** Whether the API serves ClusterTrustBundles (known once startSignerSide has run). */
  private clusterTrustBundlesServed = false;
  /** Whether the API serves PodCertificateRequests (known once startPodCertificateRequests has run). */
  private podCertificateRequestsServed = false;

  constructor(kubeConfig: KubeConfig, settings: InformerSettings) {
    const { namespace, logger } = settings;
    const common = {
      watchdogMs: settings.watchdogMs ?? 90_000,
      logger: (message: string, fields?: Record<string, unknown>): void => logger.warn(message, fields),
    };
    this.csrs = new ResilientInformer<CsrObject>(kubeConfig, {
      ...common,
      path: csrPath,
      // A CSR may carry ~1.5 MB in spec.request: small pages, long strings cut from the bytes before
      // parsing (the informer lists and watches by itself then), and only what we will read is kept.
      maxStringBytes: maximumCsrStringBytes,
      pageSize: csrPageSize,
      transform: (csr) => cachedCsr(csr, settings.isOurSignerName, settings.writtenCertificates),
      resyncMs: settings.resyncMs ?? 10 * 60_000,
    });
    this.signers = new ResilientInformer<SignerObject>(kubeConfig, {
      ...common,
      path: signersPath,
    });
    this.secrets = new ResilientInformer<SecretObject>(kubeConfig, {
      ...common,
      path: `/api/v1/namespaces/${namespace}/secrets`,
    });
    this.namespaces = new ResilientInformer<NamespaceObject>(kubeConfig, {
      ...common,
      path: "/api/v1/namespaces",
    });
    // Only ConfigMaps we published (label-selected), so the cache stays small.
    this.configMaps = new ResilientInformer<ConfigMapObject>(kubeConfig, {
      ...common,
      path: "/api/v1/configmaps",
      labelSelector: trustBundleLabel,
      // Tenants may label their own ConfigMaps (up to 1 MiB each): small pages bound what one list
      // response parses, and the cache keeps a digest of the content, not the content.
      pageSize: configMapPageSize,
      transform: cachedConfigMap,
    });
    this.clusterTrustBundles = new ResilientInformer<ClusterTrustBundleObject>(kubeConfig, {
      ...common,
      path: "/apis/certificates.k8s.io/v1beta1/clustertrustbundles",
      labelSelector: trustBundleLabel,
    });
    // Every namespace's requests: the API bounds each (key fields 10 KiB, chain 100 KiB); strings
    // past 64 KiB (a chain, an annotation value) are cut before parsing, and the cache keeps key
    // fields of our Signers' requests only.
    this.podCertificateRequests = new ResilientInformer<PodCertificateRequestObject>(kubeConfig, {
      ...common,
      path: podCertificateRequestsPath,
      maxStringBytes: 64 * 1024,
      pageSize: 100,
      transform: (pcr) => cachedPodCertificateRequest(pcr, settings.isOurPodSignerName),
      resyncMs: settings.resyncMs ?? 10 * 60_000,
    });
    this.nodes = settings.nodes
      ? new ResilientInformer<IndexedNode>(kubeConfig, {
          ...common,
          path: "/api/v1/nodes",
          // A kubelet writes its own Node: the cache keeps identity and the addresses that count, and
          // string values past 64 KiB (an annotation, an image name) are cut before parsing.
          maxStringBytes: 64 * 1024,
          transform: cachedNode,
        })
      : undefined;
  }

  all(): ResilientInformer<object>[] {
    const all: ResilientInformer<object>[] = [
      this.configMaps,
      this.csrs,
      this.signers,
      this.secrets,
      this.namespaces,
    ];
    if (this.nodes) all.push(this.nodes);
    if (this.clusterTrustBundlesServed) all.push(this.clusterTrustBundles);
    if (this.podCertificateRequestsServed) all.push(this.podCertificateRequests);
    return all;
  }

  /**
   * Starts every cache but the CSRs' and waits for their first lists (Signers must be known first).
   * The ClusterTrustBundle cache starts only when `clusterTrustBundlesServed`: a watch of a resource
   * the API server does not serve would never sync.
   */
  async startSignerSide(clusterTrustBundlesServed: boolean): Promise<void> {
    this.clusterTrustBundlesServed = clusterTrustBundlesServed;
    await Promise.all(
      this.all()
        .filter((informer) => informer !== this.csrs && informer !== this.podCertificateRequests)
        .map((informer) => informer.start()),
    );
  }

  /**
   * Starts the PodCertificateRequest cache when the API serves them (after the Signers are known),
   * without waiting for its first list: a cache that cannot sync (a ClusterRole without
   * podcertificaterequests) shows in /readyz but never holds up the CSR side.
   */
  startPodCertificateRequests(served: boolean): void {
    this.podCertificateRequestsServed = served;
    if (served) void this.podCertificateRequests.start(); // its first list's events enqueue the requests
  }

  stop(): void {
    for (const informer of this.all()) informer.stop();
  }
}

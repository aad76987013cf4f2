/**
 * What to publish for one Signer, and where: its bundle as a ConfigMap in each tenant namespace and
 * as a ClusterTrustBundle; for a Signer that no longer exists, nothing (its copies are withdrawn).
 * The writing itself is TrustBundlePublisher's; this decides targets from the caches.
 */
import {
  trustBundleLabel,
  type ClusterTrustBundleObject,
  type ConfigMapObject,
  type NamespaceFacts,
  type PublicationResult,
  type TrustBundlePublisher,
} from "./publishers.js";
import type { TrustBundle } from "./trust-bundle.js";

/** What publication needs to know of a Signer. */
export interface PublishableSigner {
  signerName: string;
  configMap: { name: string; key: string } | undefined;
  clusterTrustBundle: boolean;
  bundle: TrustBundle;
  /** The namespaces its ConfigMap goes to. */
  tenants: ReadonlySet<string>;
}

export interface PublicationCaches {
  /** Every namespace, with whether it is terminating. */
  namespaces(): NamespaceFacts[];
  /** The ConfigMaps we published (label-selected cache). */
  configMaps(): ConfigMapObject[];
  /** The ClusterTrustBundles we published (label-selected cache; empty when the API does not serve them). */
  clusterTrustBundles(): ClusterTrustBundleObject[];
}

export class TrustBundlePublication {
  constructor(
    private readonly publisher: TrustBundlePublisher,
    private readonly caches: PublicationCaches,
  ) {}

  /** Makes every copy of Signer `objectName`'s bundle match `signer`. */
  async publish(objectName: string, signer: PublishableSigner): Promise<PublicationResult> {
    const targets = this.caches.namespaces().filter((namespace) => signer.tenants.has(namespace.name));
    const configMaps = await this.publisher.publishConfigMaps(
      objectName,
      signer.configMap,
      signer.bundle.pem,
      targets,
      this.configMapsOf(objectName),
    );
    const clusterTrustBundle = await this.publisher.publishClusterTrustBundle(
      objectName,
      signer.signerName,
      signer.clusterTrustBundle ? signer.bundle.pem : undefined,
      this.clusterTrustBundlesOf(objectName),
    );
    return {
      complete: configMaps.complete && clusterTrustBundle.complete,
      problems: [...configMaps.problems, ...clusterTrustBundle.problems],
    };
  }

  /** Removes every copy published for `objectName` (its Signer was deleted). */
  async withdraw(objectName: string): Promise<void> {
    await this.publisher.publishConfigMaps(objectName, undefined, "", [], this.configMapsOf(objectName));
    await this.publisher.publishClusterTrustBundle(
      objectName,
      "",
      undefined,
      this.clusterTrustBundlesOf(objectName),
    );
  }

  /** Names of the Signers that have published copies (whether or not they still exist). */
  publishers(): Set<string> {
    return new Set(
      [...this.caches.configMaps(), ...this.caches.clusterTrustBundles()]
        .map((published) => publisherOf(published) ?? "")
        .filter((name) => name !== ""),
    );
  }

  private configMapsOf(objectName: string): ConfigMapObject[] {
    return this.caches.configMaps().filter((cm) => publisherOf(cm) === objectName);
  }

  private clusterTrustBundlesOf(objectName: string): ClusterTrustBundleObject[] {
    return this.caches.clusterTrustBundles().filter((bundle) => publisherOf(bundle) === objectName);
  }
}

/** The Signer object a published copy belongs to (its label). */
export function publisherOf(published: {
  metadata?: { labels?: Record<string, string> };
}): string | undefined {
  return published.metadata?.labels?.[trustBundleLabel];
}

/**
 * What to publish for one Signer, and where: its bundle as a ConfigMap in each tenant namespace and
 * as a ClusterTrustBundle; for a Signer that no longer exists, nothing (its copies are withdrawn).
 * The writing itself is TrustBundlePublisher's; this decides targets from the caches.
 */
import {
  trustBundleLabel,
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
    );
    return {
      complete: configMaps.complete && clusterTrustBundle.complete,
      problems: [...configMaps.problems, ...clusterTrustBundle.problems],
    };
  }

  /** Removes every copy published for `objectName` (its Signer was deleted). */
  async withdraw(objectName: string): Promise<void> {
    await this.publisher.publishConfigMaps(objectName, undefined, "", [], this.configMapsOf(objectName));
    await this.publisher.publishClusterTrustBundle(objectName, "", undefined);
  }

  /** Names of the Signers that have published ConfigMaps (whether or not they still exist). */
  publishers(): Set<string> {
    return new Set(
      this.caches
        .configMaps()
        .map((configMap) => configMap.metadata?.labels?.[trustBundleLabel] ?? "")
        .filter((name) => name !== ""),
    );
  }

  private configMapsOf(objectName: string): ConfigMapObject[] {
    return this.caches.configMaps().filter((cm) => cm.metadata?.labels?.[trustBundleLabel] === objectName);
  }
}

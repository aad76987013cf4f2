/**
 * Publication of a Signer's trust bundle: a ConfigMap in each of its tenant namespaces, and a
 * ClusterTrustBundle for its signer name (pods mount it with a projected clusterTrustBundle
 * volume by signerName). Both converge: missing copies are created, edited ones reverted, stale
 * ones removed. Only objects carrying our label are ever changed or deleted.
 */
import { createHash } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeApi } from "../kube/api-client.js";
import { canonicalJson } from "../kube/canonical-json.js";
import { apiErrorCode, apiErrorStatus, describeError } from "../kube/client.js";
import { missingSignerGrant } from "../kube/signer-grants.js";
import { clusterTrustBundleName } from "./trust-bundle.js";

/** Label on every object we publish: the Signer object it belongs to. */
export const trustBundleLabel = "csr-signer.io/trust-bundle-of";

/**
 * A labelled ConfigMap as the cache keeps it: who published it and a digest of its content, not the
 * content. Tenants can label ConfigMaps of their own namespaces as they like (up to 1 MiB each): the
 * cache must not hold what they put in them.
 */
export interface ConfigMapObject {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  /** SHA-256 of data, binaryData and immutable (configMapContentDigest). */
  contentDigest?: string;
}

interface ConfigMapContent {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

/** SHA-256 over a ConfigMap's data, binaryData and immutable flag, independent of key order. */
function configMapContentDigest({ data, binaryData, immutable }: ConfigMapContent): string {
  return createHash("sha256")
    .update(canonicalJson({ data: data ?? {}, binaryData: binaryData ?? {}, immutable: immutable === true }))
    .digest("hex");
}

/** What the ConfigMap cache keeps of a ConfigMap listed or watched: name, our label, the digest. */
export function cachedConfigMap(configMap: ConfigMapObject & ConfigMapContent): ConfigMapObject {
  const { name, namespace, resourceVersion, labels } = configMap.metadata ?? {};
  const publisher = labels?.[trustBundleLabel];
  return {
    metadata: {
      ...(name !== undefined ? { name } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      ...(publisher !== undefined ? { labels: { [trustBundleLabel]: publisher } } : {}),
    },
    contentDigest: configMapContentDigest(configMap),
  };
}

export interface ClusterTrustBundleObject {
  metadata?: { name?: string; labels?: Record<string, string>; resourceVersion?: string };
  spec?: { signerName?: string; trustBundle?: string };
}

export interface NamespaceFacts {
  name: string;
  terminating: boolean;
}

export interface PublicationResult {
  /** Every copy that should exist now holds the bundle. */
  complete: boolean;
  /** One line per problem, for logs and the Signer's Degraded condition. */
  problems: string[];
}

const certificatesBetaPath = "/apis/certificates.k8s.io/v1beta1";
const clusterTrustBundlesPath = `${certificatesBetaPath}/clustertrustbundles`;
const configMapsPath = (namespace: string): string => `/api/v1/namespaces/${namespace}/configmaps`;

export class TrustBundlePublisher {
  private readonly api: KubeApi;
  private clusterTrustBundlesServed: boolean | undefined;

  constructor(kubeConfig: KubeConfig) {
    this.api = KubeApi.for(kubeConfig);
  }

  /**
   * Makes the ConfigMaps of Signer `objectName` match: `name`/`key` holding `pem` in each target
   * namespace (skipping terminating ones), and none of ours anywhere else.
   */
  async publishConfigMaps(
    objectName: string,
    target: { name: string; key: string } | undefined,
    pem: string,
    namespaces: readonly NamespaceFacts[],
    ours: readonly ConfigMapObject[],
  ): Promise<PublicationResult> {
    const problems: string[] = [];
    let complete = true;
    const wanted = new Set(target ? namespaces.filter((ns) => !ns.terminating).map((ns) => ns.name) : []);
    for (const existing of ours) {
      const { name = "", namespace = "" } = existing.metadata ?? {};
      if (existing.metadata?.labels?.[trustBundleLabel] !== objectName) continue;
      if (wanted.has(namespace) && name === target?.name) continue;
      if (namespaces.some((ns) => ns.name === namespace && ns.terminating)) continue; // goes with its namespace
      try {
        await this.api.delete(`${configMapsPath(namespace)}/${name}`);
      } catch (error) {
        if (apiErrorCode(error) !== 404)
          problems.push(`deleting ConfigMap ${namespace}/${name}: ${describeError(error)}`);
      }
    }
    if (!target) return { complete, problems };
    for (const namespace of wanted) {
      const existing = ours.find(
        (cm) => cm.metadata?.namespace === namespace && cm.metadata?.name === target.name,
      );
      const body = {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: target.name, namespace, labels: { [trustBundleLabel]: objectName } },
        data: { [target.key]: pem },
      };
      try {
        if (!existing) {
          await this.api.create(configMapsPath(namespace), body);
        } else if (existing.contentDigest !== configMapContentDigest(body)) {
          // Edited (or a new bundle): put it back as it must be.
          await this.api.replace(`${configMapsPath(namespace)}/${target.name}`, {
            ...body,
            metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion },
          });
        }
      } catch (error) {
        const code = apiErrorCode(error);
        if (code === 409 && !existing) {
          // A ConfigMap of that name that is not ours: never clobber it; say so. It does not hold
          // back a rotation, or one tenant could stall the CA of every tenant.
          problems.push(
            `ConfigMap ${namespace}/${target.name} exists and is not managed by csr-signer (label ${trustBundleLabel} missing)`,
          );
          continue;
        }
        if (code === 404) continue; // namespace just deleted
        const message = apiErrorStatus(error)?.message ?? "";
        // A terminating namespace refuses new content with 403; any other 403 is missing RBAC.
        if (code === 403 && /being terminated/.test(message)) continue;
        // Refusals a tenant can cause in its own namespace (its copy made immutable: 422; its
        // ConfigMap quota spent: 403): reported, never holding back a rotation for every tenant.
        if (code === 422 || (code === 403 && /exceeded quota/.test(message))) {
          if (code === 422 && existing && (await this.recreate(namespace, target.name, body))) continue;
          problems.push(`writing ConfigMap ${namespace}/${target.name}: ${describeError(error)}`);
          continue;
        }
        complete = false;
        problems.push(`writing ConfigMap ${namespace}/${target.name}: ${describeError(error)}`);
      }
    }
    return { complete, problems };
  }

  /** Replaces an immutable copy of ours by deleting and creating it; false when that fails too. */
  private async recreate(namespace: string, name: string, body: object): Promise<boolean> {
    try {
      await this.api.delete(`${configMapsPath(namespace)}/${name}`);
      await this.api.create(configMapsPath(namespace), body);
      return true;
    } catch {
      return false; // the caller reports the first refusal, which says why
    }
  }

  /**
   * Makes the signer's ClusterTrustBundle hold `pem` and removes stale ones of ours for that signer;
   * `ours` are the ClusterTrustBundles labelled for `objectName` (from the label-selected cache).
   */
  async publishClusterTrustBundle(
    objectName: string,
    signerName: string,
    pem: string | undefined,
    ours: readonly ClusterTrustBundleObject[],
  ): Promise<PublicationResult> {
    if (!(await this.clusterTrustBundlesAvailable())) return { complete: true, problems: [] };
    const problems: string[] = [];
    const name = clusterTrustBundleName(signerName);
    try {
      for (const stale of ours) {
        if (stale.metadata?.name === name && pem !== undefined) continue;
        await this.api.delete(`${clusterTrustBundlesPath}/${stale.metadata!.name!}`);
      }
      if (pem === undefined) return { complete: true, problems };
      const current = ours.find((bundle) => bundle.metadata?.name === name);
      const body = {
        apiVersion: "certificates.k8s.io/v1beta1",
        kind: "ClusterTrustBundle",
        metadata: { name, labels: { [trustBundleLabel]: objectName } },
        spec: { signerName, trustBundle: pem },
      };
      if (!current) await this.api.create(clusterTrustBundlesPath, body);
      else if (current.spec?.trustBundle !== pem) {
        await this.api.replace(`${clusterTrustBundlesPath}/${name}`, {
          ...body,
          metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion },
        });
      }
      return { complete: true, problems };
    } catch (error) {
      const hint = apiErrorCode(error) === 403 ? ` (${missingSignerGrant("attest", signerName)})` : "";
      problems.push(`ClusterTrustBundle ${name}: ${describeError(error)}${hint}`);
      return { complete: false, problems };
    }
  }

  /** Whether the API server serves certificates.k8s.io/v1beta1 clustertrustbundles (asked once). */
  async clusterTrustBundlesAvailable(): Promise<boolean> {
    if (this.clusterTrustBundlesServed === undefined) {
      try {
        const resources = await this.api.get<{ resources: { name: string }[] }>(certificatesBetaPath);
        this.clusterTrustBundlesServed = resources.resources.some(
          (resource) => resource.name === "clustertrustbundles",
        );
      } catch (error) {
        if (apiErrorCode(error) !== 404) throw error; // transient: ask again next time
        this.clusterTrustBundlesServed = false;
      }
    }
    return this.clusterTrustBundlesServed;
  }
}

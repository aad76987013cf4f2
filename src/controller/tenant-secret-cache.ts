/**
 * What the cache of a Secret in a tenant's namespace (certificateAuthority.secretNamespace) keeps:
 * the tenant writes it, up to 1 MiB, with any keys, labels, annotations and managedFields it likes.
 * The controller reads only some of its data keys (the CA files, a passphrase's key) and the
 * informer only name, namespace and resourceVersion; everything else is dropped as each object
 * arrives, before it is cached (see ResilientInformer's transform), so a tenant's extra bytes are
 * never held.
 */
import { certificateAuthorityFileNames } from "../pki/ca-material-files.js";
import type { SecretObject } from "./ca-source.js";

/** A tenant Secret as listed and watched: SecretObject plus the resourceVersion the informer compares. */
export interface TenantSecretObject extends SecretObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

/**
 * The data keys every tenant Secret watch keeps: the CA files (readCertificateAuthorityFiles reads
 * only these names). A passphrase's key is added by the Signer naming it (TenantSecretWatches.get).
 */
export const caFileDataKeys: ReadonlySet<string> = new Set(certificateAuthorityFileNames);

/**
 * The cached form of `secret`: name, namespace and resourceVersion, and the string values of the
 * data keys in `dataKeys` unchanged (a value cut before parsing keeps its placeholder, so it still
 * reads as too large). Only the Secret's own keys are copied, never a name inherited from
 * Object.prototype.
 */
export function cachedTenantSecret(
  secret: TenantSecretObject,
  dataKeys: ReadonlySet<string>,
): TenantSecretObject {
  const { name, namespace, resourceVersion } = secret.metadata ?? {};
  const data = secret.data ?? {};
  return {
    // Labels, annotations, uid, ownerReferences, managedFields and type: nothing reads them.
    metadata: {
      ...(name !== undefined ? { name } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
    data: Object.fromEntries(
      [...dataKeys].flatMap((key) =>
        Object.hasOwn(data, key) && typeof data[key] === "string" ? [[key, data[key]]] : [],
      ),
    ),
  };
}

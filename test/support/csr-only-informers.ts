import type { CsrObject } from "../../src/controller/csr-object.js";
import type { ControllerInformers } from "../../src/controller/informers.js";
import type { InformerEvent } from "../../src/kube/informer.js";

/**
 * The controller's caches for enqueueOnCacheEvents where only the CSR cache matters: its handler
 * is handed to `take`, so the caller delivers CSR events itself; the other caches never fire.
 */
export function csrOnlyInformers(
  take: (handler: (event: InformerEvent, csr: CsrObject) => void) => void,
): ControllerInformers {
  const unused = { on: () => undefined };
  return {
    signers: unused,
    secrets: unused,
    namespaces: unused,
    configMaps: unused,
    clusterTrustBundles: unused,
    csrs: { on: take },
  } as unknown as ControllerInformers;
}

/** CA Secrets in a tenant's namespace (spec.certificateAuthority.secretNamespace), for integration tests. */
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { apiErrorCode } from "../../src/kube/client.js";
import { controllerNamespace } from "./controller.js";

/** Creates or replaces Secret `namespace/name` holding `files` (the tenant's write). */
export async function writeTenantSecret(
  admin: KubeConfig,
  namespace: string,
  name: string,
  files: Record<string, string>,
): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  const body = {
    metadata: { name },
    type: "Opaque",
    data: Object.fromEntries(
      Object.entries(files).map(([file, value]) => [file, Buffer.from(value).toString("base64")]),
    ),
  };
  try {
    await core.createNamespacedSecret({ namespace, body });
  } catch (error) {
    if (apiErrorCode(error) !== 409) throw error;
    await core.replaceNamespacedSecret({ namespace, name, body });
  }
}

/** The Role `csr-signer tenant add --ca-in-tenant-namespace` makes: list and watch on that one Secret. */
export async function grantTenantSecretRead(
  admin: KubeConfig,
  namespace: string,
  secretName: string,
): Promise<void> {
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const metadata = { name: "csr-signer-ca", namespace };
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata,
      rules: [
        { apiGroups: [""], resources: ["secrets"], resourceNames: [secretName], verbs: ["list", "watch"] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "csr-signer-ca" },
      subjects: [{ kind: "ServiceAccount", namespace: controllerNamespace, name: "csr-signer" }],
    },
  });
}

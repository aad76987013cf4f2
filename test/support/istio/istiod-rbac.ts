/**
 * istiod's RBAC as Istio's Helm chart renders it, reproduced rule for rule from
 * manifests/charts/istio-control/istio-discovery/templates/{clusterrole,clusterrolebinding,role,rolebinding}.yaml
 * of istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad (the version hack/testbin/build.sh builds), with
 * the values an external-CA install sets: `env.EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API` (which renders the
 * CSR rules) and `global.certSigners` (the `approve` grant), everything else at the chart's defaults
 * (resourceScope all, istiodRemote off, istiod.enableAnalysis false, taint off, no
 * ENABLE_CLUSTER_TRUST_BUNDLE_API, the gateway deployment controller on). Helm is not needed to run the
 * tests, so the rendering is written out here; a chart change means updating this file with the version.
 */

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const writeVerbs = ["get", "watch", "list", "update", "patch", "create", "delete"];
const readVerbs = ["get", "watch", "list"];

function clusterRoleRules(certSigners: readonly string[]): PolicyRule[] {
  const istioGroups = [
    "config.istio.io",
    "security.istio.io",
    "networking.istio.io",
    "authentication.istio.io",
    "rbac.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
  ];
  return [
    {
      apiGroups: ["admissionregistration.k8s.io"],
      resources: ["mutatingwebhookconfigurations"],
      verbs: ["get", "list", "watch", "update", "patch"],
    },
    {
      apiGroups: ["admissionregistration.k8s.io"],
      resources: ["validatingwebhookconfigurations"],
      verbs: ["get", "list", "watch", "update"],
    },
    { apiGroups: istioGroups, verbs: ["get", "watch", "list"], resources: ["*"] },
    { apiGroups: ["networking.istio.io"], verbs: writeVerbs, resources: ["workloadentries"] },
    {
      apiGroups: ["networking.istio.io"],
      verbs: writeVerbs,
      resources: ["workloadentries/status", "serviceentries/status"],
    },
    { apiGroups: ["security.istio.io"], verbs: writeVerbs, resources: ["authorizationpolicies/status"] },
    { apiGroups: [""], verbs: writeVerbs, resources: ["services/status"] },
    { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: readVerbs },
    {
      apiGroups: [""],
      resources: ["pods", "nodes", "services", "namespaces", "endpoints"],
      verbs: ["get", "list", "watch"],
    },
    { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
    {
      apiGroups: ["networking.k8s.io"],
      resources: ["ingresses", "ingressclasses"],
      verbs: ["get", "list", "watch"],
    },
    { apiGroups: ["networking.k8s.io"], resources: ["ingresses/status"], verbs: ["*"] },
    // "required for CA's namespace controller" (istio-ca-root-cert in every namespace)
    { apiGroups: [""], resources: ["configmaps"], verbs: ["create", "get", "list", "watch", "update"] },
    // "Istiod and bootstrap", rendered because env.EXTERNAL_CA is set
    {
      apiGroups: ["certificates.k8s.io"],
      resources: [
        "certificatesigningrequests",
        "certificatesigningrequests/approval",
        "certificatesigningrequests/status",
      ],
      verbs: ["update", "create", "get", "delete", "watch"],
    },
    {
      apiGroups: ["certificates.k8s.io"],
      resources: ["signers"],
      resourceNames: [...certSigners],
      verbs: ["approve"],
    },
    { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
    { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
    {
      apiGroups: ["gateway.networking.k8s.io", "gateway.networking.x-k8s.io"],
      resources: ["*"],
      verbs: ["get", "watch", "list"],
    },
    {
      apiGroups: ["gateway.networking.x-k8s.io"],
      resources: ["xbackendtrafficpolicies/status"],
      verbs: ["update", "patch"],
    },
    {
      apiGroups: ["gateway.networking.k8s.io"],
      resources: [
        "backendtlspolicies/status",
        "gatewayclasses/status",
        "gateways/status",
        "grpcroutes/status",
        "httproutes/status",
        "referencegrants/status",
        "tcproutes/status",
        "tlsroutes/status",
        "udproutes/status",
        "listenersets/status",
      ],
      verbs: ["update", "patch"],
    },
    {
      apiGroups: ["gateway.networking.k8s.io"],
      resources: ["gatewayclasses"],
      verbs: ["create", "update", "patch", "delete"],
    },
    { apiGroups: ["inference.networking.k8s.io"], resources: ["inferencepools"], verbs: readVerbs },
    {
      apiGroups: ["inference.networking.k8s.io"],
      resources: ["inferencepools/status"],
      verbs: ["update", "patch"],
    },
    // "Needed for multicluster secret reading": cluster-wide read of every Secret (see the README's
    // warning about CA keys kept in Secrets).
    { apiGroups: [""], resources: ["secrets"], verbs: ["get", "watch", "list"] },
    {
      apiGroups: ["multicluster.x-k8s.io"],
      resources: ["serviceexports"],
      verbs: [...readVerbs, "create", "delete"],
    },
    { apiGroups: ["multicluster.x-k8s.io"], resources: ["serviceimports"], verbs: readVerbs },
  ];
}

const gatewayControllerRules: PolicyRule[] = [
  { apiGroups: ["apps"], verbs: writeVerbs, resources: ["deployments"] },
  { apiGroups: ["autoscaling"], verbs: writeVerbs, resources: ["horizontalpodautoscalers"] },
  { apiGroups: ["policy"], verbs: writeVerbs, resources: ["poddisruptionbudgets"] },
  { apiGroups: [""], verbs: writeVerbs, resources: ["services"] },
  { apiGroups: [""], verbs: writeVerbs, resources: ["serviceaccounts"] },
];

const namespaceRoleRules: PolicyRule[] = [
  { apiGroups: ["networking.istio.io"], verbs: ["create"], resources: ["gateways"] },
  {
    apiGroups: [""],
    resources: ["secrets"],
    verbs: ["create", "get", "watch", "list", "update", "delete"],
  },
  { apiGroups: [""], resources: ["configmaps"], verbs: ["delete"] },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "update", "patch", "create"] },
];

/**
 * The chart's ClusterRoles, Role and their bindings for istiod of `revision` ("" for the default) in
 * `istioNamespace`, as objects for the API. The service account is `istiod` or `istiod-<revision>`.
 */
export function istiodRbacObjects(
  revision: string,
  certSigners: readonly string[],
  istioNamespace = "istio-system",
): Record<string, unknown>[] {
  const suffix = revision === "" ? "" : `-${revision}`;
  const serviceAccount = { kind: "ServiceAccount", name: `istiod${suffix}`, namespace: istioNamespace };
  const labels = { app: "istiod", release: "istiod", "app.kubernetes.io/name": "istiod" };
  const rbac = "rbac.authorization.k8s.io/v1";
  const clusterRole = `istiod-clusterrole${suffix}-${istioNamespace}`;
  const gatewayController = `istiod-gateway-controller${suffix}-${istioNamespace}`;
  const role = `istiod${suffix}`;
  const roleRef = (kind: string, name: string) => ({ apiGroup: "rbac.authorization.k8s.io", kind, name });
  return [
    {
      apiVersion: rbac,
      kind: "ClusterRole",
      metadata: { name: clusterRole, labels },
      rules: clusterRoleRules(certSigners),
    },
    {
      apiVersion: rbac,
      kind: "ClusterRole",
      metadata: { name: gatewayController, labels },
      rules: gatewayControllerRules,
    },
    {
      apiVersion: rbac,
      kind: "ClusterRoleBinding",
      metadata: { name: clusterRole, labels },
      roleRef: roleRef("ClusterRole", clusterRole),
      subjects: [serviceAccount],
    },
    {
      apiVersion: rbac,
      kind: "ClusterRoleBinding",
      metadata: { name: gatewayController, labels },
      roleRef: roleRef("ClusterRole", gatewayController),
      subjects: [serviceAccount],
    },
    {
      apiVersion: rbac,
      kind: "Role",
      metadata: { name: role, namespace: istioNamespace, labels },
      rules: namespaceRoleRules,
    },
    {
      apiVersion: rbac,
      kind: "RoleBinding",
      metadata: { name: role, namespace: istioNamespace, labels },
      roleRef: roleRef("Role", role),
      subjects: [serviceAccount],
    },
  ];
}

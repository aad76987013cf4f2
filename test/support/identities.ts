/**
 * Acting as other identities in integration tests (impersonation from the admin), and granting them RBAC.
 *
 * client-node 2.x only knows `Impersonate-User` (kubeconfig `as`); it cannot send groups or extra. Its
 * headers are a plain object of strings and undici's fetch folds repeated headers into one comma-joined
 * line, which the API server would read as ONE group named "a, b". So the impersonation headers are added
 * below fetch, by an undici interceptor on the dispatcher, where a header may carry an array of values,
 * and the request is pinned to HTTP/1.1, where each value goes out as its own header line (undici's
 * HTTP/2 client, used by default against the API server, joins them again).
 */
import { randomBytes } from "node:crypto";
import {
  AuthorizationV1Api,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type RbacV1Subject,
  type RequestContext,
  type V1PolicyRule,
} from "@kubernetes/client-node";
import { apiErrorCode, ConnectionReusingKubeConfig } from "../../src/kube/client.js";
import { waitFor } from "./wait.js";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;
type Dispatch = Dispatcher["dispatch"];
type DispatchOptions = Parameters<Dispatch>[0];

/** Who a request claims to be: user name, groups and extra, as the API server's authenticator reports it. */
export interface Identity {
  user: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** A KubeConfig acting as `identity` through the admin's credentials (Impersonate-* headers). */
class ImpersonatingKubeConfig extends ConnectionReusingKubeConfig {
  private readonly impersonationHeaders: Record<string, string | string[]>;

  constructor(identity: Identity) {
    super();
    this.impersonationHeaders = { "impersonate-user": identity.user };
    if (identity.groups.length > 0) this.impersonationHeaders["impersonate-group"] = [...identity.groups];
    for (const [key, values] of Object.entries(identity.extra ?? {})) {
      // The API server lower-cases and then percent-decodes the key part of the header name.
      this.impersonationHeaders[`impersonate-extra-${encodeURIComponent(key.toLowerCase())}`] = [...values];
    }
  }

  // Used by every generated API client and by Watch, so both requests and watches impersonate.
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const dispatcher = context.getDispatcher();
    if (dispatcher === undefined) {
      // client-node only builds a dispatcher when there is TLS material; our control plane always has it.
      throw new Error(
        "impersonation needs a TLS client configuration (certificate authority or client cert)",
      );
    }
    const headers = this.impersonationHeaders;
    context.setDispatcher(
      dispatcher.compose((dispatch: Dispatch): Dispatch => (options, handler) => {
        // HTTP/1.1 only: undici's HTTP/2 path joins array values into one "a, b" field as well.
        // (Agent honours a per-request allowH2, as fetch uses it; undici's types do not declare it.)
        const http1Options: DispatchOptions & { allowH2: boolean } = {
          ...options,
          allowH2: false,
          headers: withImpersonation(options.headers, headers),
        };
        return dispatch(http1Options, handler);
      }),
    );
  }
}

/** Header object with any caller-supplied Impersonate-* headers replaced by ours (arrays = repeated lines). */
function withImpersonation(
  original: DispatchOptions["headers"],
  impersonation: Record<string, string | string[]>,
): Record<string, string | string[]> {
  const merged: Record<string, string | string[]> = {};
  const add = (name: string, value: string | string[] | undefined): void => {
    if (value === undefined || name.toLowerCase().startsWith("impersonate-")) return;
    merged[name] = value;
  };
  if (Array.isArray(original)) {
    // undici's flat form: [name, value, name, value, ...]
    for (let index = 0; index + 1 < original.length; index += 2) add(original[index]!, original[index + 1]);
  } else if (original !== null && original !== undefined) {
    const entries =
      Symbol.iterator in original
        ? Array.from(original as Iterable<[string, string | string[] | undefined]>)
        : Object.entries(original as Record<string, string | string[] | undefined>);
    for (const [name, value] of entries) add(name, value);
  }
  return { ...merged, ...impersonation };
}

/**
 * A KubeConfig that sends every request (and watch) as `user` with `groups` (and `extra`), using the
 * admin's connection and credentials. The admin must be allowed to impersonate (system:masters is).
 */
export function impersonatingKubeConfig(
  admin: KubeConfig,
  user: string,
  groups: string[],
  extra?: Record<string, string[]>,
): KubeConfig {
  const kubeConfig = new ImpersonatingKubeConfig({ user, groups, ...(extra === undefined ? {} : { extra }) });
  kubeConfig.loadFromOptions({
    clusters: structuredClone(admin.getClusters()),
    users: structuredClone(admin.getUsers()),
    contexts: structuredClone(admin.getContexts()),
    currentContext: admin.getCurrentContext(),
  });
  return kubeConfig;
}

/** The identity a kubelet authenticates as. */
export function nodeIdentity(nodeName: string): Identity {
  return { user: `system:node:${nodeName}`, groups: ["system:nodes", "system:authenticated"] };
}

/** The identity a pod's service account token authenticates as. */
export function serviceAccountIdentity(namespace: string, name: string): Identity {
  return {
    user: `system:serviceaccount:${namespace}:${name}`,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
  };
}

/** Impersonates the kubelet of node `nodeName` (user system:node:<name>, group system:nodes). */
export function asNode(admin: KubeConfig, nodeName: string): KubeConfig {
  const identity = nodeIdentity(nodeName);
  return impersonatingKubeConfig(admin, identity.user, identity.groups);
}

/** Impersonates service account `namespace/name` (the object need not exist). */
export function asServiceAccount(admin: KubeConfig, namespace: string, name: string): KubeConfig {
  const identity = serviceAccountIdentity(namespace, name);
  return impersonatingKubeConfig(admin, identity.user, identity.groups);
}

/** RBAC subject for a user name. */
export function userSubject(name: string): RbacV1Subject {
  return { kind: "User", apiGroup: "rbac.authorization.k8s.io", name };
}

/** RBAC subject for a group. */
export function groupSubject(name: string): RbacV1Subject {
  return { kind: "Group", apiGroup: "rbac.authorization.k8s.io", name };
}

/** RBAC subject for a service account (matches user system:serviceaccount:<namespace>:<name>). */
export function serviceAccountSubject(namespace: string, name: string): RbacV1Subject {
  return { kind: "ServiceAccount", namespace, name };
}

/** A ClusterRole and its ClusterRoleBinding created for a test. */
export interface Grant {
  clusterRoleName: string;
  clusterRoleBindingName: string;
  /** Deletes the binding and the role (already deleted is fine). */
  revoke(): Promise<void>;
}

/** Label on every RBAC object these helpers create, to find leftovers. */
export const HARNESS_LABEL = "csr-signer.test/harness";

/**
 * Creates a uniquely named ClusterRole with `rules` bound to `subject`, and waits until the API server's
 * authorizer enforces it (RBAC is served from an informer cache, so a fresh binding is not effective at
 * once; a test that acts right away would see a spurious 403).
 */
export async function grantClusterRole(
  admin: KubeConfig,
  subject: RbacV1Subject | RbacV1Subject[],
  rules: V1PolicyRule[],
  namePrefix = "grant",
): Promise<Grant> {
  const subjects = Array.isArray(subject) ? subject : [subject];
  const firstSubject = subjects[0];
  const firstRule = rules[0];
  if (firstSubject === undefined || firstRule === undefined) {
    throw new Error("grantClusterRole needs at least one subject and one rule");
  }
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const name = uniqueName(`csr-signer-test-${namePrefix}`);
  const metadata = { name, labels: { [HARNESS_LABEL]: "true" } };
  await rbac.createClusterRole({ body: { metadata, rules } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects,
    },
  });
  await waitUntilAuthorized(admin, firstSubject, firstRule);
  return {
    clusterRoleName: name,
    clusterRoleBindingName: name,
    async revoke(): Promise<void> {
      await ignoreNotFound(rbac.deleteClusterRoleBinding({ name }));
      await ignoreNotFound(rbac.deleteClusterRole({ name }));
    },
  };
}

/**
 * Binds an existing ClusterRole (e.g. one of the bootstrap policy's) to `subject` and waits until
 * `probe` (a rule the role grants) is allowed for it.
 */
export async function bindClusterRole(
  admin: KubeConfig,
  subject: RbacV1Subject,
  clusterRoleName: string,
  probe: V1PolicyRule,
): Promise<Grant> {
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const name = uniqueName("csr-signer-test-binding");
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name, labels: { [HARNESS_LABEL]: "true" } },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRoleName },
      subjects: [subject],
    },
  });
  await waitUntilAuthorized(admin, subject, probe);
  return {
    clusterRoleName,
    clusterRoleBindingName: name,
    async revoke(): Promise<void> {
      await ignoreNotFound(rbac.deleteClusterRoleBinding({ name }));
    },
  };
}

/** The signer verbs of the `signers` virtual resource (certificates.k8s.io). */
export type SignerVerb = "approve" | "sign" | "attest";

/**
 * Grants `verbs` on signers/<signerName> for each signer name (a name may be `<domain>/*`), together with
 * what an approver or a signer needs besides: CSR get/list/watch/create/delete, update/patch on
 * /approval for `approve`, on /status for `sign`, and ClusterTrustBundle access for `attest`.
 */
export async function grantSignerVerbs(
  admin: KubeConfig,
  grant: { subject: RbacV1Subject | RbacV1Subject[]; signerNames: string[]; verbs: SignerVerb[] },
): Promise<Grant> {
  const group = "certificates.k8s.io";
  const rules: V1PolicyRule[] = [];
  if (grant.verbs.length > 0) {
    rules.push({
      apiGroups: [group],
      resources: ["signers"],
      resourceNames: grant.signerNames,
      verbs: grant.verbs,
    });
  }
  rules.push({
    apiGroups: [group],
    resources: ["certificatesigningrequests"],
    verbs: ["get", "list", "watch", "create", "delete"],
  });
  if (grant.verbs.includes("approve")) {
    rules.push({
      apiGroups: [group],
      resources: ["certificatesigningrequests/approval"],
      verbs: ["update", "patch"],
    });
  }
  if (grant.verbs.includes("sign")) {
    rules.push({
      apiGroups: [group],
      resources: ["certificatesigningrequests/status"],
      verbs: ["update", "patch"],
    });
  }
  if (grant.verbs.includes("attest")) {
    rules.push({
      apiGroups: [group],
      resources: ["clustertrustbundles"],
      verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
    });
  }
  return grantClusterRole(admin, grant.subject, rules, `signer-${grant.verbs.join("-") || "none"}`);
}

/** `<prefix>-<8 hex>`: unique per call, valid as an object name when the prefix is. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

async function waitUntilAuthorized(
  admin: KubeConfig,
  subject: RbacV1Subject,
  rule: V1PolicyRule,
): Promise<void> {
  const identity = identityOfSubject(subject);
  const resource = rule.resources?.[0];
  const [resourceName, subresource] = splitResource(resource);
  const attributes = {
    group: rule.apiGroups?.[0] ?? "",
    resource: resourceName,
    subresource,
    verb: rule.verbs[0] === "*" ? "get" : (rule.verbs[0] ?? "get"),
    name: rule.resourceNames?.[0],
  };
  const authorization = admin.makeApiClient(AuthorizationV1Api);
  await waitFor(
    `the RBAC grant for ${identity.user} to take effect (${JSON.stringify(attributes)})`,
    async () => {
      const review = await authorization.createSubjectAccessReview({
        body: {
          spec: {
            user: identity.user,
            groups: identity.groups,
            ...(resource === undefined
              ? { nonResourceAttributes: { path: rule.nonResourceURLs?.[0] ?? "/", verb: attributes.verb } }
              : { resourceAttributes: attributes }),
          },
        },
      });
      return review.status?.allowed === true ? true : undefined;
    },
    15_000,
  );
}

function identityOfSubject(subject: RbacV1Subject): Identity {
  switch (subject.kind) {
    case "ServiceAccount":
      return serviceAccountIdentity(subject.namespace ?? "default", subject.name);
    case "Group":
      return { user: "csr-signer-test:group-probe", groups: [subject.name, "system:authenticated"] };
    default:
      return { user: subject.name, groups: ["system:authenticated"] };
  }
}

function splitResource(resource: string | undefined): [string | undefined, string | undefined] {
  if (resource === undefined) return [undefined, undefined];
  const slash = resource.indexOf("/");
  return slash < 0 ? [resource, undefined] : [resource.slice(0, slash), resource.slice(slash + 1)];
}

async function ignoreNotFound(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    // Already gone is the desired end state.
    if (apiErrorCode(error) !== 404) throw error;
  }
}

/** Lets `subjects` create and read CSRs (what a workload or a kubelet needs to ask for a certificate). */
export function allowToRequestCertificates(
  admin: KubeConfig,
  subjects: RbacV1Subject | RbacV1Subject[],
): Promise<Grant> {
  return grantClusterRole(
    admin,
    subjects,
    [
      {
        apiGroups: ["certificates.k8s.io"],
        resources: ["certificatesigningrequests"],
        verbs: ["create", "get"],
      },
    ],
    "csr-requester",
  );
}

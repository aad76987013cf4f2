import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { signerApiGroup, signerApiVersion, signerPlural } from "../api/signer.js";
import { loadCertificateAuthority } from "../pki/certificate-authority.js";
import { parseCertificate } from "../pki/certificate.js";
import { parseDistinguishedName } from "../pki/names.js";
import {
  cacertsFiles,
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
  type GeneratedCertificateAuthority,
} from "../pki/offline-ca.js";
import { decodeCertificatesPem } from "../pki/pem.js";
import { SoftwareSigningKey } from "../pki/signing-key.js";
import { KubeApi } from "../kube/api-client.js";
import { parseSignerSpec, SignerSpecError } from "../policy/signer-spec.js";
import { caLifetimeSeconds, keyType, rootFiles } from "./ca-commands.js";
import { writeFilesAtomically } from "./files.js";
import { UsageError, type CommandIo } from "./io.js";
import { kubeConfigFromFile } from "./kubeconfig.js";
import { toYamlDocuments } from "./yaml.js";

/**
 * The signer-name domain `tenant add` uses without --domain: the one manifests/base and the Helm
 * chart (rbac.signerDomains) grant sign and attest on as "<domain>/*" (tests keep them equal).
 */
export const defaultTenantDomain = "example.com";

export const tenantAddHelp = `Usage: csr-signer tenant add NAME (--root DIR | --new-root DIR) [--domain DOMAIN] [options]

Onboards tenant NAME in one step: an intermediate CA for it (under the offline root in --root, or
under a new root written to --new-root for this tenant alone), the CA Secret NAME-cacerts in the
controller's namespace, and the Signer NAME for signer name DOMAIN/NAME, serving the tenant's
namespaces. Prints both objects as YAML (the Secret holds the intermediate's key: pipe it to
kubectl create, do not keep it in a file), or creates them with --apply. Nothing else changes: the
controller's ClusterRole grants sign and attest on "DOMAIN/*" (manifests/base and the Helm chart's
rbac.signerDomains grant "${defaultTenantDomain}/*", the default DOMAIN; README "Onboarding a tenant"
says how to set your own), so a new tenant needs no RBAC edit.

Never replaces a tenant: pipe to \`kubectl create -f -\` (which refuses objects that exist), never
to \`kubectl apply\`, which would overwrite the tenant's CA Secret (and copy its key into the
last-applied-configuration annotation). --apply creates, and refuses before creating anything
when the Secret, the Signer or the Role exists. To rotate a tenant's CA see README "Trust bundles
and CA rotation".

With --ca-in-tenant-namespace the Secret goes to the tenant's namespace instead (the Signer's
certificateAuthority.secretNamespace), with a Role there letting the controller list and watch
that one Secret and its RoleBinding: everyone who can read Secrets in that namespace then holds the
CA key, so it needs --new-root (a root that tenant alone trusts) and at most one --namespace. That
namespace must exist (--apply refuses before creating anything when it does not), or pass
--create-namespace.

  csr-signer tenant add foo --root offline/root | kubectl create -f -

Options:
  --domain DOMAIN               the signer name's domain (signerName DOMAIN/NAME; default ${defaultTenantDomain})
  --root DIR                    an existing root CA folder (root-cert.pem, root-key.pem)
  --new-root DIR                create a root for this tenant in DIR (its key stays there, 0600)
  --namespace NS                a tenant namespace (repeatable; default NAME)
  --controller-namespace NS     where the controller reads CA Secrets (default csr-signer; with Helm,
                                the release namespace)
  --ca-in-tenant-namespace      the CA Secret in the (one) tenant namespace, with the controller's Role there;
                                needs --new-root
  --create-namespace            with --ca-in-tenant-namespace: print (or create) that Namespace too
  --controller-service-account NS/NAME  the controller's ServiceAccount the RoleBinding names
                                (default CONTROLLER-NAMESPACE/csr-signer; with Helm, RELEASE-NAMESPACE/FULLNAME)
  --trust-domain DOMAIN         SPIFFE trust domain (default cluster.local)
  --registration-authority NS/SA  a requester that asks for others, e.g. istio-system/istiod (repeatable)
  --key-type TYPE               the intermediate's key type (default ecdsa-p256)
  --lifetime DURATION           the intermediate's lifetime (default 1y)
  --apply                       create the objects instead of printing them (never replaces one)
  --kubeconfig FILE             with --apply (default $KUBECONFIG)
`;

export async function tenantAdd(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      domain: { type: "string", default: defaultTenantDomain },
      root: { type: "string" },
      "new-root": { type: "string" },
      namespace: { type: "string", multiple: true, default: [] },
      "controller-namespace": { type: "string", default: "csr-signer" },
      "ca-in-tenant-namespace": { type: "boolean", default: false },
      "create-namespace": { type: "boolean", default: false },
      "controller-service-account": { type: "string" },
      "trust-domain": { type: "string", default: "cluster.local" },
      "registration-authority": { type: "string", multiple: true, default: [] },
      "key-type": { type: "string" },
      lifetime: { type: "string", default: "1y" },
      apply: { type: "boolean", default: false },
      kubeconfig: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  const name = positionals[0];
  if (positionals.length !== 1 || !name || !/^[a-z0-9]([-a-z0-9]{0,53}[a-z0-9])?$/.test(name))
    throw new UsageError("give one tenant NAME: lower-case letters, digits and '-', at most 55 characters");
  if (!values.domain) throw new UsageError("--domain must not be empty");
  if ((values.root === undefined) === (values["new-root"] === undefined))
    throw new UsageError("give exactly one of --root or --new-root");
  // The tenant's Secret readers hold the key: it must chain to a root this one namespace alone trusts.
  if (values["ca-in-tenant-namespace"] && values.root !== undefined)
    throw new UsageError(
      "--ca-in-tenant-namespace needs --new-root: an intermediate of a shared --root in a tenant's Secret lets its readers sign for every namespace that trusts the root",
    );
  if (values["ca-in-tenant-namespace"] && values.namespace.length > 1)
    throw new UsageError(
      "--ca-in-tenant-namespace serves exactly one --namespace: the Secret's readers could sign for the others",
    );
  const kubeconfigPath = values.kubeconfig ?? process.env.KUBECONFIG;
  if (values.apply && !kubeconfigPath) throw new UsageError("--apply needs --kubeconfig or $KUBECONFIG");
  const secretName = `${name}-cacerts`;
  const tenantNamespaces = values.namespace.length > 0 ? values.namespace : [name];
  const controllerServiceAccount = serviceAccountRef(
    values["controller-service-account"] ?? `${values["controller-namespace"]}/csr-signer`,
  );
  // The Secret's namespace: the tenant's only one (the Signer's secretNamespace), else the controller's.
  const secretNamespace = values["ca-in-tenant-namespace"] ? tenantNamespaces[0]! : undefined;
  if (values["controller-service-account"] !== undefined && !secretNamespace)
    throw new UsageError(
      "--controller-service-account names the RoleBinding's subject: it needs --ca-in-tenant-namespace",
    );
  if (values["create-namespace"] && !secretNamespace)
    throw new UsageError(
      "--create-namespace creates the CA Secret's namespace: it needs --ca-in-tenant-namespace",
    );
  const signer = {
    apiVersion: `${signerApiGroup}/${signerApiVersion}`,
    kind: "Signer",
    metadata: { name, labels: { "csr-signer.io/tenant": name } },
    spec: {
      signerName: `${values.domain}/${name}`,
      certificateAuthority: { secretName, ...(secretNamespace ? { secretNamespace } : {}) },
      policy: {
        requesters: {
          tenantServiceAccounts: true,
          ...(values["registration-authority"].length > 0
            ? { registrationAuthorities: values["registration-authority"] }
            : {}),
        },
        tenants: { namespaces: tenantNamespaces },
        spiffe: { trustDomain: values["trust-domain"] },
        dnsNames: ["*.{namespace}.svc", "*.{namespace}.svc.cluster.local"],
      },
    },
  };
  // Refuse before any key is made: the controller would refuse this spec the same way.
  try {
    parseSignerSpec(signer.spec, name);
  } catch (error) {
    if (error instanceof SignerSpecError) throw new UsageError(error.message);
    throw error;
  }
  const api = values.apply ? KubeApi.for(kubeConfigFromFile(kubeconfigPath!)) : undefined;
  // Before any key is made or object created: tenant add onboards, it never replaces a tenant's CA.
  const createNamespace = api
    ? await refuseExistingTenant(api, {
        name,
        secretNamespace: secretNamespace ?? values["controller-namespace"],
        secretName,
        tenantNamespace: secretNamespace,
        createNamespace: values["create-namespace"],
      })
    : values["create-namespace"];
  const now = io.environment.now();
  const root =
    values.root !== undefined ? readRoot(values.root) : await newRoot(values["new-root"]!, name, io);
  const intermediate = await createIntermediateCertificateAuthority(
    root,
    {
      subject: parseDistinguishedName(`O=csr-signer,CN=${name} intermediate CA`),
      lifetimeSeconds: caLifetimeSeconds(values.lifetime),
      keyType: keyType(values["key-type"], "ecdsa-p256"),
    },
    io.environment,
  );
  const files = cacertsFiles(intermediate, [root.certificate], [root.certificate]);
  loadCertificateAuthority(files, now);
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: secretName,
      namespace: secretNamespace ?? values["controller-namespace"],
      labels: { "app.kubernetes.io/name": "csr-signer", "csr-signer.io/tenant": name },
    },
    type: "Opaque",
    data: Object.fromEntries(
      Object.entries(files).map(([file, content]) => [file, Buffer.from(content).toString("base64")]),
    ),
  };
  const access = secretNamespace
    ? controllerSecretAccess(name, secretNamespace, secretName, controllerServiceAccount)
    : undefined;
  const namespace = createNamespace
    ? { apiVersion: "v1", kind: "Namespace", metadata: { name: secretNamespace! } }
    : undefined;
  if (!api) {
    io.stdout(
      toYamlDocuments([
        ...(namespace ? [namespace] : []),
        ...(access ? [access.role, access.roleBinding] : []),
        secret,
        signer,
      ]),
    );
    return;
  }
  if (namespace) await api.create("/api/v1/namespaces", namespace);
  // The grant first: the controller can read the Secret as soon as the Signer names it.
  if (access) {
    await api.create(`${rbacPath(secretNamespace!)}/roles`, access.role);
    await api.create(`${rbacPath(secretNamespace!)}/rolebindings`, access.roleBinding);
  }
  await api.create(`/api/v1/namespaces/${encodeURIComponent(secret.metadata.namespace)}/secrets`, secret);
  await api.create(`/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}`, signer);
  io.stdout(
    `created ${namespace ? `Namespace ${secretNamespace}, ` : ""}${access ? `Role and RoleBinding ${secretNamespace}/${access.role.metadata.name}, ` : ""}Secret ${secret.metadata.namespace}/${secretName} and Signer ${name} (${signer.spec.signerName}); intermediate ${intermediate.certificate.subject}, sha256 ${intermediate.certificate.fingerprintSha256}\n`,
  );
}

/**
 * Refuses (before anything is made) to onboard a tenant whose Secret, Signer or Role exists, and
 * one whose CA Secret namespace does not exist unless it is to be created. Answers whether the
 * namespace is to be created.
 */
async function refuseExistingTenant(
  api: KubeApi,
  tenant: {
    name: string;
    secretNamespace: string;
    secretName: string;
    tenantNamespace: string | undefined;
    createNamespace: boolean;
  },
): Promise<boolean> {
  const rbac = rbacPath(tenant.secretNamespace);
  const role = caRoleName(tenant.name);
  const objects: [string, string][] = [
    [
      `Secret ${tenant.secretNamespace}/${tenant.secretName}`,
      `/api/v1/namespaces/${encodeURIComponent(tenant.secretNamespace)}/secrets/${encodeURIComponent(tenant.secretName)}`,
    ],
    [
      `Signer ${tenant.name}`,
      `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}/${encodeURIComponent(tenant.name)}`,
    ],
    ...(tenant.tenantNamespace
      ? ([
          [`Role ${tenant.secretNamespace}/${role}`, `${rbac}/roles/${role}`],
          [`RoleBinding ${tenant.secretNamespace}/${role}`, `${rbac}/rolebindings/${role}`],
        ] as [string, string][])
      : []),
  ];
  const existing: string[] = [];
  for (const [what, path] of objects) if ((await api.getIfExists(path)) !== undefined) existing.push(what);
  if (existing.length > 0)
    throw new Error(
      `${existing.map((what) => `${what} already exists`).join("; ")}: tenant add never replaces a tenant's CA (created nothing). ` +
        `Rotate an existing tenant's CA as README "Trust bundles and CA rotation" says, or pick another NAME.`,
    );
  if (!tenant.tenantNamespace) return false;
  const namespaceExists =
    (await api.getIfExists(`/api/v1/namespaces/${encodeURIComponent(tenant.tenantNamespace)}`)) !== undefined;
  if (!namespaceExists && !tenant.createNamespace)
    throw new Error(
      `Namespace ${tenant.tenantNamespace} does not exist (created nothing): create it first (kubectl create namespace ${tenant.tenantNamespace}) or pass --create-namespace`,
    );
  return !namespaceExists;
}

/** "namespace/name" of a ServiceAccount. */
function serviceAccountRef(value: string): { namespace: string; name: string } {
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value);
  if (!match) throw new UsageError(`--controller-service-account must be NAMESPACE/NAME, got "${value}"`);
  return { namespace: match[1]!, name: match[3]! };
}

/** The name of the Role letting the controller read tenant NAME's CA Secret, and of its RoleBinding. */
function caRoleName(tenant: string): string {
  return `csr-signer-ca-${tenant}`;
}

/** The API path under which `namespace`'s Roles and RoleBindings are created and read. */
function rbacPath(namespace: string): string {
  return `/apis/rbac.authorization.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}`;
}

/**
 * The Role letting the controller list and watch the one CA Secret in the tenant's namespace (the
 * controller lists it by name, so resourceNames holds), and the RoleBinding to its ServiceAccount.
 */
function controllerSecretAccess(
  tenant: string,
  namespace: string,
  secretName: string,
  serviceAccount: { namespace: string; name: string },
) {
  const metadata = {
    name: caRoleName(tenant),
    namespace,
    labels: { "app.kubernetes.io/name": "csr-signer", "csr-signer.io/tenant": tenant },
  };
  return {
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata,
      rules: [
        { apiGroups: [""], resources: ["secrets"], resourceNames: [secretName], verbs: ["list", "watch"] },
      ],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: metadata.name },
      subjects: [{ kind: "ServiceAccount", ...serviceAccount }],
    },
  };
}

type Root = GeneratedCertificateAuthority;

function readRoot(dir: string): Pick<Root, "certificate" | "signingKey"> {
  const certificates = decodeCertificatesPem(
    readFileSync(join(dir, rootFiles.certificate), "utf8"),
    "root",
  ).map(parseCertificate);
  if (certificates.length !== 1)
    throw new UsageError(`${join(dir, rootFiles.certificate)} must hold exactly one certificate`);
  const signingKey = SoftwareSigningKey.fromPem(readFileSync(join(dir, rootFiles.key)));
  if (!certificates[0]!.x509.publicKey.equals(signingKey.publicKey))
    throw new UsageError(`${join(dir, rootFiles.key)} does not match ${join(dir, rootFiles.certificate)}`);
  return { certificate: certificates[0]!, signingKey };
}

async function newRoot(dir: string, name: string, io: CommandIo): Promise<Root> {
  const root = await createRootCertificateAuthority(
    {
      subject: parseDistinguishedName(`O=csr-signer,CN=${name} root CA`),
      lifetimeSeconds: caLifetimeSeconds("10y"),
      keyType: "ecdsa-p384",
    },
    io.environment,
  );
  writeFilesAtomically(
    dir,
    { [rootFiles.certificate]: root.certificate.pem, [rootFiles.key]: root.keyPem },
    { overwrite: false, privateFiles: [rootFiles.key] },
  );
  io.stderr(
    `wrote the new root of ${name} to ${join(dir, rootFiles.certificate)} and ${rootFiles.key} (keep it offline)\n`,
  );
  return root;
}

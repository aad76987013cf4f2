/**
 * Running the signer controller in-process against the test control plane, under the RBAC of
 * manifests/ (impersonating the csr-signer service account), plus helpers to act as requesters
 * and approvers and to wait for outcomes.
 */
import { execFileSync } from "node:child_process";
import {
  ApiextensionsV1Api,
  CertificatesV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import type { ControllerOptions } from "../../src/controller/controller-options.js";
import { SignerController } from "../../src/controller/controller.js";
import { apiErrorCode } from "../../src/kube/client.js";
import { jsonLogger, type Logger } from "../../src/logger.js";
import { signerApiGroup, signerApiVersion, signerPlural } from "../../src/api/signer.js";
import type { ControlPlane } from "./control-plane.js";
import { repositoryRoot, testBinary } from "./testbin.js";
import { waitFor } from "./wait.js";
import { buildTestCertificateRequest, testKey } from "./pki.js";
import {
  grantClusterRole,
  impersonatingKubeConfig,
  serviceAccountIdentity,
  serviceAccountSubject,
} from "./identities.js";

export const controllerNamespace = "csr-signer";

/** Runs the real kubectl against the control plane. */
export function kubectl(controlPlane: ControlPlane, args: string[], input?: string): string {
  return execFileSync(
    testBinary("KUBE_BIN_DIR", "kubectl"),
    ["--kubeconfig", controlPlane.kubeconfigPath, ...args],
    {
      cwd: repositoryRoot,
      encoding: "utf8",
      input,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
}

const installed = new WeakSet<ControlPlane>();

/** Applies the CRD and the controller's namespace, service account and RBAC from manifests/ (once per control plane). */
export async function installSignerManifests(controlPlane: ControlPlane): Promise<void> {
  if (installed.has(controlPlane)) return;
  kubectl(controlPlane, ["apply", "--server-side", "-f", "manifests/crd/signers.csr-signer.io.yaml"]);
  kubectl(controlPlane, [
    "apply",
    "--server-side",
    "-f",
    "manifests/base/namespace.yaml",
    "-f",
    "manifests/base/serviceaccount.yaml",
    "-f",
    "manifests/base/rbac.yaml",
  ]);
  const extensions = controlPlane.kubeConfig().makeApiClient(ApiextensionsV1Api);
  await waitFor("the Signer CRD to be established", async () => {
    const crd = await extensions.readCustomResourceDefinition({ name: `${signerPlural}.${signerApiGroup}` });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")
      ? true
      : undefined;
  });
  installed.add(controlPlane);
}

export interface RunningController {
  controller: SignerController;
  logs: string[];
  stop(): Promise<void>;
}

/**
 * Starts a controller as the csr-signer service account, allowed to sign for `signerNames`
 * (the manifests' ClusterRole lists only the example names).
 */
export async function startController(
  controlPlane: ControlPlane,
  signerNames: string[],
  options: Partial<ControllerOptions> = {},
): Promise<RunningController> {
  const admin = controlPlane.kubeConfig();
  // An empty resourceNames list would mean every signer: grant nothing then.
  if (signerNames.length > 0) {
    await grantClusterRole(
      admin,
      serviceAccountSubject(controllerNamespace, "csr-signer"),
      [
        {
          apiGroups: ["certificates.k8s.io"],
          resources: ["signers"],
          resourceNames: signerNames,
          verbs: ["sign", "attest"],
        },
      ],
      "controller-sign",
    );
  }
  const identity = serviceAccountIdentity(controllerNamespace, "csr-signer");
  const logs: string[] = [];
  const logger: Logger = jsonLogger({ level: "debug", write: (line) => void logs.push(line) });
  const controller = new SignerController({
    kubeConfig: impersonatingKubeConfig(admin, identity.user, identity.groups),
    namespace: controllerNamespace,
    workers: 2,
    leaderElection: false,
    metricsAddress: "127.0.0.1:0",
    // Plain HTTP: the suites read /metrics with fetch; metrics-serving.test.ts tests the secure default.
    metricsSecure: false,
    probeAddress: "127.0.0.1:0",
    caFolderPollMs: 500,
    logger,
    ...options,
  });
  await controller.start();
  return { controller, logs, stop: () => controller.stop() };
}

export async function createCaSecret(
  admin: KubeConfig,
  name: string,
  files: Record<string, string>,
): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  const data = Object.fromEntries(
    Object.entries(files).map(([key, value]) => [key, Buffer.from(value).toString("base64")]),
  );
  try {
    await core.createNamespacedSecret({
      namespace: controllerNamespace,
      body: { metadata: { name }, type: "Opaque", data },
    });
  } catch (error) {
    if (apiErrorCode(error) !== 409) throw error;
    await core.replaceNamespacedSecret({
      name,
      namespace: controllerNamespace,
      body: { metadata: { name }, type: "Opaque", data },
    });
  }
}

export async function createSigner(
  admin: KubeConfig,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await admin.makeApiClient(CustomObjectsApi).createClusterCustomObject({
    group: signerApiGroup,
    version: signerApiVersion,
    plural: signerPlural,
    body: { apiVersion: `${signerApiGroup}/${signerApiVersion}`, kind: "Signer", metadata: { name }, spec },
  });
}

export async function readSigner(
  admin: KubeConfig,
  name: string,
): Promise<{
  spec: Record<string, unknown>;
  status?: Record<string, unknown> & {
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}> {
  return (await admin.makeApiClient(CustomObjectsApi).getClusterCustomObject({
    group: signerApiGroup,
    version: signerApiVersion,
    plural: signerPlural,
    name,
  })) as never;
}

export async function deleteSigner(admin: KubeConfig, name: string): Promise<void> {
  try {
    await admin.makeApiClient(CustomObjectsApi).deleteClusterCustomObject({
      group: signerApiGroup,
      version: signerApiVersion,
      plural: signerPlural,
      name,
    });
  } catch (error) {
    if (apiErrorCode(error) !== 404) throw error;
  }
}

export async function waitForSignerCondition(
  admin: KubeConfig,
  name: string,
  type: string,
  status: string,
  reason?: string,
  timeoutMs?: number,
) {
  return waitFor(
    `Signer ${name} ${type}=${status}${reason ? ` (${reason})` : ""}`,
    async () => {
      const signer = await readSigner(admin, name);
      const condition = signer.status?.conditions?.find((c) => c.type === type);
      return condition && condition.status === status && (!reason || condition.reason === reason)
        ? signer
        : undefined;
    },
    timeoutMs,
  );
}

export interface SubmittedCsr {
  name: string;
  signerName: string;
}

/** Creates a CSR as `requester` (its identity becomes spec.username). */
export async function submitCsr(
  requester: KubeConfig,
  csr: {
    name: string;
    signerName: string;
    requestPem: string;
    usages?: string[];
    expirationSeconds?: number;
  },
): Promise<void> {
  await requester.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
    body: {
      metadata: { name: csr.name },
      spec: {
        signerName: csr.signerName,
        request: Buffer.from(csr.requestPem).toString("base64"),
        usages: csr.usages ?? ["digital signature", "key encipherment", "server auth", "client auth"],
        ...(csr.expirationSeconds !== undefined ? { expirationSeconds: csr.expirationSeconds } : {}),
      },
    },
  });
}

/** Adds an Approved (or Denied) condition through /approval as `approver`, as istiod does. */
export async function setApproval(
  approver: KubeConfig,
  name: string,
  decision: "Approved" | "Denied",
): Promise<void> {
  const certificates = approver.makeApiClient(CertificatesV1Api);
  const csr = await certificates.readCertificateSigningRequest({ name });
  csr.status = {
    ...csr.status,
    conditions: [
      ...(csr.status?.conditions ?? []),
      {
        type: decision,
        status: "True",
        reason: decision === "Approved" ? "IstiodApproved" : "TestDenied",
        message: `CSR (${name}) is ${decision.toLowerCase()} by the test`,
        lastUpdateTime: new Date(),
      },
    ],
  };
  await certificates.replaceCertificateSigningRequestApproval({ name, body: csr });
}

/** The first Approved or Denied condition of a CSR, once there is one. */
export async function waitForApprovalDecision(
  admin: KubeConfig,
  name: string,
): Promise<{ type: string; reason: string; message: string }> {
  return waitFor(`CSR ${name} to be approved or denied`, async () => {
    const condition = (await readCsr(admin, name))?.status?.conditions?.find(
      (c) => (c.type === "Approved" || c.type === "Denied") && c.status === "True",
    );
    return condition
      ? { type: condition.type, reason: condition.reason ?? "", message: condition.message ?? "" }
      : undefined;
  });
}

export async function readCsr(
  admin: KubeConfig,
  name: string,
): Promise<V1CertificateSigningRequest | undefined> {
  try {
    return await admin.makeApiClient(CertificatesV1Api).readCertificateSigningRequest({ name });
  } catch (error) {
    if (apiErrorCode(error) === 404) return undefined;
    throw error;
  }
}

/** Waits until the CSR has a certificate (returned as PEM) or a Failed condition (returned as the condition). */
export async function waitForOutcome(
  admin: KubeConfig,
  name: string,
  timeoutMs = 20_000,
): Promise<{ certificatePem?: string; failed?: { reason: string; message: string } }> {
  return waitFor(
    `CSR ${name} to be issued or failed`,
    async () => {
      const csr = await readCsr(admin, name);
      if (csr?.status?.certificate)
        return { certificatePem: Buffer.from(csr.status.certificate, "base64").toString("utf8") };
      const failed = csr?.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
      if (failed) return { failed: { reason: failed.reason ?? "", message: failed.message ?? "" } };
      return undefined;
    },
    timeoutMs,
  );
}

/** Events recorded about a CSR (cluster-scoped objects' Events live in default). */
/**
 * Creates CSR `name` for a server certificate (one DNS SAN, default `<name>.example.test`; a fresh
 * ECDSA P-256 key of the test pool) as the admin, and approves it.
 */
export async function submitApprovedServerCsr(
  admin: KubeConfig,
  name: string,
  signerName: string,
  dnsName = `${name}.example.test`,
): Promise<void> {
  const requestPem = buildTestCertificateRequest({
    key: testKey("ecdsa-p256"),
    subjectAltNames: { dns: [dnsName] },
  });
  await submitCsr(admin, { name, signerName, requestPem, usages: ["digital signature", "server auth"] });
  await setApproval(admin, name, "Approved");
}

/** Waits for an Event of `reason` (and `type`, when given) on CSR `name`; returns it. */
export function waitForCsrEvent(
  admin: KubeConfig,
  name: string,
  reason: string,
  type?: "Normal" | "Warning",
): Promise<{ type: string; reason: string; message: string }> {
  return waitFor(`the ${reason} Event of ${name}`, async () =>
    (await csrEvents(admin, name)).find((e) => e.reason === reason && (!type || e.type === type)),
  );
}

export async function csrEvents(
  admin: KubeConfig,
  name: string,
): Promise<{ type: string; reason: string; message: string }[]> {
  const list = await admin
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: "default", fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((event) => ({
    type: event.type ?? "",
    reason: event.reason ?? "",
    message: event.message ?? "",
  }));
}

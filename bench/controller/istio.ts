/**
 * The submitter's side: Istio-shaped requests, istiod's two calls (create, then approve through
 * /approval), and a watch that records when each CSR got its certificate (or failed).
 */
import {
  CertificatesV1Api,
  Watch,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import { apiErrorCode } from "../../src/kube/client.js";
import { buildTestCertificateRequest, testKey } from "../../test/support/pki.js";
import { progress, signerName } from "./common.js";
import { delay } from "../../test/support/wait.js";

const distinctKeys = 50;
const istioUsages = ["digital signature", "key encipherment", "server auth", "client auth"];
const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

const keys = Array.from({ length: distinctKeys }, () => testKey("ecdsa-p256", true));

export function istioRequestPem(index: number): string {
  return buildTestCertificateRequest({
    key: keys[index % distinctKeys]!,
    subject: [{ type: "O", value: "" }],
    subjectAltNames: { uri: [`spiffe://cluster.local/ns/foo/sa/sa-${index}`] },
  });
}

export function csrBody(
  name: string,
  requestPem: string,
  forSigner = signerName,
): V1CertificateSigningRequest {
  return {
    metadata: { name },
    spec: {
      signerName: forSigner,
      request: Buffer.from(requestPem).toString("base64"),
      usages: istioUsages,
      expirationSeconds: 86400,
    },
  };
}

/** istiod approves with the object create returned (pkg/kube/csr.go: create, then UpdateApproval). */
export async function approve(
  certificates: CertificatesV1Api,
  created: V1CertificateSigningRequest,
): Promise<void> {
  const name = created.metadata!.name!;
  let csr = created;
  for (let attempt = 1; ; attempt++) {
    csr.status = {
      ...csr.status,
      conditions: [
        ...(csr.status?.conditions ?? []),
        {
          type: "Approved",
          status: "True",
          reason: "IstiodApproved",
          message: `CSR (${name}) is approved by istiod`,
          lastUpdateTime: new Date(),
        },
      ],
    };
    try {
      await certificates.replaceCertificateSigningRequestApproval({ name, body: csr });
      return;
    } catch (error) {
      if (apiErrorCode(error) !== 409 || attempt >= 5) throw error;
      csr = await certificates.readCertificateSigningRequest({ name });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Watching CSRs for status.certificate (not polling): resumes from the last resourceVersion when a watch
// ends, relists when it cannot.

export interface IssuanceWatch {
  issuedAt: Map<string, number>;
  failed: Map<string, string>;
  restarts: number;
  stop(): void;
  /** Resolves when every name in `names` is issued or failed, or after timeoutMs. */
  waitFor(names: string[], timeoutMs: number): Promise<boolean>;
}

export async function watchIssuance(admin: KubeConfig, namePrefix: string): Promise<IssuanceWatch> {
  const certificates = admin.makeApiClient(CertificatesV1Api);
  const issuedAt = new Map<string, number>();
  const failed = new Map<string, string>();
  const listeners = new Set<() => void>();
  let stopped = false;
  let abort: AbortController | undefined;
  let resourceVersion =
    (await certificates.listCertificateSigningRequest({ limit: 1 })).metadata?.resourceVersion ?? "";
  const observe = (csr: V1CertificateSigningRequest): void => {
    const name = csr.metadata?.name;
    if (!name?.startsWith(namePrefix) || issuedAt.has(name) || failed.has(name)) return;
    const failure = csr.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
    if (csr.status?.certificate) issuedAt.set(name, performance.now());
    else if (failure) failed.set(name, `${failure.reason}: ${failure.message}`);
    else return;
    for (const listener of listeners) listener();
  };
  const handle: IssuanceWatch = {
    issuedAt,
    failed,
    restarts: 0,
    stop: () => {
      stopped = true;
      abort?.abort();
    },
    waitFor: (names, timeoutMs) =>
      new Promise((resolve) => {
        const check = (): void => {
          if (names.every((name) => issuedAt.has(name) || failed.has(name))) finish(true);
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        const finish = (done: boolean): void => {
          clearTimeout(timer);
          listeners.delete(check);
          resolve(done);
        };
        listeners.add(check);
        check();
      }),
  };
  let established!: () => void;
  const firstWatch = new Promise<void>((resolve) => (established = resolve));
  const watchOnce = (): Promise<"ended" | "relist"> =>
    new Promise((resolve) => {
      let gone = false;
      new Watch(admin)
        .watch(
          csrPath,
          { resourceVersion, allowWatchBookmarks: true },
          (type: string, object: V1CertificateSigningRequest & { code?: number }) => {
            if (type === "ERROR") {
              gone = true;
              abort?.abort();
              return;
            }
            if (object.metadata?.resourceVersion) resourceVersion = object.metadata.resourceVersion;
            if (type === "ADDED" || type === "MODIFIED") observe(object);
          },
          (error: unknown) => {
            const name = (error as Error | null)?.name;
            resolve(gone || (error && name !== "AbortError" && name !== "TimeoutError") ? "relist" : "ended");
          },
        )
        .then(
          (controller) => {
            abort = controller;
            established();
            if (stopped) controller.abort();
          },
          () => resolve("relist"),
        );
    });
  void (async () => {
    while (!stopped) {
      const outcome = await watchOnce();
      if (stopped) return;
      handle.restarts++;
      if (outcome === "relist") {
        try {
          await delay(200);
          const list = await certificates.listCertificateSigningRequest();
          for (const csr of list.items) observe(csr);
          resourceVersion = list.metadata?.resourceVersion ?? "";
        } catch (error) {
          progress(`CSR watch: relist failed: ${String(error)}`);
        }
      }
    }
  })();
  await firstWatch;
  return handle;
}

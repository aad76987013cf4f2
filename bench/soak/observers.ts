/**
 * What the soak reads from the API server while it runs (never from the controllers' counters):
 * - every soak CSR's outcome from a watch: certificate (the PEM the API server holds) or Failed
 *   condition, with the time it was seen; then the CSR is deleted, as istiod deletes its CSRs once
 *   answered, so that the API server and the controllers' caches hold a steady working set;
 * - the leader Lease, polled every 100 ms: who held it when;
 * - each tenant's published trust bundle (the Signer's ConfigMap in the tenant namespace), polled
 *   every 2 s: every root it ever published and when it was first seen.
 * Reads, lists and deletes go through the controller's JSON client (src/kube/api-client.ts), which
 * costs a fraction of client-node's generated clients per call.
 */
import { X509Certificate } from "node:crypto";
import {
  CoreV1Api,
  Watch,
  type KubeConfig,
  type V1CertificateSigningRequest,
  type V1CertificateSigningRequestList,
  type V1Lease,
} from "@kubernetes/client-node";
import { KubeApi } from "../../src/kube/api-client.js";
import { apiErrorCode } from "../../src/kube/client.js";
import { controllerNamespace } from "../../test/support/controller.js";
import { delay } from "../../test/support/wait.js";
import { soakLabel, tenantNamespace, tenants } from "./load.js";

export interface Outcome {
  name: string;
  uid: string;
  /** Date.now() when the watch (or a relist) showed the outcome. */
  seenAt: number;
  certificatePem?: string;
  failed?: { reason: string; message: string };
  annotations: Record<string, string>;
  kind: string;
  signerName: string;
}

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

export class OutcomeWatch {
  readonly outcomes = new Map<string, Outcome>();
  relists = 0;
  deleteFailures = 0;
  private stopped = false;
  private abort: AbortController | undefined;
  private done: Promise<void> | undefined;

  constructor(private readonly admin: KubeConfig) {}

  async start(): Promise<void> {
    let resourceVersion = await this.relist();
    let established!: () => void;
    const first = new Promise<void>((resolve) => (established = resolve));
    // Relists back off while the watch keeps failing (a restarted API server answering 410 Gone or
    // "too large resource version"): each relist lists every soak CSR, thousands of them, and a
    // tight loop of those would load the API server the soak is waiting for.
    let failures = 0;
    this.done = (async () => {
      while (!this.stopped) {
        const outcome = await new Promise<{ relist: boolean }>((resolve) => {
          let gone = false;
          new Watch(this.admin)
            .watch(
              csrPath,
              { resourceVersion, allowWatchBookmarks: true, labelSelector: soakLabel },
              (type: string, object: V1CertificateSigningRequest) => {
                if (type === "ERROR") {
                  gone = true;
                  this.abort?.abort();
                  return;
                }
                failures = 0;
                if (object.metadata?.resourceVersion) resourceVersion = object.metadata.resourceVersion;
                if (type === "ADDED" || type === "MODIFIED") this.observe(object);
              },
              (error: unknown) => resolve({ relist: gone || (error !== null && error !== undefined) }),
            )
            .then(
              (controller) => {
                this.abort = controller;
                established();
                if (this.stopped) controller.abort();
              },
              () => resolve({ relist: true }),
            );
        });
        if (this.stopped) return;
        if (outcome.relist) {
          await delay(Math.min(8_000, 500 * 2 ** failures++));
          try {
            resourceVersion = await this.relist();
          } catch {
            continue; // the API server is away: try again
          }
        }
      }
    })();
    await first;
  }

  /** Lists every soak CSR, records outcomes; returns the list's resourceVersion. */
  async relist(): Promise<string> {
    this.relists++;
    const list = await this.list();
    for (const csr of list.items) this.observe(csr);
    return list.metadata?.resourceVersion ?? "";
  }

  /** Soak CSRs still in the API server (not yet decided, or decided and not yet deleted). */
  async remaining(): Promise<V1CertificateSigningRequest[]> {
    const list = await this.list();
    for (const csr of list.items) this.observe(csr);
    return list.items.filter((csr) => !this.outcomes.has(csr.metadata?.name ?? ""));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.done;
  }

  private list(): Promise<V1CertificateSigningRequestList> {
    return KubeApi.for(this.admin).get<V1CertificateSigningRequestList>(csrPath, {
      labelSelector: soakLabel,
    });
  }

  private observe(csr: V1CertificateSigningRequest): void {
    const name = csr.metadata?.name ?? "";
    if (this.outcomes.has(name)) return;
    const failed = csr.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
    if (!csr.status?.certificate && !failed) return;
    this.outcomes.set(name, {
      name,
      uid: csr.metadata?.uid ?? "",
      seenAt: Date.now(),
      ...(csr.status?.certificate
        ? { certificatePem: Buffer.from(csr.status.certificate, "base64").toString("utf8") }
        : { failed: { reason: failed!.reason ?? "", message: failed!.message ?? "" } }),
      annotations: csr.metadata?.annotations ?? {},
      kind: csr.metadata?.labels?.[soakLabel] ?? "",
      signerName: csr.spec?.signerName ?? "",
    });
    void this.deleteAnswered(name, csr.metadata?.uid ?? "");
  }

  private async deleteAnswered(name: string, uid: string): Promise<void> {
    for (let attempt = 1; attempt <= 30; attempt++) {
      try {
        await KubeApi.for(this.admin).delete(`${csrPath}/${name}`, { preconditions: { uid } });
        return;
      } catch (error) {
        if (apiErrorCode(error) === 404) return;
        await delay(1_000 * attempt);
      }
    }
    this.deleteFailures++;
  }
}

/** A Lease holder from `since`: its acquireTime (the acquirer's clock: this machine's). */
export interface LeaseTenure {
  holder: string;
  since: number;
}

export class LeasePoller {
  readonly tenures: LeaseTenure[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(
    private readonly admin: KubeConfig,
    private readonly leaseName: string,
  ) {}

  start(): void {
    const api = KubeApi.for(this.admin);
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${controllerNamespace}/leases/${this.leaseName}`;
    this.done = (async () => {
      while (!this.stopped) {
        try {
          const lease = await api.get<V1Lease>(leasePath);
          const holder = lease.spec?.holderIdentity ?? "";
          const acquired = lease.spec?.acquireTime ? new Date(lease.spec.acquireTime).getTime() : Date.now();
          if (this.tenures.at(-1)?.holder !== holder) this.tenures.push({ holder, since: acquired });
        } catch {
          // Not created yet, or the API server is away: the next poll tells.
        }
        await delay(100);
      }
    })();
  }

  /**
   * Adds acquisitions the polls may have missed (a tenure shorter than a poll), from the controllers'
   * own "became leader" lines: each is logged right after the Lease write that made it leader.
   */
  addAcquisitions(acquisitions: readonly LeaseTenure[]): void {
    const merged = [...this.tenures, ...acquisitions].sort((a, b) => a.since - b.since);
    this.tenures.splice(0, this.tenures.length);
    for (const tenure of merged) if (this.tenures.at(-1)?.holder !== tenure.holder) this.tenures.push(tenure);
  }

  /** The holder as last seen at or before `at`. */
  holderAt(at: number): LeaseTenure | undefined {
    return this.tenures.findLast((tenure) => tenure.since <= at);
  }

  /** The first time after `after` that a holder other than `not` (and not empty) was seen. */
  takenOverAfter(after: number, not: string): number | undefined {
    return this.tenures.find((tenure) => tenure.since > after && tenure.holder && tenure.holder !== not)
      ?.since;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

export class BundlePoller {
  /** Per tenant: root fingerprint (SHA-256) -> first seen (Date.now()), with the certificate. */
  readonly roots = new Map<string, Map<string, { firstSeen: number; certificate: X509Certificate }>>();
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(private readonly admin: KubeConfig) {
    for (const tenant of tenants) this.roots.set(tenant, new Map());
  }

  async pollOnce(): Promise<void> {
    const core = this.admin.makeApiClient(CoreV1Api);
    for (const tenant of tenants) {
      try {
        const configMap = await core.readNamespacedConfigMap({
          name: `soak-${tenant}-trust-bundle`,
          namespace: tenantNamespace(tenant),
        });
        for (const pem of splitPem(configMap.data?.["ca.crt"] ?? "")) {
          const certificate = new X509Certificate(pem);
          const known = this.roots.get(tenant)!;
          if (!known.has(certificate.fingerprint256))
            known.set(certificate.fingerprint256, { firstSeen: Date.now(), certificate });
        }
      } catch {
        // Not published yet, or the API server is away: the next poll tells.
      }
    }
  }

  start(): void {
    this.done = (async () => {
      while (!this.stopped) {
        await this.pollOnce();
        await delay(2_000);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

export function splitPem(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map(
    (match) => match[0],
  );
}

/**
 * The soak's load: CSRs created at a steady rate across the three Signers, as istiod (for any
 * workload of a tenant) and as tenant workloads (for themselves), each approved right after it is
 * created (istiod approves its own; an approver approves the workloads'), plus a share that the
 * policy must refuse (approved all the same, so that only the signer stands in the way):
 * - istiod asking a Signer for a namespace that is not its tenant (NamespaceNotTenant),
 * - a workload asking for another service account's SPIFFE ID (SpiffeIdentityMismatch),
 * - a workload asking another tenant's Signer (RequesterNotAllowed: not one of its tenants' accounts).
 * Every CSR carries its expectation in labels and annotations, for the ledger.
 * Requests go through the controller's own JSON client (src/kube/api-client.ts), not client-node's
 * generated clients: at 50 CSRs/s on two cores the harness must cost little beside what it measures.
 */
import type { KubeConfig, V1CertificateSigningRequest } from "@kubernetes/client-node";
import { KubeApi } from "../../src/kube/api-client.js";
import { apiErrorCode, describeError } from "../../src/kube/client.js";
import { buildTestCertificateRequest, testKey } from "../../test/support/pki.js";
import { delay } from "../../test/support/wait.js";
import type { Random } from "./random.js";

export const soakLabel = "soak.csr-signer.test/kind";
export const expectedSpiffeAnnotation = "soak.csr-signer.test/spiffe-id";
export const expectedTenantAnnotation = "soak.csr-signer.test/tenant";
export const tenants = ["a", "b", "c"] as const;
export type Tenant = (typeof tenants)[number];
export const tenantNamespace = (tenant: string): string => `soak-${tenant}`;
export const signerNameOf = (tenant: string): string => `soak.csr-signer.test/${tenant}`;
export const workloadServiceAccount = "workload";

export type RequestKind = "istiod" | "workload" | "refuse-namespace" | "refuse-identity" | "refuse-signer";

/** What the generator knows of each CSR it created (the ledger's other half is the API server's). */
export interface SentRequest {
  name: string;
  kind: RequestKind;
  tenant: Tenant;
  /** Date.now() just before the create. */
  createdAt: number;
  approved: boolean;
  approvalAttempts: number;
  /** The last failed approval attempt's error, if any. */
  approvalError?: string;
}

export interface LoadCounters {
  /** Creates the API server answered 201 (or, after an unanswered create, that exist). */
  created: number;
  /** Creates that failed without creating anything (API server down); not requests. */
  notCreated: number;
  /** Ticks skipped because too many requests were in flight (API server frozen). */
  skipped: number;
  approvalRetries: number;
}

const keys = Array.from({ length: 32 }, () => testKey("ecdsa-p256", true));
const istioUsages = ["digital signature", "key encipherment", "server auth", "client auth"];
const maxInFlight = 400;
const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

export class LoadGenerator {
  readonly sent = new Map<string, SentRequest>();
  readonly counters: LoadCounters = { created: 0, notCreated: 0, skipped: 0, approvalRetries: 0 };
  private running = false;
  private inFlight = 0;
  private sequence = 0;
  private loop: Promise<void> | undefined;
  private readonly pending = new Set<Promise<void>>();
  /** Approvals are retried until this time: Infinity until stop(). */
  private approvalsGiveUpAt = Infinity;

  constructor(
    private readonly istiod: KubeConfig,
    private readonly workloads: Record<Tenant, KubeConfig>,
    private readonly approver: KubeConfig,
    private readonly random: Random,
    private readonly ratePerSecond: number,
    private readonly refuseShare: number,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      const started = performance.now();
      let issued = 0;
      while (this.running) {
        const due = Math.floor(((performance.now() - started) / 1000) * this.ratePerSecond);
        for (; issued < due; issued++) {
          if (this.inFlight >= maxInFlight) {
            this.counters.skipped++;
            continue;
          }
          this.inFlight++;
          const request = this.oneRequest().finally(() => {
            this.inFlight--;
            this.pending.delete(request);
          });
          this.pending.add(request);
        }
        await delay(10);
      }
    })();
  }

  /** Stops creating; resolves when every request in flight has been created and approved (or a minute passed). */
  async stop(): Promise<void> {
    this.running = false;
    this.approvalsGiveUpAt = Date.now() + 60_000;
    await this.loop;
    await Promise.all([...this.pending]);
  }

  private pick(): { kind: RequestKind; tenant: Tenant } {
    const tenant = tenants[this.random.integer(tenants.length)]!;
    const roll = this.random.fraction();
    if (roll < this.refuseShare) {
      const kinds: RequestKind[] = ["refuse-namespace", "refuse-identity", "refuse-signer"];
      return { kind: kinds[this.random.integer(kinds.length)]!, tenant };
    }
    return { kind: roll < this.refuseShare + (1 - this.refuseShare) * 0.6 ? "istiod" : "workload", tenant };
  }

  private async oneRequest(): Promise<void> {
    const { kind, tenant } = this.pick();
    const index = this.sequence++;
    const name = `soak-${index.toString().padStart(6, "0")}-${kind}-${tenant}`;
    const other = tenants[(tenants.indexOf(tenant) + 1) % tenants.length]!;
    const namespace = tenantNamespace(tenant);
    let requester: KubeConfig;
    let spiffeId: string;
    let signerName = signerNameOf(tenant);
    switch (kind) {
      case "istiod":
        requester = this.istiod;
        spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/sa-${index % 100}`;
        break;
      case "workload":
        requester = this.workloads[tenant];
        spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/${workloadServiceAccount}`;
        break;
      case "refuse-namespace":
        requester = this.istiod;
        spiffeId = `spiffe://cluster.local/ns/${tenantNamespace(other)}/sa/sa-${index % 100}`;
        break;
      case "refuse-identity":
        requester = this.workloads[tenant];
        spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/someone-else`;
        break;
      case "refuse-signer":
        requester = this.workloads[tenant];
        spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/${workloadServiceAccount}`;
        signerName = signerNameOf(other);
        break;
    }
    const requestPem = buildTestCertificateRequest({
      key: keys[index % keys.length]!,
      subject: [{ type: "O", value: "" }],
      subjectAltNames: { uri: [spiffeId] },
    });
    const body: V1CertificateSigningRequest = {
      metadata: {
        name,
        labels: { [soakLabel]: kind },
        annotations: {
          [expectedSpiffeAnnotation]: spiffeId,
          // The tenant whose Signer is asked: its bundle must verify the certificate.
          [expectedTenantAnnotation]: kind === "refuse-signer" ? other : tenant,
        },
      },
      spec: {
        signerName,
        request: Buffer.from(requestPem).toString("base64"),
        usages: istioUsages,
        expirationSeconds: 86400,
      },
    };
    const createdAt = Date.now();
    const created = await this.create(requester, body);
    if (created === undefined) {
      this.counters.notCreated++;
      return;
    }
    this.counters.created++;
    const sent: SentRequest = { name, kind, tenant, createdAt, approved: false, approvalAttempts: 0 };
    this.sent.set(name, sent);
    const approver = kind === "istiod" || kind === "refuse-namespace" ? this.istiod : this.approver;
    await this.approve(approver, created, sent);
  }

  /** The created CSR, or undefined when it does not exist (an unanswered create is checked by a read). */
  private async create(
    requester: KubeConfig,
    body: V1CertificateSigningRequest,
  ): Promise<V1CertificateSigningRequest | undefined> {
    try {
      return await KubeApi.for(requester).create<V1CertificateSigningRequest>(csrPath, body);
    } catch (error) {
      // Refused with a status: nothing was created. Unanswered: it may exist; ask until someone answers.
      if (apiErrorCode(error) !== undefined && apiErrorCode(error) !== 504) return undefined;
      const name = body.metadata!.name!;
      for (let attempt = 1; attempt <= 60; attempt++) {
        await delay(1_000);
        try {
          return await KubeApi.for(this.approver).get<V1CertificateSigningRequest>(`${csrPath}/${name}`);
        } catch (readError) {
          if (apiErrorCode(readError) === 404) return undefined;
        }
      }
      return undefined;
    }
  }

  /**
   * istiod's approval through /approval, retried until it is in: a request the generator never
   * approves is one no signer may answer, so giving up would leave it pending for good. Retries stop
   * only once the generator was stopped and a minute has passed since.
   */
  private async approve(
    approver: KubeConfig,
    created: V1CertificateSigningRequest,
    sent: SentRequest,
  ): Promise<void> {
    const api = KubeApi.for(approver);
    let csr = created;
    for (let attempt = 1; Date.now() < this.approvalsGiveUpAt; attempt++) {
      sent.approvalAttempts = attempt;
      // A new object each time: `created` may be sent again after a failed read, never with two conditions.
      const body: V1CertificateSigningRequest = {
        ...csr,
        status: {
          ...csr.status,
          conditions: [
            ...(csr.status?.conditions ?? []),
            {
              type: "Approved",
              status: "True",
              reason: "SoakApproved",
              message: `approved by the soak's ${sent.kind} approver`,
              lastUpdateTime: new Date(),
            },
          ],
        },
      };
      try {
        await api.replace(`${csrPath}/${sent.name}/approval`, body);
        sent.approved = true;
        return;
      } catch (error) {
        // Conflict, or the API server is away: read again and retry (or learn it went through).
        this.counters.approvalRetries++;
        sent.approvalError = describeError(error);
        await delay(Math.min(2_000, 100 * attempt));
        try {
          csr = await api.get<V1CertificateSigningRequest>(`${csrPath}/${sent.name}`);
        } catch (readError) {
          if (apiErrorCode(readError) === 404) return; // deleted by the ledger: it was decided already
          csr = created; // unreachable: try again with what we have, the answer will say
        }
        if (csr.status?.conditions?.some((c) => c.type === "Approved")) {
          sent.approved = true; // an earlier unanswered attempt went through
          return;
        }
      }
    }
  }
}

/**
 * reconcile(name) for one CertificateSigningRequest. The gates run in cert-manager's order:
 * not ours -> ignore; Denied or Failed -> ignore; not Approved -> wait; certificate set -> done.
 * Then proof of possession, policy and issuance. A permanent refusal becomes a Failed condition
 * (CamelCase reason, message naming the rule) and a Warning Event; transient trouble is returned
 * as "retry" so the worker backs off. Writes go through /status with the resourceVersion read.
 */
import { CertificateRequestError, parseCertificateRequest } from "../pki/certificate-request.js";
import { CertificateAuthorityError } from "../pki/certificate-authority.js";
import {
  issueLeafCertificate,
  systemIssuanceEnvironment,
  type IssuanceEnvironment,
} from "../pki/issuance.js";
import { evaluateSigningRequest } from "../policy/signing-policy.js";
import { apiErrorCode, describeError } from "../kube/client.js";
import type { EventRecorder, EventTarget } from "../kube/events.js";
import type { Logger } from "../logger.js";
import type { ControllerMetrics } from "./metrics.js";
import type { CsrApprover } from "./approver.js";
import type { ActiveSigner, SignerRegistry } from "./signer-registry.js";
import { kubernetesTime } from "../kube/time.js";
import type { CsrFailureReason, SignerConditionReason } from "../api/reasons.js";
import { appendConditionPatch, type JsonPatchOperation } from "./condition-patch.js";
import { requestTooLargeMessage, type OmittedCertificate, type OmittedRequest } from "./csr-cache.js";

export interface CsrCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string | Date;
  lastTransitionTime?: string | Date;
}

/** The parts of a CSR we read; objects from list and from watch differ in typing (Date vs string). */
export interface CsrObject {
  metadata?: { name?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string | Date };
  spec?: {
    signerName?: string;
    request?: string;
    /** Set by the cache (csr-cache.ts) when it does not hold spec.request. */
    requestOmitted?: OmittedRequest;
    usages?: string[];
    username?: string;
    groups?: string[];
    uid?: string;
    extra?: Record<string, string[]>;
    expirationSeconds?: number;
  };
  status?: {
    conditions?: CsrCondition[];
    certificate?: string;
    /** Set by the cache (csr-cache.ts) when it does not hold status.certificate. */
    certificateOmitted?: OmittedCertificate;
  };
}

/** What the worker does next with the key. */
export type ReconcileResult = { kind: "done" } | { kind: "retry"; reason: string };

/** API access the reconciler needs; the controller binds it to client-node, tests may too. */
export interface CsrApi {
  /** Reads the CSR from the API server (not the cache); undefined when it is gone. */
  read(name: string): Promise<CsrObject | undefined>;
  /** Merge-patches status with the resourceVersion as precondition. */
  patchStatus(
    name: string,
    resourceVersion: string,
    status: Record<string, unknown>,
  ): Promise<"ok" | "conflict" | "gone" | "invalid">;
  /** Applies a JSON patch to /status (appendConditionPatch: resourceVersion precondition included). */
  patchStatusJson(
    name: string,
    patch: readonly JsonPatchOperation[],
  ): Promise<"ok" | "conflict" | "gone" | "invalid">;
}

export function hasCondition(csr: CsrObject, type: string): boolean {
  return (
    csr.status?.conditions?.some((condition) => condition.type === type && condition.status === "True") ??
    false
  );
}

export class CsrReconciler {
  /** CSRs we already told "waiting for approval", so the Event is recorded once per process. */
  private readonly toldWaiting = new Set<string>();

  constructor(
    private readonly registry: SignerRegistry,
    private readonly cache: { get(name: string): CsrObject | undefined },
    private readonly api: CsrApi,
    private readonly events: EventRecorder,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly environment: IssuanceEnvironment = systemIssuanceEnvironment,
    private readonly approver?: CsrApprover,
  ) {}

  /** True when one of our signers or approvers handles the CSR's signer name (checked before anything else). */
  isOurs(csr: CsrObject): boolean {
    const signerName = csr.spec?.signerName;
    if (signerName === undefined) return false;
    return (
      this.registry.forSignerName(signerName) !== undefined || (this.approver?.handles(signerName) ?? false)
    );
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const csr = this.cache.get(name);
    if (!csr) {
      this.toldWaiting.delete(name);
      return { kind: "done" }; // deleted (istiod deletes its CSRs once it has the certificate)
    }
    const signerName = csr.spec?.signerName ?? "";
    const signer = this.registry.forSignerName(signerName);
    const approving = this.approver?.handles(signerName) ?? false;
    if (!signer && !approving) return { kind: "done" }; // not ours: never touch other signers' CSRs
    if (hasCondition(csr, "Denied") || hasCondition(csr, "Failed")) return { kind: "done" };
    if (!hasCondition(csr, "Approved") && approving) {
      // An over-cap request is refused from its marker: reading it back would undo the cap.
      const complete = requestTooLargeMessage(csr.spec) ? csr : await this.withRequest(csr);
      return complete ? this.approver!.reconcile(complete) : { kind: "done" };
    }
    if (!signer) return { kind: "done" }; // approved for a signer we do not run (kubelet: kube-controller-manager signs)
    if (!hasCondition(csr, "Approved")) {
      if (!this.toldWaiting.has(name)) {
        this.toldWaiting.add(name);
        this.events.record(
          eventTarget(csr),
          "Normal",
          "WaitingApproval",
          `waiting for approval before ${signerName} signs`,
        );
      }
      return { kind: "done" }; // the approval arrives as an update event
    }
    this.toldWaiting.delete(name);
    if (csr.status?.certificate || csr.status?.certificateOmitted) return { kind: "done" };
    if (signer.problem || !signer.authority || !signer.spec) {
      const problem = signer.problem ?? { reason: "NotReady", message: "no CA loaded yet" };
      this.events.record(
        eventTarget(csr),
        "Warning",
        "SignerNotReady",
        `Signer ${signer.objectName} cannot sign: ${problem.reason}: ${problem.message}`,
      );
      return { kind: "retry", reason: problem.reason };
    }
    return this.sign(csr, signer);
  }

  private async sign(csr: CsrObject, signer: ActiveSigner): Promise<ReconcileResult> {
    const name = csr.metadata!.name!;
    const spec = signer.spec!;
    const authority = signer.authority!;
    const tooLarge = requestTooLargeMessage(csr.spec);
    if (tooLarge) return this.fail(csr, signer, "RequestTooLarge", `${tooLarge} (rule request)`);
    const complete = await this.withRequest(csr);
    if (!complete) return { kind: "done" };
    let request;
    try {
      request = parseCertificateRequest(Buffer.from(complete.spec?.request ?? "", "base64"));
    } catch (error) {
      if (error instanceof CertificateRequestError)
        return this.fail(csr, signer, error.reason, `${error.message} (rule request)`);
      throw error;
    }
    const decision = evaluateSigningRequest(
      spec,
      {
        requester: { username: csr.spec?.username ?? "", groups: csr.spec?.groups ?? [] },
        request,
        usages: csr.spec?.usages ?? [],
        ...(csr.spec?.expirationSeconds !== undefined
          ? { expirationSeconds: csr.spec.expirationSeconds }
          : {}),
      },
      { tenantNamespaces: this.registry.tenantNamespaces(spec) },
    );
    if (!decision.allowed) return this.fail(csr, signer, decision.reason, decision.message);

    let issued;
    try {
      issued = await issueLeafCertificate(authority, request, decision.grant, this.environment);
    } catch (error) {
      if (!(error instanceof CertificateAuthorityError)) throw error;
      return this.troubled(csr, signer, `CertificateAuthority${error.reason}`, error.message);
    }
    let outcome;
    try {
      outcome = await this.api.patchStatus(name, csr.metadata?.resourceVersion ?? "", {
        certificate: Buffer.from(issued.chainPem).toString("base64"),
      });
    } catch (error) {
      // Nothing was published: the next attempt signs afresh. A 403 is almost always missing RBAC.
      const hint =
        apiErrorCode(error) === 403
          ? ` (the controller needs verb sign on certificates.k8s.io signers/${spec.signerName})`
          : "";
      return this.troubled(
        csr,
        signer,
        "CertificateWriteFailed",
        `could not write status.certificate: ${describeError(error)}${hint}`,
      );
    }
    if (outcome === "gone") return { kind: "done" };
    if (outcome === "conflict" || outcome === "invalid") return this.afterLostWrite(name);
    this.registry.signingSucceeded(signer.objectName);
    this.registry.countIssued(signer.objectName);
    this.metrics.issued.inc({ signer: spec.signerName });
    const created = csr.metadata?.creationTimestamp
      ? new Date(csr.metadata.creationTimestamp).getTime()
      : undefined;
    if (created)
      this.metrics.issuanceLatency.observe(
        { signer: spec.signerName },
        Math.max(0, Date.now() - created) / 1000,
      );
    const serial = Buffer.from(issued.serialNumber).toString("hex");
    this.logger.info("issued certificate", {
      csr: name,
      signer: spec.signerName,
      identity: decision.identity,
      rule: decision.rule,
      serial,
      notAfter: issued.notAfter.toISOString(),
    });
    this.events.record(
      eventTarget(csr),
      "Normal",
      "Issued",
      `issued ${decision.identity} (serial ${serial}, valid until ${issued.notAfter.toISOString()}) under ${decision.rule}`,
    );
    return { kind: "done" };
  }

  /**
   * The CSR with spec.request: the cached copy, or, when the cache did not keep the request (the
   * signer name was not ours when it arrived, or it is over the cap), one fresh read from the API
   * server that is used for this reconcile and dropped. Undefined when the CSR is gone.
   */
  private async withRequest(csr: CsrObject): Promise<CsrObject | undefined> {
    if (!csr.spec?.requestOmitted) return csr;
    const fresh = await this.api.read(csr.metadata?.name ?? "");
    if (!fresh) return undefined;
    const { requestOmitted: _, ...spec } = csr.spec;
    // Cached while foreign, spec.extra was not kept: our approver's SubjectAccessReview needs it.
    const extra = csr.spec.requestOmitted.reason === "NotOurs" ? fresh.spec?.extra : spec.extra;
    return {
      ...csr,
      spec: {
        ...spec,
        ...(fresh.spec?.request !== undefined ? { request: fresh.spec.request } : {}),
        ...(extra !== undefined ? { extra } : {}),
      },
    };
  }

  /**
   * Transient trouble that is not the request's fault: the CSR stays pending and is retried with
   * backoff; the Signer reports it on Ready (until a certificate is written) and the CSR gets an Event.
   */
  private troubled(
    csr: CsrObject,
    signer: ActiveSigner,
    reason: SignerConditionReason,
    message: string,
  ): ReconcileResult {
    const signerName = signer.spec?.signerName ?? "";
    this.registry.reportSigningTrouble(signer.objectName, { reason, message });
    this.logger.warn("could not sign, will retry", {
      csr: csr.metadata?.name,
      signer: signerName,
      reason,
      message,
    });
    this.events.record(eventTarget(csr), "Warning", reason, `${signerName} will retry: ${message}`);
    return { kind: "retry", reason };
  }

  /**
   * Our write lost a race (another writer, or our cache was stale). Never sign again a CSR
   * that has a certificate now; otherwise try again with a fresh read.
   */
  private async afterLostWrite(name: string): Promise<ReconcileResult> {
    const fresh = await this.api.read(name);
    if (!fresh || fresh.status?.certificate || hasCondition(fresh, "Failed") || hasCondition(fresh, "Denied"))
      return { kind: "done" };
    return { kind: "retry", reason: "Conflict" };
  }

  private async fail(
    csr: CsrObject,
    signer: ActiveSigner,
    reason: CsrFailureReason,
    message: string,
  ): Promise<ReconcileResult> {
    const name = csr.metadata!.name!;
    const now = kubernetesTime(this.environment.now());
    const outcome = await this.api.patchStatusJson(
      name,
      appendConditionPatch(csr, {
        type: "Failed",
        status: "True",
        reason,
        message: message.slice(0, 1024),
        lastUpdateTime: now,
        lastTransitionTime: now,
      }),
    );
    if (outcome === "gone") return { kind: "done" };
    if (outcome === "conflict" || outcome === "invalid") return this.afterLostWrite(name);
    const signerName = signer.spec?.signerName ?? "";
    this.registry.countFailed(signer.objectName);
    this.metrics.refused.inc({ signer: signerName, reason });
    this.logger.warn("refused certificate request", {
      csr: name,
      signer: signerName,
      requester: csr.spec?.username,
      reason,
      message,
    });
    this.events.record(eventTarget(csr), "Warning", reason, message);
    return { kind: "done" };
  }
}

export function eventTarget(csr: CsrObject): EventTarget {
  return {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    name: csr.metadata?.name ?? "",
    ...(csr.metadata?.uid ? { uid: csr.metadata.uid } : {}),
  };
}

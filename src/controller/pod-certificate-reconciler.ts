/**
 * reconcile(namespace/name) for one PodCertificateRequest, in the shape of the CSR signer: gates
 * (ours: a Signer with spec.podCertificates for the signer name; undecided; Signer ready), then the
 * key and its proof (src/pki/pod-certificate-key.ts), the policy (src/policy/pod-certificate-policy.ts)
 * and issuance through the Signer's CA and SigningKey. A refusal becomes a Denied or Failed
 * condition (CamelCase reason, message naming the rule) and a Warning Event; transient trouble
 * leaves the request pending and is retried with backoff.
 */
import { issueLeafCertificateWithin, type IssuanceEnvironment } from "../pki/issuance.js";
import {
  PodCertificateKeyError,
  readPodCertificateKey,
  type PodCertificateKey,
} from "../pki/pod-certificate-key.js";
import { decidePodCertificate, podCertificateTenancy } from "../policy/pod-certificate-policy.js";
import { apiErrorCode, describeError } from "../kube/client.js";
import type { EventRecorder } from "../kube/events.js";
import { kubernetesTime } from "../kube/time.js";
import type { Logger } from "../logger.js";
import type {
  PodCertificateDenialReason,
  PodCertificateFailureReason,
  SignerConditionReason,
} from "../api/reasons.js";
import type { ControllerMetrics } from "./metrics.js";
import type { PodCertificateApi, PodCertificateWriteOutcome } from "./pod-certificate-api.js";
import {
  isDecided,
  podCertificateEventTarget,
  userAnnotationKeys,
  type PodCertificateRequestObject,
} from "./pod-certificate-object.js";
import { lookAgainSoon, type ReconcileResult } from "./run-worker.js";
import type { ActiveSigner } from "./signer-builder.js";
import type { SignerRegistry } from "./signer-registry.js";
import { issuanceFailure, signerNotReadyMessage } from "./signing-failure.js";

export class PodCertificateReconciler {
  constructor(
    private readonly registry: SignerRegistry,
    private readonly cache: {
      get(name: string, namespace?: string): PodCertificateRequestObject | undefined;
    },
    private readonly api: PodCertificateApi,
    private readonly events: EventRecorder,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly environment: IssuanceEnvironment,
    /** Uniform in [0, 1): spreads beginRefreshAt (injected so tests can pin it). */
    private readonly random: () => number = Math.random,
  ) {}

  /** Our Signer for the signer name, when it opted in to pod certificates (checked before anything else). */
  signerFor(signerName: string): ActiveSigner | undefined {
    const signer = this.registry.forSignerName(signerName);
    return signer?.spec?.podCertificates ? signer : undefined;
  }

  isOurs(pcr: PodCertificateRequestObject): boolean {
    return this.signerFor(pcr.spec?.signerName ?? "") !== undefined;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = "", name = ""] = key.split("/", 2);
    const pcr = this.cache.get(name, namespace);
    if (!pcr || isDecided(pcr)) return { kind: "done" };
    const signer = this.signerFor(pcr.spec?.signerName ?? "");
    if (!signer) return { kind: "done" }; // not ours: never touched
    const spec = signer.spec!; // signerFor returns only Signers with spec.podCertificates
    // Tenancy first: a namespace that is not a tenant learns nothing about the Signer, not even its state.
    const tenancy = podCertificateTenancy(spec, namespace, this.registry.tenantNamespaces(spec));
    if (tenancy?.outcome === "refuse")
      return this.refuse(pcr, signer, tenancy.condition, tenancy.reason, tenancy.message);
    if (signer.problem || !signer.authority) {
      const problem = signer.problem ?? { reason: "NotReady", message: "no CA loaded yet" };
      this.events.record(
        podCertificateEventTarget(pcr),
        "Warning",
        "SignerNotReady",
        signerNotReadyMessage(signer, problem),
      );
      return { kind: "retry", reason: problem.reason };
    }
    // Cached while not ours, the key fields were dropped: read the request once more.
    const complete = pcr.spec?.keyOmitted ? await this.api.read(namespace, name) : pcr;
    if (!complete || isDecided(complete)) return { kind: "done" };
    return this.sign(complete, signer);
  }

  private async sign(pcr: PodCertificateRequestObject, signer: ActiveSigner): Promise<ReconcileResult> {
    const spec = signer.spec!;
    const authority = signer.authority!;
    const request = pcr.spec ?? {};
    let key: PodCertificateKey;
    try {
      key = readPodCertificateKey({
        podUID: request.podUID ?? "",
        ...(request.pkixPublicKey !== undefined ? { pkixPublicKey: request.pkixPublicKey } : {}),
        ...(request.proofOfPossession !== undefined ? { proofOfPossession: request.proofOfPossession } : {}),
        ...(request.stubPKCS10Request !== undefined ? { stubPKCS10Request: request.stubPKCS10Request } : {}),
      });
    } catch (error) {
      if (!(error instanceof PodCertificateKeyError)) throw error;
      return this.refuse(pcr, signer, "Denied", "MalformedRequest", `${error.message} (rule request)`);
    }
    const decision = decidePodCertificate(
      spec,
      {
        namespace: pcr.metadata?.namespace ?? "",
        podName: request.podName ?? "",
        serviceAccountName: request.serviceAccountName ?? "",
        maxExpirationSeconds: request.maxExpirationSeconds ?? 86_400,
        userAnnotationKeys: userAnnotationKeys(request),
        key,
      },
      {
        tenantNamespaces: this.registry.tenantNamespaces(spec),
        now: this.environment.now(),
        chain: { notBefore: authority.signingCertificate.notBefore, notAfter: authority.notAfter },
        refreshFraction: this.random(),
      },
    );
    if (decision.outcome === "refuse")
      return this.refuse(pcr, signer, decision.condition, decision.reason, decision.message);
    if (decision.outcome === "wait") return this.troubled(pcr, signer, decision.reason, decision.message);

    let issued;
    try {
      issued = await issueLeafCertificateWithin(
        authority,
        key,
        decision.grant,
        decision.window,
        this.environment,
      );
    } catch (error) {
      // Pending; a token failure leaves the Signer not ready until the token opens again.
      const problem = issuanceFailure(this.registry, signer, error);
      return this.troubled(pcr, signer, problem.reason, problem.message);
    }
    const serial = Buffer.from(issued.serialNumber).toString("hex");
    const { notBefore, notAfter, beginRefreshAt } = decision.window;
    const message = `issued ${decision.identity} (serial ${serial}, valid until ${kubernetesTime(notAfter)}) under ${decision.rule}`;
    const signature = {
      podCertificateRequest: `${pcr.metadata?.namespace}/${pcr.metadata?.name}`,
      uid: pcr.metadata?.uid,
      signer: spec.signerName,
      serial,
      resourceVersion: pcr.metadata?.resourceVersion ?? "",
      writeStartedAt: this.environment.now().toISOString(),
    };
    // As for CSRs: the intent goes out before the write can, so a replica killed with the write in
    // flight still leaves the serial (written out now: stderr is written synchronously).
    this.logger.info("writing pod certificate", signature);
    this.logger.flush();
    let written: PodCertificateWriteOutcome;
    try {
      written = await this.patchStatus(pcr, {
        conditions: [this.condition("Issued", "Issued", message)],
        certificateChain: issued.chainPem,
        notBefore: kubernetesTime(notBefore),
        notAfter: kubernetesTime(notAfter),
        beginRefreshAt: kubernetesTime(beginRefreshAt),
      });
    } catch (error) {
      this.logger.info("signed pod certificate", { ...signature, written: "error" });
      return this.writeFailed(pcr, signer, error);
    }
    // One line after every write, whatever became of it; a written one names identity and window.
    this.logger.info(
      "signed pod certificate",
      written === "ok"
        ? {
            ...signature,
            written,
            identity: decision.identity,
            rule: decision.rule,
            notAfter: kubernetesTime(notAfter),
            beginRefreshAt: kubernetesTime(beginRefreshAt),
          }
        : { ...signature, written },
    );
    let outcome;
    try {
      outcome = await this.afterWrite(pcr, written);
    } catch (error) {
      return this.writeFailed(pcr, signer, error);
    }
    if (outcome !== "ok") return outcome;
    this.registry.troubles.signingSucceeded(signer.objectName);
    this.registry.countIssued(signer.objectName);
    this.metrics.podCertificatesIssued.inc({ signer: spec.signerName });
    this.events.record(podCertificateEventTarget(pcr), "Normal", "Issued", message);
    return { kind: "done" };
  }

  private condition(type: string, reason: string, message: string): Record<string, unknown> {
    return {
      type,
      status: "True",
      reason,
      message: message.slice(0, 32_768),
      lastTransitionTime: kubernetesTime(this.environment.now()),
    };
  }

  /** One status write; a lost race ends here when the request was decided meanwhile, else retries. */
  private async writeStatus(
    pcr: PodCertificateRequestObject,
    status: Record<string, unknown>,
  ): Promise<"ok" | ReconcileResult> {
    return this.afterWrite(pcr, await this.patchStatus(pcr, status));
  }

  private patchStatus(
    pcr: PodCertificateRequestObject,
    status: Record<string, unknown>,
  ): Promise<PodCertificateWriteOutcome> {
    const { namespace = "", name = "", resourceVersion = "" } = pcr.metadata ?? {};
    return this.api.patchStatus(namespace, name, resourceVersion, status);
  }

  /** What a write's outcome leaves to do: a lost race is done when the request was decided meanwhile. */
  private async afterWrite(
    pcr: PodCertificateRequestObject,
    outcome: PodCertificateWriteOutcome,
  ): Promise<"ok" | ReconcileResult> {
    if (outcome === "ok") return "ok";
    if (outcome === "gone") return { kind: "done" };
    // Not leading at write time: a late renewal may land with no takeover to requeue it; look again.
    if (outcome === "not sent") return lookAgainSoon;
    const fresh = await this.api.read(pcr.metadata?.namespace ?? "", pcr.metadata?.name ?? "");
    return !fresh || isDecided(fresh) ? { kind: "done" } : { kind: "retry", reason: "Conflict" };
  }

  private async refuse(
    pcr: PodCertificateRequestObject,
    signer: ActiveSigner,
    condition: "Denied" | "Failed",
    reason: PodCertificateDenialReason | PodCertificateFailureReason,
    message: string,
  ): Promise<ReconcileResult> {
    let outcome;
    try {
      outcome = await this.writeStatus(pcr, { conditions: [this.condition(condition, reason, message)] });
    } catch (error) {
      return this.writeFailed(pcr, signer, error);
    }
    if (outcome !== "ok") return outcome;
    const signerName = signer.spec?.signerName ?? "";
    this.registry.countFailed(signer.objectName);
    this.metrics.podCertificatesRefused.inc({ signer: signerName, condition, reason });
    this.logger.warn("refused pod certificate request", {
      podCertificateRequest: `${pcr.metadata?.namespace}/${pcr.metadata?.name}`,
      signer: signerName,
      condition,
      reason,
      message,
    });
    this.events.record(podCertificateEventTarget(pcr), "Warning", reason, message);
    return { kind: "done" };
  }

  private writeFailed(
    pcr: PodCertificateRequestObject,
    signer: ActiveSigner,
    error: unknown,
  ): ReconcileResult {
    // Nothing was published: the next attempt starts afresh. A 403 is almost always missing RBAC.
    const hint =
      apiErrorCode(error) === 403
        ? ` (the controller needs update on podcertificaterequests/status and verb sign on certificates.k8s.io signers/${signer.spec?.signerName ?? ""})`
        : "";
    return this.troubled(
      pcr,
      signer,
      "CertificateWriteFailed",
      `could not write the PodCertificateRequest status: ${describeError(error)}${hint}`,
    );
  }

  /** Transient trouble that is not the request's fault: pending, retried; the Signer reports it on Ready. */
  private troubled(
    pcr: PodCertificateRequestObject,
    signer: ActiveSigner,
    reason: SignerConditionReason,
    message: string,
  ): ReconcileResult {
    const signerName = signer.spec?.signerName ?? "";
    this.registry.troubles.reportSigningTrouble(signer.objectName, { reason, message });
    this.logger.warn("could not sign pod certificate, will retry", {
      podCertificateRequest: `${pcr.metadata?.namespace}/${pcr.metadata?.name}`,
      signer: signerName,
      reason,
      message,
    });
    // The Event goes to the tenant's namespace: the reason only (the message can name the token,
    // its module or the CA's Secret); the Signer's Ready condition and the log carry the message.
    this.events.record(
      podCertificateEventTarget(pcr),
      "Warning",
      reason,
      `${signerName} will retry (the Signer ${signer.objectName}'s Ready condition says why)`,
    );
    return { kind: "retry", reason };
  }
}

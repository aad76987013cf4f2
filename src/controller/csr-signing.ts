/**
 * The signer handler: issues approved CSRs of our Signers. Proof of possession and policy first;
 * a permanent refusal becomes a Failed condition (CamelCase reason, message naming the rule) and a
 * Warning Event; transient trouble is returned as "retry" so the worker backs off. Writes go
 * through /status with the resourceVersion read. A CSR still unapproved after a grace period gets
 * one WaitingApproval Event.
 */
import { CertificateRequestError, parseCertificateRequest } from "../pki/certificate-request.js";
import { issueLeafCertificate, type IssuanceEnvironment } from "../pki/issuance.js";
import { apiErrorCode, describeError } from "../kube/client.js";
import type { EventRecorder } from "../kube/events.js";
import { missingCsrStatusGrant, missingSignerGrant } from "../kube/signer-grants.js";
import type { Logger } from "../logger.js";
import type { CsrFailureReason, SignerConditionReason } from "../api/reasons.js";
import { appendConditionPatch } from "./condition-patch.js";
import type { CsrApi } from "./csr-api.js";
import { requestTooLargeMessage } from "./csr-cache.js";
import { CsrFirstSeen } from "./csr-first-seen.js";
import { eventTarget, hasCondition, ownCondition, statusReplaceable, type CsrObject } from "./csr-object.js";
import type { ControllerMetrics } from "./metrics.js";
import { decideByPolicy } from "./policy-decision.js";
import { lookAgainSoon, type ReconcileResult } from "./run-worker.js";
import type { ActiveSigner } from "./signer-builder.js";
import type { WrittenCertificates } from "./written-certificates.js";
import type { SignerRegistry } from "./signer-registry.js";
import { issuanceFailure, signerNotReadyMessage } from "./signing-failure.js";

/**
 * How long a CSR of ours may stay unapproved before it gets a WaitingApproval Event. istiod
 * approves its CSRs within milliseconds, so the common path writes no such Event; a CSR waiting
 * for a person (kubectl certificate approve) or for an approver that is down still gets it while
 * someone is likely to be looking. Ten seconds is far above an automatic approver's latency and far
 * below a person's.
 */
export const defaultWaitingApprovalGraceMs = 10_000;

/**
 * What the signing log says of each signature, before the write ("writing certificate") and after it
 * ("signed certificate", with `written`): names, the serial, the resourceVersion precondition and
 * when the write began (before the client rate limiter). Never key material or the certificate.
 */
interface SignatureFields {
  csr: string;
  uid: string | undefined;
  signer: string;
  serial: string;
  resourceVersion: string;
  writeStartedAt: string;
}

export class CsrSigning {
  /**
   * Per unapproved CSR name: the object's uid and when it was first seen waiting, or "told" once its
   * Event is recorded. A different uid under the name is a CSR deleted and created again: it starts
   * afresh, the old entry dropped, even should the deletion go unseen (the informer reports it after
   * a relist; the uid guards against any path that does not).
   */
  private readonly waiting = new Map<string, { uid: string | undefined; since: number | "told" }>();

  constructor(
    private readonly registry: SignerRegistry,
    private readonly api: CsrApi,
    private readonly events: EventRecorder,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly environment: IssuanceEnvironment,
    private readonly waitingApprovalGraceMs = defaultWaitingApprovalGraceMs,
    private readonly firstSeen = new CsrFirstSeen(),
    private readonly writtenCertificates?: WrittenCertificates,
  ) {}

  /** Our Signer for `signerName`: none, or whether it can sign now. */
  readiness(signerName: string): "none" | "ready" | "not ready" {
    const signer = this.registry.forSignerName(signerName);
    if (!signer) return "none";
    return signer.problem || !signer.authority || !signer.spec ? "not ready" : "ready";
  }

  /** The CSR is gone or decided: drop what was kept about it. */
  forget(name: string): void {
    this.waiting.delete(name);
  }

  /**
   * Milliseconds left of an unapproved CSR's grace period (0 once it is over or its Event recorded),
   * its first sighting recorded now if this is it: the cache handler queues such a CSR for the end
   * of its grace period rather than at once, since nothing happens to it before then (an approval
   * arrives as an update event, which queues it at once).
   */
  approvalGraceLeftMs(csr: CsrObject): number {
    const { name = "", uid } = csr.metadata ?? {};
    const now = this.environment.now().getTime();
    const since = this.waitingSince(csr) ?? now;
    if (since === "told") return 0;
    this.waiting.set(name, { uid, since });
    return Math.max(0, since + this.waitingApprovalGraceMs - now);
  }

  /** One WaitingApproval Event per CSR and process, once it has waited out the grace period. */
  waitForApproval(csr: CsrObject): ReconcileResult {
    const { name = "", uid } = csr.metadata ?? {};
    if (this.waitingSince(csr) === "told") return { kind: "done" };
    const left = this.approvalGraceLeftMs(csr);
    if (left > 0) return { kind: "after", milliseconds: left }; // an approval meanwhile queues it at once
    this.waiting.set(name, { uid, since: "told" });
    this.events.record(
      eventTarget(csr),
      "Normal",
      "WaitingApproval",
      `waiting for approval before ${csr.spec?.signerName ?? ""} signs`,
    );
    return { kind: "done" }; // the approval arrives as an update event
  }

  /** What is kept about this very object (its uid) waiting for approval; undefined for another object under its name. */
  private waitingSince(csr: CsrObject): number | "told" | undefined {
    const entry = this.waiting.get(csr.metadata?.name ?? "");
    return entry?.uid === csr.metadata?.uid ? entry?.since : undefined;
  }

  /** An approved CSR whose Signer cannot sign: a Warning Event, and retry with backoff. */
  waitForSigner(csr: CsrObject): ReconcileResult {
    this.forget(csr.metadata?.name ?? "");
    const signer = this.registry.forSignerName(csr.spec?.signerName ?? "")!;
    const problem = signer.problem ?? { reason: "NotReady", message: "no CA loaded yet" };
    this.events.record(eventTarget(csr), "Warning", "SignerNotReady", signerNotReadyMessage(signer, problem));
    return { kind: "retry", reason: problem.reason };
  }

  /** Signs an approved CSR; `complete` is `csr` with spec.request (read back when the cache cut it). */
  async sign(csr: CsrObject, complete: CsrObject): Promise<ReconcileResult> {
    const name = csr.metadata!.name!;
    this.forget(name);
    const signer = this.registry.forSignerName(csr.spec?.signerName ?? "")!;
    const spec = signer.spec!;
    const tooLarge = requestTooLargeMessage(csr.spec);
    if (tooLarge) return this.fail(csr, signer, "RequestTooLarge", `${tooLarge} (rule request)`);
    let request;
    try {
      request = parseCertificateRequest(Buffer.from(complete.spec?.request ?? "", "base64"));
    } catch (error) {
      if (error instanceof CertificateRequestError)
        return this.fail(csr, signer, error.reason, `${error.message} (rule request)`);
      throw error;
    }
    const decision = decideByPolicy(spec, csr, request, this.registry.tenantNamespaces(spec));
    if (!decision.allowed) return this.fail(csr, signer, decision.reason, decision.message);

    let issued;
    try {
      issued = await issueLeafCertificate(signer.authority!, request, decision.grant, this.environment);
    } catch (error) {
      // The CSR stays pending; a token failure leaves the Signer not ready until the token opens again.
      const problem = issuanceFailure(this.registry, signer, error);
      return this.troubled(csr, signer, problem.reason, problem.message);
    }
    let outcome;
    const signature: SignatureFields = {
      csr: name,
      uid: csr.metadata?.uid,
      signer: spec.signerName,
      serial: Buffer.from(issued.serialNumber).toString("hex"),
      resourceVersion: csr.metadata?.resourceVersion ?? "",
      writeStartedAt: this.environment.now().toISOString(),
    };
    const { serial, resourceVersion: precondition } = signature;
    // The intent goes out before the write can: a replica killed while the write is in flight still
    // leaves the serial in its log (flushed now: stderr to a file or pipe is written synchronously).
    this.logger.info("writing certificate", { ...signature });
    this.logger.flush();
    const firstSeenAt = this.firstSeen.seenAt(csr); // before the write: see CsrFirstSeen.seenAt
    try {
      // latin1: the chain is PEM we encoded (ASCII), and a latin1 copy skips UTF-8's per-character work.
      const status = { certificate: Buffer.from(issued.chainPem, "latin1").toString("base64") };
      this.writtenCertificates?.writing(name, status.certificate, issued.notAfter.getTime());
      // A PUT as kube-controller-manager's signer writes when the cached copy holds all a PUT sends
      // back; otherwise the merge patch, which leaves what the cache dropped as it is.
      outcome = statusReplaceable(csr)
        ? await this.api.replaceStatus(csr, status)
        : await this.api.patchStatus(name, precondition, status);
    } catch (error) {
      this.writtenCertificates?.forget(name);
      this.logSignature(signature, "error");
      // Not known to be published: the next attempt signs afresh, and its resourceVersion precondition
      // fails if this write went through after all (a timeout). A 403 is almost always missing RBAC:
      // on the status subresource itself (the authorizer names it) or the signer name's sign verb.
      const refused = describeError(error);
      const hint =
        apiErrorCode(error) !== 403
          ? ""
          : refused.includes("certificatesigningrequests/status")
            ? ` (${missingCsrStatusGrant()})`
            : ` (${missingSignerGrant("sign", spec.signerName)})`;
      return this.troubled(
        csr,
        signer,
        "CertificateWriteFailed",
        `could not write status.certificate: ${refused}${hint}`,
      );
    }
    // A certificate the API server took: the same line says what it certifies, under which rule.
    this.logSignature(
      signature,
      outcome,
      outcome === "ok"
        ? { identity: decision.identity, rule: decision.rule, notAfter: issued.notAfter.toISOString() }
        : undefined,
    );
    // Only a write the API server took has an echo to carry the certificate.
    if (outcome !== "ok") this.writtenCertificates?.forget(name);
    // Gone: nothing left to do.
    if (outcome === "gone") return { kind: "done" };
    // Not leading at write time: a late renewal may land with no takeover to requeue it; look again.
    if (outcome === "not sent") return lookAgainSoon;
    if (outcome === "conflict" || outcome === "invalid") return this.afterLostWrite(name);
    this.registry.troubles.signingSucceeded(signer.objectName);
    this.registry.countIssued(signer.objectName);
    this.metrics.issued.inc({ signer: spec.signerName });
    this.observeLatency(csr, spec.signerName, firstSeenAt);
    this.events.record(
      eventTarget(csr),
      "Normal",
      "Issued",
      `issued ${decision.identity} (serial ${serial}, valid until ${issued.notAfter.toISOString()}) under ${decision.rule}`,
    );
    return { kind: "done" };
  }

  /**
   * One line per signature, whatever became of it: with the "writing certificate" line logged before
   * the write, the audit trail that shows a CSR never got two certificates (only a write the API
   * server took, `written: "ok"`, published one; the resourceVersion precondition refuses a write
   * from a stale copy). Serial and names only; a written one also names the identity, the rule
   * that allowed it and the NotAfter. This line may be held up to 100 ms, to go out with the next intent
   * (the controller's logger holds info lines): the intent line already names the serial.
   */
  private logSignature(
    signature: SignatureFields,
    written: "ok" | "conflict" | "gone" | "invalid" | "not sent" | "error",
    issued?: { identity: string; rule: string; notAfter: string },
  ): void {
    this.logger.info("signed certificate", { ...signature, written, ...issued });
  }

  /** Both latency series of an issued CSR; a CSR never seen undecided (signed on a re-read) adds to neither. */
  private observeLatency(csr: CsrObject, signerName: string, firstSeenAt: number | undefined): void {
    this.firstSeen.forget(csr);
    if (firstSeenAt === undefined) return;
    const seconds = this.firstSeen.secondsFrom(firstSeenAt);
    this.metrics.issuanceLatency.observe({ signer: signerName }, seconds);
    const created = csr.metadata?.creationTimestamp;
    if (created)
      this.metrics.issuanceSinceCreation.observe(
        { signer: signerName },
        Math.max(0, this.environment.now().getTime() - new Date(created).getTime()) / 1000,
      );
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
    this.registry.troubles.reportSigningTrouble(signer.objectName, { reason, message });
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
    const outcome = await this.api.patchStatusJson(
      name,
      appendConditionPatch(csr, ownCondition("Failed", reason, message, this.environment.now())),
    );
    if (outcome === "gone") return { kind: "done" };
    // Not leading at write time: a late renewal may land with no takeover to requeue it; look again.
    if (outcome === "not sent") return lookAgainSoon;
    if (outcome === "conflict" || outcome === "invalid") return this.afterLostWrite(name);
    const signerName = signer.spec?.signerName ?? "";
    this.firstSeen.forget(csr);
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

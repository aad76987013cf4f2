/**
 * reconcile(name) for one CertificateSigningRequest: the gates (csr-gates.ts) say which of the two
 * peer handlers, the approver (approver.ts) or the signer (csr-signing.ts), the CSR goes to, as
 * kube-controller-manager's certificates controllers each take the CSRs that are their business.
 * Both read the request the same way: from the cache, or read back once when the cache cut it.
 */
import { systemIssuanceEnvironment, type IssuanceEnvironment } from "../pki/issuance.js";
import type { EventRecorder } from "../kube/events.js";
import type { Logger } from "../logger.js";
import type { CsrApprover } from "./approver.js";
import type { CsrApi } from "./csr-api.js";
import { requestTooLargeMessage } from "./csr-cache.js";
import { nextCsrStep } from "./csr-gates.js";
import type { WrittenCertificates } from "./written-certificates.js";
import type { CsrFirstSeen } from "./csr-first-seen.js";
import type { CsrObject } from "./csr-object.js";
import { CsrSigning, defaultWaitingApprovalGraceMs } from "./csr-signing.js";
import type { ControllerMetrics } from "./metrics.js";
import type { ReconcileResult } from "./run-worker.js";
import type { SignerRegistry } from "./signer-registry.js";

export class CsrReconciler {
  private readonly signing: CsrSigning;

  constructor(
    private readonly registry: SignerRegistry,
    private readonly cache: { get(name: string): CsrObject | undefined },
    private readonly api: CsrApi,
    events: EventRecorder,
    metrics: ControllerMetrics,
    logger: Logger,
    environment: IssuanceEnvironment = systemIssuanceEnvironment,
    private readonly approver?: CsrApprover,
    waitingApprovalGraceMs = defaultWaitingApprovalGraceMs,
    firstSeen?: CsrFirstSeen,
    writtenCertificates?: WrittenCertificates,
  ) {
    this.signing = new CsrSigning(
      registry,
      api,
      events,
      metrics,
      logger,
      environment,
      waitingApprovalGraceMs,
      firstSeen,
      writtenCertificates,
    );
  }

  /** True when one of our signers or approvers handles the CSR's signer name (checked before anything else). */
  isOurs(csr: CsrObject): boolean {
    const signerName = csr.spec?.signerName;
    return signerName !== undefined && this.isOurSignerName(signerName);
  }

  /** Whether one of our signers or our approver handles this signer name (the cache's transform asks). */
  isOurSignerName(signerName: string): boolean {
    return (
      this.registry.forSignerName(signerName) !== undefined || (this.approver?.handles(signerName) ?? false)
    );
  }

  /**
   * When a cache event of `csr` should reach the work queue: undefined for never (not ours, settled,
   * or any other CSR the gates skip now, such as a kubelet CSR we approved for another signer), 0 for now, otherwise after that many milliseconds: a CSR waiting
   * for someone else's approval has nothing done to it before its grace period ends, and istiod
   * approves within milliseconds, so most such CSRs are signed before that reconcile would come.
   * Not pure: a CSR waiting for approval has its grace period started here
   * (CsrSigning.approvalGraceLeftMs); the worker that takes it for signing drops that delayed add
   * (runWorker's takingDropsDelayed), so an istiod CSR costs one reconcile.
   */
  queueDelayMs(csr: CsrObject): number | undefined {
    // The gates say it all: not ours, settled, or approved for another signer is a skip.
    const signerName = csr.spec?.signerName ?? "";
    const next = nextCsrStep(csr, {
      signer: this.signing.readiness(signerName),
      approving: this.approver?.handles(signerName) ?? false,
    });
    if (next.step === "skip") return undefined;
    return next.step === "wait for approval" ? this.signing.approvalGraceLeftMs(csr) : 0;
  }

  /**
   * The CSR is deleted: what is kept about it goes now, on every replica (a follower queues nothing,
   * so no reconcile of the deletion would clear it).
   */
  forget(name: string): void {
    this.signing.forget(name);
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const csr = this.cache.get(name);
    const signerName = csr?.spec?.signerName ?? "";
    const next = nextCsrStep(csr, {
      signer: this.signing.readiness(signerName),
      approving: this.approver?.handles(signerName) ?? false,
    });
    if (next.step !== "wait for approval") this.signing.forget(name);
    switch (next.step) {
      case "skip":
        return { kind: "done" };
      case "wait for approval":
        return this.signing.waitForApproval(csr!);
      case "wait for signer":
        return this.signing.waitForSigner(csr!);
      case "decide approval": {
        const complete = await this.withRequest(csr!);
        return complete ? this.approver!.reconcile(complete) : { kind: "done" };
      }
      case "sign": {
        const complete = await this.withRequest(csr!);
        return complete ? this.signing.sign(csr!, complete) : { kind: "done" };
      }
    }
  }

  /**
   * The CSR with spec.request: the cached copy, or, when the cache did not keep the request (the
   * signer name was not ours when it arrived; a settled CSR's, dropped too, never gets here: the
   * gates skip it), one fresh read from the API server that is used for this reconcile and dropped. An over-cap request is handed on as cached: it is refused from its
   * marker, since reading it back would undo the cap. Undefined when the CSR is gone.
   */
  private async withRequest(csr: CsrObject): Promise<CsrObject | undefined> {
    if (!csr.spec?.requestOmitted || requestTooLargeMessage(csr.spec)) return csr;
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
}

/**
 * The approver handler, peer of the signer handler (csr-signing.ts) over the one CSR queue.
 * Approval automation: kubelet serving and client certificates, and tenant Signers whose
 * spec.approval.mode is Automatic. A decision is written through /approval (Approved with
 * reason AutoApproved, or Denied with the failed check's CamelCase reason). A tenant CSR is
 * approved only after the exact policy the signer applies has passed (decideByPolicy), so nothing
 * is approved that the signer would then refuse.
 */
import { appendConditionPatch } from "./condition-patch.js";
import { CertificateRequestError, parseCertificateRequest } from "../pki/certificate-request.js";
import { defaultKeyAllowList, keyRejection } from "../pki/key-allow-list.js";
import {
  decideKubeletServing,
  deny,
  nodeNameOf,
  kubeletClientShape,
  kubeletClientSignerName,
  kubeletServingSignerName,
  type ApprovalDecision,
  type NodeAddressSets,
} from "../policy/kubelet-approval.js";
import type { KubeletServingSettings } from "../policy/kubelet-serving-settings.js";
import { parseServiceAccountUsername } from "../policy/signing-policy.js";
import type { EventRecorder } from "../kube/events.js";
import { apiErrorCode, describeError } from "../kube/client.js";
import { missingSignerGrant, signerDomainWildcard } from "../kube/signer-grants.js";
import type { Logger } from "../logger.js";
import type { ApprovalDenialReason } from "../api/reasons.js";
import type { ApprovalApi, SubjectAccessQuestion } from "./csr-api.js";
import { requestTooLargeMessage } from "./csr-cache.js";
import { eventTarget, ownCondition, type CsrObject } from "./csr-object.js";
import type { ControllerMetrics } from "./metrics.js";
import { decideByPolicy } from "./policy-decision.js";
import type { ReconcileResult } from "./run-worker.js";
import type { SignerRegistry } from "./signer-registry.js";

export interface ApprovalSettings {
  kubeletServing?: KubeletServingSettings & { onRefusal: "Deny" | "LeavePending" };
  kubeletClient?: boolean;
}

/** The Node cache as the kubelet-serving approver reads it. */
export interface NodeDirectory {
  get(name: string): NodeAddressSets | undefined;
  /** Names of the Nodes with this name or address (a nodeAddressKey). */
  nodesWithAddress(key: string): readonly string[];
}

export class CsrApprover {
  constructor(
    private readonly settings: ApprovalSettings,
    private readonly registry: SignerRegistry,
    private readonly nodes: NodeDirectory,
    private readonly api: ApprovalApi,
    private readonly events: EventRecorder,
    private readonly metrics: ControllerMetrics,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** True when this approver decides CSRs of `signerName`. */
  handles(signerName: string): boolean {
    if (signerName === kubeletServingSignerName) return this.settings.kubeletServing !== undefined;
    if (signerName === kubeletClientSignerName) return this.settings.kubeletClient === true;
    return this.registry.forSignerName(signerName)?.spec?.approval.mode === "Automatic";
  }

  /** Decides a CSR that has neither Approved nor Denied. */
  async reconcile(csr: CsrObject): Promise<ReconcileResult> {
    const signerName = csr.spec?.signerName ?? "";
    const decision = await this.decide(csr, signerName);
    if (decision.verdict === "ignore") {
      this.logger.debug("not approving", {
        csr: csr.metadata?.name,
        signer: signerName,
        why: decision.message,
      });
      return { kind: "done" };
    }
    if (decision.verdict === "pending") {
      // Undecidable until the operator acts: a condition now would be wrong either way.
      this.metrics.approvals.inc({ signer: signerName, decision: "left-pending", reason: decision.reason });
      this.events.record(eventTarget(csr), "Warning", decision.reason, decision.message);
      return { kind: "done" };
    }
    const leavePending =
      decision.verdict === "deny" &&
      (signerName === kubeletServingSignerName
        ? this.settings.kubeletServing?.onRefusal === "LeavePending"
        : this.registry.forSignerName(signerName)?.spec?.approval.onRefusal === "LeavePending");
    const reason = decision.verdict === "approve" ? "AutoApproved" : decision.reason;
    if (leavePending) {
      this.metrics.approvals.inc({ signer: signerName, decision: "left-pending", reason });
      this.events.record(
        eventTarget(csr),
        "Warning",
        reason,
        `not approved, left pending: ${decision.message}`,
      );
      return { kind: "done" };
    }
    const condition = ownCondition(
      decision.verdict === "approve" ? "Approved" : "Denied",
      reason,
      decision.message,
      this.now(),
    );
    let outcome;
    try {
      outcome = await this.api.addApprovalCondition(
        csr.metadata!.name!,
        appendConditionPatch(csr, condition),
      );
    } catch (error) {
      if (apiErrorCode(error) !== 403) throw error;
      return this.approvalRefused(csr, signerName, condition.type, error);
    }
    const owner = this.registry.forSignerName(signerName);
    if (owner) this.registry.troubles.approvalSucceeded(owner.objectName);
    if (outcome === "gone") return { kind: "done" };
    if (outcome !== "ok") return { kind: "retry", reason: "Conflict" }; // re-read through the cache; the gates run again
    this.metrics.approvals.inc({
      signer: signerName,
      decision: condition.type === "Approved" ? "approved" : "denied",
      reason,
    });
    this.logger.info(
      condition.type === "Approved" ? "approved certificate request" : "denied certificate request",
      {
        csr: csr.metadata?.name,
        signer: signerName,
        requester: csr.spec?.username,
        reason,
        message: decision.message,
      },
    );
    this.events.record(
      eventTarget(csr),
      condition.type === "Approved" ? "Normal" : "Warning",
      reason,
      decision.message,
    );
    return { kind: "done" };
  }

  /**
   * The API server refused our Approved/Denied condition: with 403, the approve verb is missing. The
   * CSR stays pending and is retried with backoff; the CSR gets an Event and the Signer is Degraded,
   * both naming the rule to add.
   */
  private approvalRefused(
    csr: CsrObject,
    signerName: string,
    decision: string,
    error: unknown,
  ): ReconcileResult {
    const message = `could not write the ${decision} condition: ${describeError(error)} (${missingSignerGrant("approve", signerName)})`;
    const owner = this.registry.forSignerName(signerName);
    if (owner)
      this.registry.troubles.reportApprovalTrouble(owner.objectName, {
        reason: "ApprovalWriteFailed",
        message,
      });
    this.logger.warn("could not approve, will retry", {
      csr: csr.metadata?.name,
      signer: signerName,
      message,
    });
    this.events.record(
      eventTarget(csr),
      "Warning",
      "ApprovalWriteFailed",
      `${signerName} will retry: ${message}`,
    );
    return { kind: "retry", reason: "ApprovalWriteFailed" };
  }

  private async decide(csr: CsrObject, signerName: string): Promise<ApprovalDecision> {
    const spec = csr.spec ?? {};
    const requester = { username: spec.username ?? "", groups: spec.groups ?? [] };
    // kube-controller-manager's kubelet-client approver never denies; neither does ours.
    const refuse = (reason: ApprovalDenialReason, rule: string, message: string): ApprovalDecision => {
      const denial = deny(reason, rule, message);
      return signerName === kubeletClientSignerName ? { verdict: "ignore", message: denial.message } : denial;
    };
    const tooLarge = requestTooLargeMessage(spec);
    if (tooLarge) return refuse("RequestTooLarge", "request", tooLarge);
    let request;
    try {
      request = parseCertificateRequest(Buffer.from(spec.request ?? "", "base64"));
    } catch (error) {
      if (!(error instanceof CertificateRequestError)) throw error;
      return refuse(error.reason, "request", error.message);
    }
    if (signerName === kubeletServingSignerName) {
      const nodeName = nodeNameOf(requester);
      return decideKubeletServing(
        requester,
        request,
        spec.usages ?? [],
        spec.expirationSeconds,
        {
          node: nodeName ? this.nodes.get(nodeName) : undefined,
          nodesWithAddress: (key) => this.nodes.nodesWithAddress(key),
        },
        this.settings.kubeletServing!,
      );
    }
    if (signerName === kubeletClientSignerName) {
      const keyProblem = keyRejection(request.publicKeyDescription, defaultKeyAllowList);
      if (keyProblem) return refuse("KeyNotAllowed", "key", keyProblem);
      const shape = kubeletClientShape(requester, request, spec.usages ?? []);
      if ("ignore" in shape) return { verdict: "ignore", message: shape.ignore };
      for (const subresource of shape.subresources) {
        const allowed = await this.api.subjectAccessReview({
          ...this.identity(csr),
          group: "certificates.k8s.io",
          resource: "certificatesigningrequests",
          subresource,
          verb: "create",
        });
        if (allowed)
          return {
            verdict: "approve",
            rule: subresource,
            message: `kubelet client certificate: ${requester.username} may create certificatesigningrequests/${subresource}`,
          };
      }
      return {
        verdict: "ignore",
        message: `SubjectAccessReview not allowed for certificatesigningrequests/${shape.subresources.join(" or ")}`,
      };
    }
    const signer = this.registry.forSignerName(signerName);
    if (!signer?.spec) return { verdict: "ignore", message: "signer not configured" };
    const decision = decideByPolicy(signer.spec, csr, request, this.registry.tenantNamespaces(signer.spec));
    if (!decision.allowed)
      return { verdict: "deny", reason: decision.reason, rule: decision.rule, message: decision.message };
    const verb = signer.spec.approval.requireRbacVerb;
    if (verb) {
      const serviceAccountNamespace = parseServiceAccountUsername(requester.username)?.namespace;
      // As the API server authorizes sign/approve/attest (IsAuthorizedForSignerName): the exact
      // signer name, else "<domain>/*", so one Role rule can cover a tenant's whole domain.
      const domainWildcard = signerDomainWildcard(signerName);
      let allowed = false;
      for (const name of [signerName, domainWildcard]) {
        allowed = await this.api.subjectAccessReview({
          ...this.identity(csr),
          ...(serviceAccountNamespace ? { namespace: serviceAccountNamespace } : {}),
          group: "certificates.k8s.io",
          resource: "signers",
          name,
          verb,
        });
        if (allowed) break;
      }
      if (!allowed) {
        return {
          verdict: "deny",
          reason: "RequesterNotAuthorized",
          rule: "spec.approval.requireRbacVerb",
          message: `${requester.username} lacks verb ${verb} on certificates.k8s.io signers/${signerName} or signers/${domainWildcard} (rule spec.approval.requireRbacVerb)`,
        };
      }
    }
    return {
      verdict: "approve",
      rule: decision.rule,
      message: `Signer ${signer.objectName} approved ${decision.identity} under ${decision.rule}`,
    };
  }

  private identity(csr: CsrObject): Pick<SubjectAccessQuestion, "user" | "groups" | "uid" | "extra"> {
    const spec = csr.spec ?? {};
    return {
      user: spec.username ?? "",
      groups: spec.groups ?? [],
      ...(spec.uid ? { uid: spec.uid } : {}),
      ...(spec.extra ? { extra: spec.extra } : {}),
    };
  }
}

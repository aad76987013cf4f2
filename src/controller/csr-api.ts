/**
 * The API access the CSR handlers (CsrApi) and the approver (ApprovalApi) need; src/kube/csr-api-binding.ts
 * binds them to the API server, unit tests to stand-ins.
 */
import type { JsonPatchOperation } from "./condition-patch.js";
import type { CsrObject } from "./csr-object.js";

export interface CsrApi {
  /** Reads the CSR from the API server (not the cache); undefined when it is gone. */
  read(name: string): Promise<CsrObject | undefined>;
  /** Merge-patches status with the resourceVersion as precondition; "not sent" when the lease was lost first. */
  patchStatus(
    name: string,
    resourceVersion: string,
    status: Record<string, unknown>,
  ): Promise<"ok" | "conflict" | "gone" | "invalid" | "not sent">;
  /**
   * PUTs /status with `csr`'s copy (replacedStatus: its resourceVersion is the precondition) and
   * `status` set; only for a copy statusReplaceable allows. "not sent" when the lease was lost first.
   */
  replaceStatus(
    csr: CsrObject,
    status: Record<string, unknown>,
  ): Promise<"ok" | "conflict" | "gone" | "invalid" | "not sent">;
  /** Applies a JSON patch to /status (appendConditionPatch: resourceVersion precondition included). */
  patchStatusJson(
    name: string,
    patch: readonly JsonPatchOperation[],
  ): Promise<"ok" | "conflict" | "gone" | "invalid" | "not sent">;
}

export interface SubjectAccessQuestion {
  user: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
  namespace?: string;
  group: string;
  resource: string;
  subresource?: string;
  name?: string;
  verb: string;
}

/** API access the approver needs. */
export interface ApprovalApi {
  /** Adds an Approved or Denied condition through /approval (appendConditionPatch's JSON patch). */
  addApprovalCondition(
    name: string,
    patch: readonly JsonPatchOperation[],
  ): Promise<"ok" | "conflict" | "gone" | "invalid">;
  subjectAccessReview(question: SubjectAccessQuestion): Promise<boolean>;
}

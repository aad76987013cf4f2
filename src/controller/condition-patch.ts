/**
 * JSON patches that append one condition to a CSR's status without sending the others back. The
 * cache holds a cut copy of each condition (csr-cache.ts); a merge patch of `[...cached, new]` would
 * overwrite other writers' conditions with it. The resourceVersion replace makes the API server
 * refuse the write with 409 Conflict when the CSR changed since it was cached, as a merge patch's
 * metadata.resourceVersion does.
 */
import type { CsrCondition, CsrObject } from "./csr-object.js";

export interface JsonPatchOperation {
  op: "add" | "replace";
  path: string;
  value: unknown;
}

/** Appends `condition` to the status of `csr` as cached (paths follow what the cached copy has). */
export function appendConditionPatch(csr: CsrObject, condition: CsrCondition): JsonPatchOperation[] {
  const precondition: JsonPatchOperation = {
    op: "replace",
    path: "/metadata/resourceVersion",
    value: csr.metadata?.resourceVersion ?? "",
  };
  if (csr.status?.conditions)
    return [precondition, { op: "add", path: "/status/conditions/-", value: condition }];
  if (csr.status) return [precondition, { op: "add", path: "/status/conditions", value: [condition] }];
  return [precondition, { op: "add", path: "/status", value: { conditions: [condition] } }];
}

/**
 * What the CSR cache keeps of a CertificateSigningRequest: the fields the controller reads, and
 * spec.request only when one of our signers or approvers will parse it, it is within the parse cap
 * and the CSR is not settled (a certificate, Denied or Failed: nothing parses it again). kube-apiserver stores whatever follows the first PEM block of spec.request (about 1.5 MB of
 * padding fits), and anyone allowed to create CSRs can make many: bytes we will not use are dropped
 * as each object arrives, before it is cached (see ResilientInformer's transform). The same goes for
 * status: anyone allowed to approve may add conditions with long messages to any CSR, so foreign
 * CSRs keep only each condition's type and status, and ours keep the fields our reconciler,
 * approver and cleaner read with messages cut, and of a certificate only its NotAfter. Our condition writes append through JSON patch
 * (condition-patch.ts), so the cut copies are never written back.
 */
import { base64DecodedLength } from "../pki/base64.js";
import { omittedStringBytes } from "../kube/long-strings.js";
import { leafNotAfterMs } from "../pki/certificate.js";
import { defaultCertificateRequestLimits } from "../pki/certificate-request.js";
import type { CsrCondition, CsrObject } from "./csr-object.js";
import { isSettled } from "./csr-gates.js";
import type { WrittenCertificates } from "./written-certificates.js";

/** Condition messages of our CSRs are cut to this many characters in the cache (none is read back). */
export const maximumCachedConditionMessage = 256;

/** The request size our signers and approvers parse at most (the parser's own cap). */
export const maximumCachedRequestBytes = defaultCertificateRequestLimits.maxPemBytes;

/**
 * String values longer than this are cut from CSR list and watch responses before parsing: far
 * above the base64 form of the largest request we parse (6,500 bytes become 8,668).
 */
export const maximumCsrStringBytes = 64 * 1024;

/**
 * "request is N bytes; the limit is M" when the cached CSR's request is over the cap, whichever
 * reason it was omitted for (a CSR cached as foreign may be ours now): such a request is refused
 * from its marker and never read back from the API server.
 */
export function requestTooLargeMessage(spec: CsrObject["spec"]): string | undefined {
  const omitted = spec?.requestOmitted;
  if (!omitted || (omitted.reason !== "TooLarge" && omitted.bytes <= maximumCachedRequestBytes))
    return undefined;
  return `request is ${omitted.bytes} bytes; the limit is ${maximumCachedRequestBytes}`;
}

/**
 * The cached form of `csr`. `ours` answers whether one of our signers or approvers handles a
 * signer name now; a CSR cached as NotOurs whose signer becomes ours later is read again from the
 * API server when it is reconciled (see CsrReconciler). `written`: the NotAfter of certificates this
 * process wrote; an echo of one takes (uses up) its entry instead of decoding the chain.
 */
export function cachedCsr(
  csr: CsrObject,
  ours: (signerName: string) => boolean,
  written?: WrittenCertificates,
): CsrObject {
  // Plain assignments, not conditional spreads: this runs on every watch event, and each spread
  // allocated an object of its own (BENCHMARKS.md, sixth pass: allocation per certificate).
  const { metadata, spec, status } = csr;
  const isOurs = ours(spec?.signerName ?? "");
  const kept: NonNullable<CsrObject["spec"]> = {};
  if (spec !== undefined) {
    if (spec.signerName !== undefined) kept.signerName = spec.signerName;
    if (spec.usages !== undefined) kept.usages = spec.usages;
    if (spec.username !== undefined) kept.username = spec.username;
    if (spec.groups !== undefined) kept.groups = spec.groups;
    if (spec.uid !== undefined) kept.uid = spec.uid;
    // extra feeds our approvers' SubjectAccessReviews; nothing reads a foreign CSR's.
    if (isOurs && spec.extra !== undefined) kept.extra = spec.extra;
    if (spec.expirationSeconds !== undefined) kept.expirationSeconds = spec.expirationSeconds;
    const request = spec.request;
    if (request !== undefined) {
      // A request cut before parsing (the informer's maxStringBytes) is over the cap by far.
      const cutBytes = omittedStringBytes(request);
      const bytes = cutBytes !== undefined ? Math.floor((cutBytes * 3) / 4) : base64DecodedLength(request);
      if (!isOurs) kept.requestOmitted = { reason: "NotOurs", bytes };
      else if (cutBytes !== undefined || bytes > maximumCachedRequestBytes)
        kept.requestOmitted = { reason: "TooLarge", bytes };
      // A settled CSR (a certificate, Denied or Failed) is never parsed again: issued CSRs stay
      // until istiod or the clean-up deletes them, each holding its request for nothing.
      else if (isSettled(csr)) kept.requestOmitted = { reason: "Settled", bytes };
      else kept.request = request;
    }
  }
  // Name, identity and timestamps: labels, annotations and managedFields are never read. Of our
  // CSRs, also what a PUT of /status must send back (csr-object.ts, statusReplaceable): the
  // generateName, and whether the CSR had nothing else a PUT would remove (an allowlist).
  const keptMetadata: NonNullable<CsrObject["metadata"]> = {};
  if (metadata?.name !== undefined) keptMetadata.name = metadata.name;
  if (metadata?.uid !== undefined) keptMetadata.uid = metadata.uid;
  if (metadata?.resourceVersion !== undefined) keptMetadata.resourceVersion = metadata.resourceVersion;
  if (metadata?.creationTimestamp !== undefined) keptMetadata.creationTimestamp = metadata.creationTimestamp;
  if (isOurs && metadata?.generateName !== undefined) keptMetadata.generateName = metadata.generateName;
  if (isOurs && !hasUnkeptFields(metadata, status)) keptMetadata.onlyKeptFields = true;
  const cached: CsrObject = { metadata: keptMetadata, spec: kept };
  if (status !== undefined) cached.status = cachedStatus(status, isOurs, metadata?.name ?? "", written);
  return cached;
}

/**
 * The metadata and status fields a CSR may have for a PUT of /status from the cached copy to change
 * nothing else: an allowlist, so that a field a newer kube-apiserver adds is never erased. The
 * system fields kube-apiserver keeps from the stored object whatever is sent; generateName, which
 * the copy keeps; managedFields, kept when an update leaves them out.
 */
const replaceableMetadataFields = new Set([
  "name",
  "generateName",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "managedFields",
]);
const replaceableStatusFields = new Set(["conditions", "certificate"]);

/**
 * Anything in metadata or status beyond what a PUT from the cached copy sends back or kube-apiserver
 * keeps (labels, annotations, finalizers, owner references, a deletion in progress, a field a newer
 * API adds), or a generateName the cache could not keep as it was (cut: kube-apiserver bounds it).
 */
function hasUnkeptFields(metadata: CsrObject["metadata"], status: CsrObject["status"]): boolean {
  const beyond = (fields: object | undefined, allowed: ReadonlySet<string>): boolean => {
    for (const field in fields) {
      if (
        Object.hasOwn(fields, field) &&
        (fields as Record<string, unknown>)[field] !== undefined &&
        !allowed.has(field)
      )
        return true;
    }
    return false;
  };
  const generateName = (metadata as Record<string, unknown> | undefined)?.generateName;
  return (
    beyond(metadata, replaceableMetadataFields) ||
    beyond(status, replaceableStatusFields) ||
    (generateName !== undefined &&
      (typeof generateName !== "string" || omittedStringBytes(generateName) !== undefined))
  );
}

/**
 * What is kept of status. Presence is kept exactly (status, the conditions array; a certificate as
 * certificateOmitted):
 * condition-patch.ts builds its JSON patch paths from it.
 */
function cachedStatus(
  status: NonNullable<CsrObject["status"]>,
  isOurs: boolean,
  name: string,
  written: WrittenCertificates | undefined,
): NonNullable<CsrObject["status"]> {
  const { conditions, certificate } = status;
  const kept: NonNullable<CsrObject["status"]> = {};
  if (conditions !== undefined)
    kept.conditions = conditions.map((condition) =>
      isOurs ? ourCondition(condition) : foreignCondition(condition),
    );
  // Every issued CSR stays cached until istiod or the clean-up deletes it: of ours, only the leaf's
  // NotAfter the cleaner reads, not the chain (about 2.5 KB each, most of what the cache grew by
  // per certificate; BENCHMARKS.md, seventh pass).
  // The echo of our own write has its NotAfter known already (written-certificates.ts).
  if (certificate && isOurs)
    kept.certificateOmitted = {
      reason: "Ours",
      notAfterMs: written?.take(name, certificate) ?? leafNotAfterMs(certificate),
    };
  if (certificate && !isOurs) kept.certificateOmitted = { reason: "NotOurs" };
  return kept;
}

function foreignCondition({ type, status }: CsrCondition): CsrCondition {
  return { type, status };
}

function ourCondition(condition: CsrCondition): CsrCondition {
  const { type, status, reason, message, lastUpdateTime, lastTransitionTime } = condition;
  const kept: CsrCondition = { type, status };
  if (reason !== undefined) kept.reason = reason.slice(0, maximumCachedConditionMessage);
  if (message !== undefined) kept.message = message.slice(0, maximumCachedConditionMessage);
  if (lastUpdateTime !== undefined) kept.lastUpdateTime = lastUpdateTime;
  if (lastTransitionTime !== undefined) kept.lastTransitionTime = lastTransitionTime;
  return kept;
}

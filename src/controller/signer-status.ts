/**
 * The status a Signer should have. Pure: from the built Signer, what went wrong lately (publication,
 * signing) and what its status says now; undefined when what it says is current.
 */
import type { ParsedCertificate } from "../pki/certificate.js";
import { canonicalJson } from "../kube/canonical-json.js";
import { kubernetesTime } from "../kube/time.js";
import type { ActiveSigner } from "./signer-builder.js";
import type { CertificateSummary, RecordedRoot, SignerCondition, SignerStatus } from "../api/signer.js";
import type { SignerProblem } from "./signer-problem.js";
import { defaultMinimumRootPublicationSeconds } from "../policy/signer-spec.js";

export interface SignerStatusFacts {
  /** Problems of the last trust bundle publication, joined (Degraded while there are any). */
  publicationProblem: string | undefined;
  /** The last transient failure while signing, until a success. */
  signingTrouble: SignerProblem | undefined;
  /** The last refused approval write of an Automatic Signer, until one succeeds (Degraded). */
  approvalTrouble?: SignerProblem | undefined;
  /** Its roots left out of an Istio mesh ConfigMap by the size budget, until they fit (Degraded). */
  meshConfigProblem?: SignerProblem | undefined;
  /** Counts not yet in status. */
  issuedSince: number;
  failedSince: number;
  /** The roots to record in status.trustBundle.roots; undefined: the field is not written. */
  recordedRoots: RecordedRoot[] | undefined;
  now: Date;
}

export type ConditionWithoutTime = Omit<SignerCondition, "lastTransitionTime">;

/** The facts conditions are computed from (counts and roots do not matter to them). */
export type SignerConditionFacts = Pick<
  SignerStatusFacts,
  "publicationProblem" | "signingTrouble" | "approvalTrouble" | "meshConfigProblem"
>;

/**
 * A root waiting for publication waits forever when publication fails. The headline (reason, and
 * the start of the message) names that cause; what waits for it comes after. Shared by the Ready
 * condition and the SignerNotReady Event of a waiting request, so both name the same reason.
 */
export function problemWithCause(
  problem: SignerProblem | undefined,
  publicationProblem: string | undefined,
): SignerProblem | undefined {
  return problem?.reason === "RootNotYetPublished" && publicationProblem
    ? {
        reason: "TrustBundlePublicationFailed",
        message: `publishing the trust bundle fails, so the new root cannot sign yet: ${publicationProblem} (RootNotYetPublished: ${problem.message})`,
      }
    : problem;
}

/**
 * Ready, Degraded and CertificateAuthorityExpiring as they should be now, without transition times:
 * what status shows and what the csr_signer_signer_condition gauge reports.
 */
export function signerConditions(signer: ActiveSigner, facts: SignerConditionFacts): ConditionWithoutTime[] {
  const publication = facts.publicationProblem;
  const withCause = (problem: SignerProblem | undefined) => problemWithCause(problem, publication);
  const notReady = withCause(signer.problem ?? facts.signingTrouble);
  const ready: ConditionWithoutTime = notReady
    ? { type: "Ready", status: "False", reason: notReady.reason, message: notReady.message }
    : {
        type: "Ready",
        status: "True",
        reason: "Ready",
        message: `signing with ${signer.authority?.signingCertificate.subject ?? "?"} (${signer.authority?.signingKey.description ?? ""})`,
      };
  const degradedProblem =
    withCause(signer.degraded) ??
    (publication ? { reason: "TrustBundlePublicationFailed", message: publication } : undefined) ??
    facts.meshConfigProblem ??
    facts.approvalTrouble;
  const degraded: ConditionWithoutTime = degradedProblem
    ? { type: "Degraded", status: "True", reason: degradedProblem.reason, message: degradedProblem.message }
    : { type: "Degraded", status: "False", reason: "AsExpected", message: "" };
  const expiring: ConditionWithoutTime = signer.expiring
    ? {
        type: "CertificateAuthorityExpiring",
        status: "True",
        reason: "ExpiresSoon",
        message: signer.expiring,
      }
    : { type: "CertificateAuthorityExpiring", status: "False", reason: "AsExpected", message: "" };
  return [ready, degraded, expiring, ...rootPublicationHoldWarning(signer)];
}

export function desiredSignerStatus(
  signer: ActiveSigner,
  current: SignerStatus,
  facts: SignerStatusFacts,
): SignerStatus | undefined {
  const conditions = signerConditions(signer, facts).map((condition) => {
    const existing = current.conditions?.find((c) => c.type === condition.type);
    const unchanged =
      existing && existing.status === condition.status && existing.reason === condition.reason;
    return {
      ...condition,
      lastTransitionTime: unchanged ? existing.lastTransitionTime : kubernetesTime(facts.now),
      ...(signer.generation !== undefined ? { observedGeneration: signer.generation } : {}),
    };
  });
  const authority = signer.authority;
  const desired: SignerStatus = {
    ...(signer.generation !== undefined ? { observedGeneration: signer.generation } : {}),
    conditions,
    ...(authority
      ? {
          certificateAuthority: {
            ...summarize(authority.signingCertificate),
            issuer: authority.signingCertificate.issuer,
            roots: authority.roots.map(summarize),
          },
        }
      : {}),
    issuedCount: (current.issuedCount ?? 0) + facts.issuedSince,
    failedCount: (current.failedCount ?? 0) + facts.failedSince,
    ...(facts.recordedRoots ? { trustBundle: { roots: facts.recordedRoots } } : {}),
    // Status is merge-patched: a request no longer pending is removed with null.
    ...(signer.pendingCertificateRequest
      ? { pendingCertificateRequest: signer.pendingCertificateRequest }
      : current.pendingCertificateRequest
        ? { pendingCertificateRequest: null }
        : {}),
  };
  return comparable(desired) === comparable(current) ? undefined : desired;
}

/**
 * A warning, not a refusal: a minimumRootPublication shorter than the safe default is allowed (a
 * test cluster, clients known to reload at once) but shown, since during a root rotation a
 * certificate under the new root may then reach clients that do not trust it yet. Present only
 * while it applies, so Signers with the default carry no extra condition.
 */
function rootPublicationHoldWarning(signer: ActiveSigner): ConditionWithoutTime[] {
  const seconds = signer.spec?.trustBundle.minimumRootPublicationSeconds;
  if (seconds === undefined || seconds >= defaultMinimumRootPublicationSeconds) return [];
  return [
    {
      type: "RootPublicationHoldShort",
      status: "True",
      reason: "ShorterThanDefault",
      message: `spec.trustBundle.minimumRootPublication is ${seconds}s, below the safe default of ${defaultMinimumRootPublicationSeconds}s: in a root rotation, certificates under the new root may reach Istio proxies and kubelet-mounted bundles before they trust it`,
    },
  ];
}

/**
 * A status as text for comparison: keys sorted (the API server returns them in its own order, not
 * ours), transition times left out (they change only with the rest).
 */
function comparable(status: SignerStatus): string {
  return canonicalJson({
    ...status,
    conditions: status.conditions?.map(({ lastTransitionTime: _, ...rest }) => rest),
  });
}

function summarize(certificate: ParsedCertificate): CertificateSummary {
  return {
    subject: certificate.subject,
    notAfter: kubernetesTime(certificate.notAfter),
    fingerprintSha256: certificate.fingerprintSha256,
  };
}

/** Count-only changes of one Signer's status are written at most this often. */
export const countWriteIntervalMs = 2000;

/**
 * How long to wait before writing a status change: 0 (now) when anything but the counts changed
 * (`countsOnly` false, see changesOnlyCounts), since conditions and CA details should show at once;
 * when only issuedCount/failedCount moved, what is left of `countWriteIntervalMs` since the last
 * write. Under load every write's watch echo starts another reconcile in which the counts have
 * moved again: without this, status writes would run back to back and take the API budget of the
 * certificates themselves.
 */
export function statusWriteDelayMs(
  countsOnly: boolean,
  lastWriteAtMs: number | undefined,
  nowMs: number,
): number {
  if (!countsOnly || lastWriteAtMs === undefined) return 0;
  return Math.max(0, lastWriteAtMs + countWriteIntervalMs - nowMs);
}

/** Whether `desired` differs from `current` in issuedCount/failedCount alone (or not at all). */
export function changesOnlyCounts(desired: SignerStatus, current: SignerStatus): boolean {
  const withoutCounts = ({ issuedCount: _i, failedCount: _f, ...rest }: SignerStatus): SignerStatus => rest;
  return comparable(withoutCounts(desired)) === comparable(withoutCounts(current));
}

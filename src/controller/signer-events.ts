/**
 * The Events a Signer gets for what changed it, read off the status about to replace its current
 * one. Pure: the reconciler records them (through the Event recorder and its budget) and logs them
 * after the write succeeded. Derived from status, not from this process's memory, so a restarted
 * controller does not announce again what the status already shows.
 */
import type { SignerEventReason } from "../api/reasons.js";
import type { RecordedRoot, SignerCondition, SignerStatus } from "../api/signer.js";

export interface SignerEvent {
  type: "Normal" | "Warning";
  /** A SignerEventReason, or (Warning) the reason of the condition that went bad. */
  reason: SignerEventReason | string;
  message: string;
}

export function signerStatusEvents(current: SignerStatus, desired: SignerStatus): SignerEvent[] {
  return [
    ...authorityEvents(current, desired),
    ...conditionEvents(current, desired, "Ready", "True"),
    ...conditionEvents(current, desired, "Degraded", "False"),
    ...rootEvents(current.trustBundle?.roots ?? [], desired.trustBundle?.roots),
  ];
}

function authorityEvents(current: SignerStatus, desired: SignerStatus): SignerEvent[] {
  const before = current.certificateAuthority;
  const after = desired.certificateAuthority;
  if (!after || before?.fingerprintSha256 === after.fingerprintSha256) return [];
  const described = `${after.subject} (sha256 ${after.fingerprintSha256}, valid until ${after.notAfter})`;
  return before
    ? [
        {
          type: "Normal",
          reason: "CertificateAuthorityRotated",
          message: `now signing with ${described}; was ${before.subject} (sha256 ${before.fingerprintSha256})`,
        },
      ]
    : [{ type: "Normal", reason: "CertificateAuthorityLoaded", message: `signing with ${described}` }];
}

/**
 * A Warning when condition `type` leaves its good status (or changes reason while bad), a Normal
 * Recovered when it returns to it. A first status that is good says nothing.
 */
function conditionEvents(
  current: SignerStatus,
  desired: SignerStatus,
  type: "Ready" | "Degraded",
  good: "True" | "False",
): SignerEvent[] {
  const find = (status: SignerStatus): SignerCondition | undefined =>
    status.conditions?.find((condition) => condition.type === type);
  const before = find(current);
  const after = find(desired);
  // Every new root waits for its first publication: a moment of RootNotYetPublished is no news (a
  // publication that fails is, and has a reason of its own: TrustBundlePublicationFailed).
  const waitingForPublication = (condition: SignerCondition | undefined): boolean =>
    condition?.reason === "RootNotYetPublished";
  if (!after || waitingForPublication(after)) return [];
  if (after.status !== good) {
    if (before && before.status === after.status && before.reason === after.reason) return [];
    return [{ type: "Warning", reason: after.reason, message: `${type}=${after.status}: ${after.message}` }];
  }
  if (!before || before.status === good) return [];
  return [{ type: "Normal", reason: "Recovered", message: `${type}=${good} again (was ${before.reason})` }];
}

function rootEvents(before: RecordedRoot[], after: RecordedRoot[] | undefined): SignerEvent[] {
  if (!after) return [];
  const previous = new Map(before.map((root) => [root.fingerprintSha256, root]));
  return after.flatMap((root): SignerEvent[] => {
    const was = previous.get(root.fingerprintSha256);
    const named = `root ${root.subject} (sha256 ${root.fingerprintSha256})`;
    const events: SignerEvent[] = [];
    if (root.firstPublished && !was?.firstPublished)
      events.push({
        type: "Normal",
        reason: "RootPublished",
        message: `${named} is in the published trust bundle since ${root.firstPublished}`,
      });
    if (root.retiredAt && !was?.retiredAt)
      events.push({
        type: "Normal",
        reason: "RootRetired",
        message: `${named} is no longer in the CA material (since ${root.retiredAt}); it stays in the published trust bundle for spec.trustBundle.overlap (at least the longest leaf lifetime), or until it expires`,
      });
    return events;
  });
}

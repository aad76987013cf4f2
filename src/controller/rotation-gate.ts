/**
 * The CA rotation gate. Pure: which validated CA material may sign now. New material signs only
 * once its root has been in the published trust bundle long enough for every client to trust it:
 * spec.trustBundle.minimumRootPublication during a rotation, merely published for a Signer's first
 * root (nobody trusts an older one that could be replaced). "First" is read from the recorded
 * roots (Signer status), so it holds across restarts.
 */
import { publishedLongEnough } from "../bundle/trust-bundle.js";
import type { RecordedRoot } from "../api/signer.js";

export interface RotationGateInput {
  /** Fingerprint of the root of the material that signs now, when that material is still valid. */
  previousAnchor: string | undefined;
  /** The root of the validated material read from the Signer's CA source. */
  candidateAnchor: { fingerprintSha256: string; subject: string };
  recorded: readonly RecordedRoot[];
  minimumRootPublicationSeconds: number;
  now: Date;
}

export type RotationGateDecision =
  | { verdict: "adopt"; rule: "same root" | "first root published" | "published long enough" }
  | {
      verdict: "hold";
      rule: "not yet published" | "published too recently";
      /** Why, for the Signer's Ready or Degraded condition. */
      message: string;
      /** When the hold ends if nothing else changes; undefined while the root is not published at all. */
      until: Date | undefined;
    };

export function rotationGate(input: RotationGateInput): RotationGateDecision {
  const { candidateAnchor: anchor, recorded, now } = input;
  if (input.previousAnchor === anchor.fingerprintSha256) return { verdict: "adopt", rule: "same root" };
  const rotating = recorded.some(
    (root) => root.fingerprintSha256 !== anchor.fingerprintSha256 && root.firstPublished,
  );
  const minimumSeconds = rotating ? input.minimumRootPublicationSeconds : 0;
  if (publishedLongEnough(recorded, anchor.fingerprintSha256, now, minimumSeconds))
    return { verdict: "adopt", rule: rotating ? "published long enough" : "first root published" };
  const firstPublished = recorded.find(
    (root) => root.fingerprintSha256 === anchor.fingerprintSha256,
  )?.firstPublished;
  return {
    verdict: "hold",
    rule: firstPublished ? "published too recently" : "not yet published",
    message: rotating
      ? `root "${anchor.subject}" (${anchor.fingerprintSha256}) must be in the published trust bundle for ${minimumSeconds}s before it signs`
      : // A first root has nothing to be trusted beside: it waits only for its first publication.
        `root "${anchor.subject}" (${anchor.fingerprintSha256}) signs once the trust bundle holding it is published (a first root waits for no hold)`,
    until: firstPublished ? new Date(Date.parse(firstPublished) + minimumSeconds * 1000) : undefined,
  };
}

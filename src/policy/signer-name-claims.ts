/**
 * Which Signer owns a spec.signerName that several claim. The oldest claimant keeps it (creation
 * time, then object name): a newer Signer, or an existing one whose signerName was changed (older
 * CRDs did not make it immutable), can never take a name away from the Signer that signs for it.
 */

export interface SignerNameClaimant {
  objectName: string;
  creationTimestamp?: string | Date | undefined;
}

export interface SignerNameClaims {
  /** The object name that signs for each claimed signer name. */
  owners: Map<string, string>;
  /** Claimants refused the name, each with the owner that keeps it. */
  refused: Map<string, { signerName: string; owner: string }>;
}

export function resolveSignerNameClaims(claims: Map<string, SignerNameClaimant[]>): SignerNameClaims {
  const owners = new Map<string, string>();
  const refused = new Map<string, { signerName: string; owner: string }>();
  for (const [signerName, claimants] of claims) {
    const [owner, ...others] = [...claimants].sort(
      (a, b) =>
        creationTimeMs(a.creationTimestamp) - creationTimeMs(b.creationTimestamp) ||
        (a.objectName < b.objectName ? -1 : a.objectName > b.objectName ? 1 : 0),
    );
    owners.set(signerName, owner!.objectName);
    for (const other of others) refused.set(other.objectName, { signerName, owner: owner!.objectName });
  }
  return { owners, refused };
}

/** Milliseconds; an object without a (readable) timestamp sorts last, as the newest. */
export function creationTimeMs(timestamp: string | Date | undefined): number {
  const time = timestamp ? new Date(timestamp).getTime() : NaN;
  return Number.isNaN(time) ? Number.MAX_SAFE_INTEGER : time;
}

/**
 * When this controller first saw each undecided CSR of ours (its first cache event), on a monotonic
 * clock: what csr_signer_issuance_latency_seconds counts from. metadata.creationTimestamp has whole
 * seconds only, which turned 20-30 ms issuances into 0.2-0.9 s. Entries go when the CSR is issued,
 * refused or deleted, so the map holds only CSRs still in flight.
 */
import { hasCondition, type CsrObject } from "./csr-object.js";

export class CsrFirstSeen {
  private readonly sightings = new Map<string, number>();

  constructor(private readonly monotonicMs: () => number = () => performance.now()) {}

  /** Records the first sighting of an undecided CSR; later events and decided CSRs change nothing. */
  saw(csr: CsrObject): void {
    const key = keyOf(csr);
    if (key === undefined || this.sightings.has(key)) return;
    if (csr.status?.certificate || hasCondition(csr, "Failed") || hasCondition(csr, "Denied")) return;
    this.sightings.set(key, this.monotonicMs());
  }

  /** Seconds since the first sighting, or undefined when it was never seen undecided. */
  secondsSince(csr: CsrObject): number | undefined {
    const at = this.seenAt(csr);
    return at === undefined ? undefined : this.secondsFrom(at);
  }

  /**
   * The monotonic time of the first sighting, for a measurement taken later: the signer reads it
   * before its write, because the CSR's deletion (istiod deletes its CSRs at once) may reach the cache,
   * and forget it here, before the write's own answer does.
   */
  seenAt(csr: CsrObject): number | undefined {
    const key = keyOf(csr);
    return key === undefined ? undefined : this.sightings.get(key);
  }

  /** Seconds from `at` (a seenAt answer) to now. */
  secondsFrom(at: number): number {
    return Math.max(0, this.monotonicMs() - at) / 1000;
  }

  forget(csr: CsrObject): void {
    const key = keyOf(csr);
    if (key !== undefined) this.sightings.delete(key);
  }

  /** How many CSRs are tracked (for tests). */
  get size(): number {
    return this.sightings.size;
  }
}

/** The uid, so a CSR deleted and created again under its name counts afresh; the name without one. */
function keyOf(csr: CsrObject): string | undefined {
  return csr.metadata?.uid ?? csr.metadata?.name;
}

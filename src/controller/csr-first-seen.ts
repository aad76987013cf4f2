/**
 * When this controller first saw each undecided CSR of ours (its first cache event), on a monotonic
 * clock: what csr_signer_issuance_latency_seconds counts from. metadata.creationTimestamp has whole
 * seconds only, which turned 20-30 ms issuances into 0.2-0.9 s. Entries go when the CSR is issued,
 * refused (by this replica) or deleted, so the map is bounded by the CSR cache (a follower's entries,
 * and those of CSRs settled by others, go with the deletion). Kept per name with the object's
 * uid: a name holds one CSR at a time, so one deleted and created again replaces the old entry and
 * counts afresh even should its deletion go unseen (the informer reports it after a relist; the uid
 * guards against any path that does not).
 */
import type { CsrObject } from "./csr-object.js";
import { isSettled } from "./csr-gates.js";

export class CsrFirstSeen {
  /** By CSR name: the uid of the object seen and when. */
  private readonly sightings = new Map<string, { uid: string | undefined; at: number }>();

  constructor(private readonly monotonicMs: () => number = () => performance.now()) {}

  /**
   * Records the first sighting of an undecided CSR; later events of it and decided CSRs change
   * nothing. Another object under the name (a new uid) replaces what was kept of the old one.
   */
  saw(csr: CsrObject): void {
    const name = csr.metadata?.name;
    if (name === undefined || this.seenAt(csr) !== undefined) return;
    if (isSettled(csr)) return;
    this.sightings.set(name, { uid: csr.metadata?.uid, at: this.monotonicMs() });
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
    const entry = this.sightings.get(csr.metadata?.name ?? "");
    return entry !== undefined && entry.uid === csr.metadata?.uid ? entry.at : undefined;
  }

  /** Seconds from `at` (a seenAt answer) to now. */
  secondsFrom(at: number): number {
    return Math.max(0, this.monotonicMs() - at) / 1000;
  }

  /** Drops the CSR's entry; one of another object under its name (another uid) stays. */
  forget(csr: CsrObject): void {
    const name = csr.metadata?.name ?? "";
    if (this.sightings.get(name)?.uid === csr.metadata?.uid) this.sightings.delete(name);
  }

  /** How many CSRs are tracked (for tests). */
  get size(): number {
    return this.sightings.size;
  }
}

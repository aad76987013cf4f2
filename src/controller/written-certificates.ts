/**
 * The NotAfter of each certificate this process has just written, for the CSR cache's copy of the
 * watch event that brings it back: that copy keeps only the leaf's NotAfter (csr-cache.ts), and
 * reading it from the chain decodes the base64 and walks the DER, the largest single cost of the
 * cache's transform and 7.7 KiB of allocation per certificate (BENCHMARKS.md, eighth pass). Taken
 * only when the event carries exactly the text written (a string comparison), so another writer's
 * certificate under the same name is read from its bytes as before.
 */
export class WrittenCertificates {
  private readonly byName = new Map<string, { certificate: string; notAfterMs: number }>();

  constructor(
    /** Entries kept at most: a write whose event never comes (the CSR deleted, a lost race) ages out. */
    private readonly capacity = 1024,
  ) {}

  get size(): number {
    return this.byName.size;
  }

  /** Called before the write is sent: its watch event may arrive before its response. */
  writing(name: string, certificate: string, notAfterMs: number): void {
    this.byName.delete(name); // re-inserted last: the oldest go first past the capacity
    this.byName.set(name, { certificate, notAfterMs });
    if (this.byName.size > this.capacity) this.byName.delete(this.byName.keys().next().value!);
  }

  /** The NotAfter when `certificate` is the text this process wrote under `name` (then forgotten). */
  take(name: string, certificate: string): number | undefined {
    const written = this.byName.get(name);
    if (written === undefined || written.certificate !== certificate) return undefined;
    this.byName.delete(name);
    return written.notAfterMs;
  }
}

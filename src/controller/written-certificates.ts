/**
 * The NotAfter of each certificate this process has just written, for the CSR cache's copy of the
 * watch event that brings it back: that copy keeps only the leaf's NotAfter (csr-cache.ts), and
 * reading it from the chain decodes the base64 and walks the DER, the largest single cost of the
 * cache's transform and 7.7 KiB of allocation per certificate (BENCHMARKS.md, eighth pass,
 * measured at cf93d76). Taken only when the event carries exactly the text written (a string
 * comparison), so another writer's certificate under the same name is read from its bytes as
 * before. An entry holds the base64 chain until its echo comes, the write fails (forget) or newer
 * ones push it out: at most `maximumTextBytes` in all, and a chain longer than `maximumEntryBytes`
 * (a tenant's CA may bring several large certificates) is never kept.
 */
export class WrittenCertificates {
  private readonly byName = new Map<string, { certificate: string; notAfterMs: number }>();
  private textBytes = 0;

  constructor(
    private readonly maximumTextBytes = 4 * 1024 * 1024,
    private readonly maximumEntryBytes = 16 * 1024,
  ) {}

  get size(): number {
    return this.byName.size;
  }

  /** Called before the write is sent: its watch event may arrive before its response. */
  writing(name: string, certificate: string, notAfterMs: number): void {
    this.forget(name); // re-inserted last: the oldest go first past the bound
    if (certificate.length > this.maximumEntryBytes) return;
    this.byName.set(name, { certificate, notAfterMs });
    this.textBytes += certificate.length; // base64: one byte per character
    if (this.textBytes <= this.maximumTextBytes) return; // the common case: no iterator per certificate
    for (const [oldest, entry] of this.byName) {
      if (this.textBytes <= this.maximumTextBytes) break;
      this.byName.delete(oldest);
      this.textBytes -= entry.certificate.length;
    }
  }

  /** The NotAfter when `certificate` is the text this process wrote under `name` (then forgotten). */
  take(name: string, certificate: string): number | undefined {
    const written = this.byName.get(name);
    if (written === undefined || written.certificate !== certificate) return undefined;
    this.forget(name);
    return written.notAfterMs;
  }

  /** The write under `name` did not go through (or may not have): its echo, if any, is read from its bytes. */
  forget(name: string): void {
    const written = this.byName.get(name);
    if (written === undefined) return;
    this.byName.delete(name);
    this.textBytes -= written.certificate.length;
  }
}

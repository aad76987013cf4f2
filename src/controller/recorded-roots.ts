/**
 * The roots recorded per Signer: when each was first published everywhere and when the CA
 * material dropped it. Signer status carries them across restarts; between a publication and the
 * status write that records it, this process remembers them itself.
 */
import type { RecordedRoot } from "../api/signer.js";
import { kubernetesTime } from "../kube/time.js";

/** Status entries merged with ours: per fingerprint, the earliest publication and retirement wins. */
export function mergeRecordedRoots(
  fromStatus: readonly RecordedRoot[],
  ours: readonly RecordedRoot[],
): RecordedRoot[] {
  const earliest = (a?: string, b?: string): string | undefined =>
    a && b ? (Date.parse(a) <= Date.parse(b) ? a : b) : (a ?? b);
  const merged = new Map<string, RecordedRoot>();
  for (const entry of [...fromStatus, ...ours]) {
    const existing = merged.get(entry.fingerprintSha256);
    if (!existing) {
      merged.set(entry.fingerprintSha256, { ...entry });
      continue;
    }
    const firstPublished = earliest(existing.firstPublished, entry.firstPublished);
    const retiredAt = earliest(existing.retiredAt, entry.retiredAt);
    merged.set(entry.fingerprintSha256, {
      ...existing,
      ...(firstPublished ? { firstPublished } : {}),
      ...(retiredAt ? { retiredAt } : {}),
    });
  }
  return [...merged.values()];
}

export class RecordedRootsBook {
  private readonly bySigner = new Map<string, RecordedRoot[]>();

  /** What Signer status says, merged with what this process recorded since. */
  merged(objectName: string, fromStatus: readonly RecordedRoot[] | undefined): RecordedRoot[] {
    return mergeRecordedRoots(fromStatus ?? [], this.bySigner.get(objectName) ?? []);
  }

  get(objectName: string): RecordedRoot[] | undefined {
    return this.bySigner.get(objectName);
  }

  set(objectName: string, roots: RecordedRoot[]): void {
    this.bySigner.set(objectName, roots);
  }

  /** Records that the current bundle of `objectName` is published everywhere; true when that is news. */
  markPublished(objectName: string, now: Date): boolean {
    const published = kubernetesTime(now);
    let changed = false;
    for (const entry of this.bySigner.get(objectName) ?? []) {
      if (!entry.firstPublished && !entry.retiredAt) {
        entry.firstPublished = published;
        changed = true;
      }
    }
    return changed;
  }

  retainOnly(objectNames: ReadonlySet<string>): void {
    for (const name of this.bySigner.keys()) if (!objectNames.has(name)) this.bySigner.delete(name);
  }
}

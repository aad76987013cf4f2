/**
 * The controllers' signing log, read for the soak's ledger (src/controller/csr-signing.ts writes it):
 * each signature's "writing certificate" line, logged before the write can go out, joined with its
 * "signed certificate" line (the outcome), and which signatures published a certificate.
 */

/**
 * One signature of a controller. A replica killed while the write was in flight leaves the intent
 * alone: `written` is then "unknown".
 */
export interface Signature {
  identity: string;
  csr: string;
  uid: string;
  serial: string;
  resourceVersion: string;
  /** Before the client's rate limiter; the lease check happens after it, right before sending. */
  writeStartedAt: number;
  /** When the outcome was logged; undefined when it never was. */
  loggedAt: number | undefined;
  /** The outcome line's `written` ("ok", "conflict", "gone", "invalid", "not sent", "error"), or "unknown". */
  written: string;
}

/**
 * Outcomes that leave open whether the API server took the write: no outcome line (the replica died
 * with the write in flight) or "error" (no answer, or one that does not say, such as a timeout).
 * Such a write counts as written exactly when the API server holds its serial.
 */
const outcomeUnknown = new Set(["unknown", "error"]);

export const normalizeSerial = (hex: string): string => hex.toLowerCase().replace(/^0+/, "");

/** The signatures in one process's log lines (`identity`: its Lease identity), intent and outcome joined. */
export function joinSignatureLines(
  identity: string,
  entries: readonly Record<string, unknown>[],
): Signature[] {
  const signatures: Signature[] = [];
  // By uid and serial: a signature's intent and outcome lines come from the same process.
  const byKey = new Map<string, Signature>();
  for (const entry of entries) {
    if (entry.msg !== "writing certificate" && entry.msg !== "signed certificate") continue;
    const serial = normalizeSerial(String(entry.serial));
    const key = `${String(entry.uid)} ${serial}`;
    let signature = byKey.get(key);
    if (signature === undefined) {
      signature = {
        identity,
        csr: String(entry.csr),
        uid: String(entry.uid),
        serial,
        resourceVersion: String(entry.resourceVersion),
        writeStartedAt: Date.parse(String(entry.writeStartedAt)),
        loggedAt: undefined,
        written: "unknown",
      };
      byKey.set(key, signature);
      signatures.push(signature);
    }
    if (entry.msg === "signed certificate") {
      signature.loggedAt = Date.parse(String(entry.time));
      signature.written = String(entry.written);
    }
  }
  return signatures;
}

/**
 * Which signatures published a certificate: those whose write the API server took (`written: "ok"`),
 * and those whose outcome is unknown when the API server holds their serial (`heldSerials`: per CSR
 * uid, the serial of the certificate it holds). Double-signed: a CSR with more than one such serial.
 */
export function writtenSignatures(
  signatures: readonly Signature[],
  heldSerials: ReadonlyMap<string, string>,
): {
  written: Signature[];
  writtenSerials: Map<string, Set<string>>;
  byOutcome: Record<string, number>;
  unknownHeld: number;
  doubleSigned: string[];
} {
  const written: Signature[] = [];
  const writtenSerials = new Map<string, Set<string>>();
  const byOutcome: Record<string, number> = {};
  let unknownHeld = 0;
  for (const signature of signatures) {
    byOutcome[signature.written] = (byOutcome[signature.written] ?? 0) + 1;
    const takenUnknown =
      outcomeUnknown.has(signature.written) && heldSerials.get(signature.uid) === signature.serial;
    if (signature.written !== "ok" && !takenUnknown) continue;
    if (takenUnknown) unknownHeld++;
    written.push(signature);
    const serials = writtenSerials.get(signature.uid) ?? new Set<string>();
    serials.add(signature.serial);
    writtenSerials.set(signature.uid, serials);
  }
  const doubleSigned = [...writtenSerials.entries()]
    .filter(([, serials]) => serials.size > 1)
    .map(([uid, serials]) => `${uid} (${[...serials].join(", ")})`);
  return { written, writtenSerials, byOutcome, unknownHeld, doubleSigned };
}

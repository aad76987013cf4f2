/**
 * The soak's ledger: what the API server and the certificates say, checked against what the load
 * generator sent and what the controllers' signing logs say they signed (never their counters).
 */
import { X509Certificate } from "node:crypto";
import type { V1CertificateSigningRequest } from "@kubernetes/client-node";
import { percentile } from "../controller/common.js";
import type { FaultKind, FaultRecord } from "./faults.js";
import { expectedSpiffeAnnotation, expectedTenantAnnotation, type SentRequest } from "./load.js";
import { splitPem, type BundlePoller, type LeasePoller, type Outcome } from "./observers.js";
import { Replicas, type Incarnation } from "./replicas.js";
import { joinSignatureLines, normalizeSerial, writtenSignatures, type Signature } from "./signatures.js";

/** The refusal each must-refuse kind has to get. */
const expectedRefusal: Record<string, string> = {
  "refuse-namespace": "NamespaceNotTenant",
  "refuse-identity": "SpiffeIdentityMismatch",
  "refuse-signer": "RequesterNotAllowed",
};

/** A fault's window for latency: from its start until it was undone plus this much to catch up. */
export const catchUpMs = 30_000;

export interface Ledger {
  requests: number;
  issued: number;
  refused: number;
  pendingAtEnd: { name: string; reason: string }[];
  lost: string[];
  /** False when the final list of CSRs failed: `lost` is then unknown, not 0. */
  finalListRead: boolean;
  /** Faults the harness never saw undone, with why (FaultRecord.notRecovered). */
  notRecovered: { kind: FaultKind; why: string }[];
  notCreated: number;
  skipped: number;
  faults: Record<FaultKind, number>;
  doubleSigned: string[];
  /**
   * A certificate the API server holds whose serial no controller logged as written: neither an "ok"
   * outcome nor an intent whose outcome is unknown.
   */
  unloggedCertificates: string[];
  /**
   * Every signature by outcome ("unknown": intent logged, no outcome line); `unknownHeld`: those with
   * an unknown outcome ("unknown" or "error") whose serial the API server holds, counted as written.
   */
  signatures: { total: number; byOutcome: Record<string, number>; unknownHeld: number };
  /** Written (ok) by an identity that did not hold the Lease when the write began. */
  writesAfterLeaseLoss: { identity: string; csr: string; at: string; holder: string }[];
  /** Written (ok), begun while leading and answered after another identity acquired the Lease. */
  writesAcrossTakeover: number;
  issuedOutsidePolicy: string[];
  notVerifying: string[];
  wronglyRefused: string[];
  wrongRefusalReason: string[];
  failoverMs: number[];
  latency: { included: number; excluded: number; p50: number; p99: number; max: number; maxAll: number };
  afterLastFault: { lastFaultEndedAt: number; pending: number; drainedMs: number | undefined };
  rss: { identity: string; startBytes: number; endBytes: number; minutes: number }[];
  rootsPublished: Record<string, number>;
}

export function signaturesOf(incarnations: readonly Incarnation[]): Signature[] {
  return incarnations.flatMap((incarnation) =>
    joinSignatureLines(incarnation.identity, Replicas.logEntries(incarnation)),
  );
}

/** Every "became leader" line of the controllers: the Lease acquisitions as they saw them. */
export function acquisitionsOf(incarnations: readonly Incarnation[]): { holder: string; since: number }[] {
  return incarnations.flatMap((incarnation) =>
    Replicas.logEntries(incarnation)
      .filter((entry) => entry.msg === "became leader")
      .map((entry) => ({ holder: incarnation.identity, since: Date.parse(String(entry.time)) })),
  );
}

export function buildLedger(input: {
  sent: ReadonlyMap<string, SentRequest>;
  outcomes: ReadonlyMap<string, Outcome>;
  /** The soak's CSRs still unanswered in the final list; undefined when that list failed. */
  remaining: readonly V1CertificateSigningRequest[] | undefined;
  faults: readonly FaultRecord[];
  signatures: readonly Signature[];
  lease: LeasePoller;
  bundles: BundlePoller;
  incarnations: readonly Incarnation[];
  counters: { notCreated: number; skipped: number };
}): Ledger {
  const { sent, outcomes, remaining, faults, signatures, lease, bundles } = input;
  const remainingNames = new Set((remaining ?? []).map((csr) => csr.metadata?.name ?? ""));
  const names = new Set([...sent.keys(), ...outcomes.keys(), ...remainingNames]);

  // Lost: created, and neither answered (seen Issued/Failed) nor still in the API server. Without the
  // final list nothing can be called lost: the unanswered are pending, reason unknown.
  const unanswered = [...sent.keys()].filter((name) => !outcomes.has(name));
  const lost = remaining === undefined ? [] : unanswered.filter((name) => !remainingNames.has(name));
  const pendingAtEnd =
    remaining === undefined
      ? unanswered.map((name) => ({ name, reason: "unknown: the final list of CSRs failed" }))
      : remaining.map((csr) => ({
          name: csr.metadata?.name ?? "",
          reason: pendingReason(csr, sent.get(csr.metadata?.name ?? "")),
        }));

  // The serial of each certificate the API server holds (the watch's view), per CSR uid.
  const heldSerials = new Map<string, { serial: string; seenAt: number }>();
  for (const outcome of outcomes.values())
    if (outcome.certificatePem)
      heldSerials.set(outcome.uid, { serial: leafSerial(outcome.certificatePem), seenAt: outcome.seenAt });

  // Only writes the API server took published a certificate; an unknown outcome counts when it holds the serial.
  const { written, writtenSerials, byOutcome, unknownHeld, doubleSigned } = writtenSignatures(
    signatures,
    new Map([...heldSerials].map(([uid, held]) => [uid, held.serial])),
  );

  // Fencing: writes the API server took from a replica while another identity held the Lease (its
  // acquireTime, or the acquirer's "became leader" line), and writes in flight across a takeover (a
  // write without an outcome line was answered at the latest when the harness saw its certificate).
  const writesAfterLeaseLoss: Ledger["writesAfterLeaseLoss"] = [];
  let writesAcrossTakeover = 0;
  for (const signature of written) {
    const tenure = lease.holderAt(signature.writeStartedAt);
    const answeredBy =
      signature.loggedAt ?? heldSerials.get(signature.uid)?.seenAt ?? signature.writeStartedAt;
    if (tenure && tenure.holder !== signature.identity)
      writesAfterLeaseLoss.push({
        identity: signature.identity,
        csr: signature.csr,
        at: new Date(signature.writeStartedAt).toISOString(),
        holder: tenure.holder,
      });
    else if (lease.holderAt(answeredBy)?.holder !== signature.identity) writesAcrossTakeover++;
  }

  const issuedOutsidePolicy: string[] = [];
  const notVerifying: string[] = [];
  const wronglyRefused: string[] = [];
  const wrongRefusalReason: string[] = [];
  const unloggedCertificates: string[] = [];
  const chains = new ChainVerifier();
  let issued = 0;
  let refused = 0;
  for (const outcome of outcomes.values()) {
    const mustRefuse = outcome.kind.startsWith("refuse-");
    if (outcome.failed) {
      refused++;
      if (!mustRefuse) wronglyRefused.push(`${outcome.name}: ${outcome.failed.reason}`);
      else if (outcome.failed.reason !== expectedRefusal[outcome.kind])
        wrongRefusalReason.push(`${outcome.name}: ${outcome.failed.reason}`);
      continue;
    }
    issued++;
    if (mustRefuse) issuedOutsidePolicy.push(`${outcome.name}: a must-refuse request was issued`);
    const problem = certificateProblem(outcome, bundles, chains);
    if (problem?.policy) issuedOutsidePolicy.push(`${outcome.name}: ${problem.policy}`);
    if (problem?.verify) notVerifying.push(`${outcome.name}: ${problem.verify}`);
    const serial = heldSerials.get(outcome.uid)!.serial;
    if (!writtenSerials.get(outcome.uid)?.has(serial))
      unloggedCertificates.push(`${outcome.name} (serial ${serial})`);
  }

  // Latency, create -> certificate seen, outside fault windows.
  const windows = faults.map((fault) => [fault.startedAt, fault.endedAt + catchUpMs] as const);
  const included: number[] = [];
  const all: number[] = [];
  for (const outcome of outcomes.values()) {
    const request = sent.get(outcome.name);
    if (!request || !outcome.certificatePem) continue;
    const latency = outcome.seenAt - request.createdAt;
    all.push(latency);
    if (!windows.some(([start, end]) => request.createdAt <= end && outcome.seenAt >= start))
      included.push(latency);
  }
  included.sort((a, b) => a - b);

  // After the last fault: how long until everything pending then was answered.
  const lastFaultEndedAt = Math.max(0, ...faults.map((fault) => fault.endedAt));
  const pendingThen = [...sent.values()].filter(
    (request) =>
      request.createdAt <= lastFaultEndedAt &&
      (outcomes.get(request.name)?.seenAt ?? Infinity) > lastFaultEndedAt,
  );
  const answeredAt = pendingThen.map((request) => outcomes.get(request.name)?.seenAt ?? Infinity);
  const lastAnswer = Math.max(lastFaultEndedAt, ...answeredAt);

  const faultCounts = Object.fromEntries(faults.map((fault) => [fault.kind, 0])) as Record<FaultKind, number>;
  for (const fault of faults) faultCounts[fault.kind]++;

  return {
    requests: names.size,
    issued,
    refused,
    pendingAtEnd,
    lost,
    finalListRead: remaining !== undefined,
    notRecovered: faults.flatMap((fault) =>
      fault.notRecovered === undefined ? [] : [{ kind: fault.kind, why: fault.notRecovered }],
    ),
    notCreated: input.counters.notCreated,
    skipped: input.counters.skipped,
    faults: faultCounts,
    doubleSigned,
    unloggedCertificates,
    signatures: { total: signatures.length, byOutcome, unknownHeld },
    writesAfterLeaseLoss,
    writesAcrossTakeover,
    issuedOutsidePolicy,
    notVerifying,
    wronglyRefused,
    wrongRefusalReason,
    failoverMs: faults.flatMap((fault) => (fault.failoverMs === undefined ? [] : [fault.failoverMs])),
    latency: {
      included: included.length,
      excluded: all.length - included.length,
      p50: percentile(included, 0.5),
      p99: percentile(included, 0.99),
      max: included.at(-1) ?? Number.NaN,
      maxAll: Math.max(...all),
    },
    afterLastFault: {
      lastFaultEndedAt,
      pending: pendingThen.length,
      drainedMs: Number.isFinite(lastAnswer) ? lastAnswer - lastFaultEndedAt : undefined,
    },
    rss: rssFigures(input.incarnations),
    rootsPublished: Object.fromEntries([...bundles.roots].map(([tenant, roots]) => [tenant, roots.size])),
  };
}

function pendingReason(csr: V1CertificateSigningRequest, request: SentRequest | undefined): string {
  const conditions = csr.status?.conditions ?? [];
  if (!conditions.some((c) => c.type === "Approved" && c.status === "True"))
    return `not approved (the approval never reached the API server; the generator tried ${request?.approvalAttempts ?? 0} times, last error: ${request?.approvalError ?? "none"})`;
  return `approved, no certificate yet (conditions: ${conditions.map((c) => c.type).join(", ")})`;
}

function leafSerial(chainPem: string): string {
  return normalizeSerial(new X509Certificate(splitPem(chainPem)[0]!).serialNumber);
}

/**
 * The certificate as a relying party sees it: its chain must verify against a root its tenant's bundle
 * published before the certificate was seen (every root the bundle ever published during the run
 * counts, so a rotation does not make older certificates fail), be valid then, and certify exactly
 * the SPIFFE ID asked for.
 */
function certificateProblem(
  outcome: Outcome,
  bundles: BundlePoller,
  chains: ChainVerifier,
): { policy?: string; verify?: string } | undefined {
  const [leafPem, ...issuerPems] = splitPem(outcome.certificatePem!);
  const leaf = new X509Certificate(leafPem!);
  const tenant = outcome.annotations[expectedTenantAnnotation] ?? "";
  const spiffeId = outcome.annotations[expectedSpiffeAnnotation] ?? "";
  const problems: { policy?: string; verify?: string } = {};
  const uris = (leaf.subjectAltName ?? "").split(", ").filter((name) => name.startsWith("URI:"));
  if (uris.length !== 1 || uris[0] !== `URI:${spiffeId}`)
    problems.policy = `SANs ${leaf.subjectAltName ?? "none"}, asked for ${spiffeId}`;
  if (outcome.signerName !== `soak.csr-signer.test/${tenant}`)
    problems.policy = `signed by ${outcome.signerName} for tenant ${tenant}`;
  if (chains.earliestRoot(tenant, leaf, issuerPems, bundles) > outcome.seenAt)
    problems.verify = `does not chain to a root tenant ${tenant} published before ${new Date(outcome.seenAt).toISOString()}`;
  const seen = outcome.seenAt;
  if (Date.parse(leaf.validFrom) > seen || Date.parse(leaf.validTo) < seen)
    problems.verify = `not valid when issued (${leaf.validFrom} - ${leaf.validTo})`;
  return problems.policy || problems.verify ? problems : undefined;
}

/**
 * Chain verification with each distinct intermediate chain verified once: tens of thousands of
 * leaves share a handful of intermediates, so only the leaf's own signature is checked per
 * certificate. What is kept per intermediate chain is the earliest first-seen time of a published
 * root it verifies to: a leaf verifies against a root published before time T exactly when that
 * earliest time, through its issuer or a root issuing it directly, is at most T.
 */
class ChainVerifier {
  private readonly parsed = new Map<string, X509Certificate>();
  private readonly earliest = new Map<string, number>();

  /** The earliest first-seen time of a tenant root `certificate` verifies to through `issuerPems` (Infinity: none). */
  earliestRoot(
    tenant: string,
    certificate: X509Certificate,
    issuerPems: string[],
    bundles: BundlePoller,
  ): number {
    const roots = [...(bundles.roots.get(tenant)?.values() ?? [])];
    let earliest = Infinity;
    for (const root of roots)
      if (
        root.firstSeen < earliest &&
        certificate.checkIssued(root.certificate) &&
        certificate.verify(root.certificate.publicKey)
      )
        earliest = root.firstSeen;
    const [issuerPem, ...rest] = issuerPems;
    if (issuerPem === undefined) return earliest;
    const issuer = this.certificate(issuerPem);
    if (!certificate.checkIssued(issuer) || !certificate.verify(issuer.publicKey)) return earliest;
    const key = `${tenant}\n${issuerPems.join("")}`;
    let throughIssuer = this.earliest.get(key);
    if (throughIssuer === undefined) {
      throughIssuer = this.earliestRoot(tenant, issuer, rest, bundles);
      this.earliest.set(key, throughIssuer);
    }
    return Math.min(earliest, throughIssuer);
  }

  private certificate(pem: string): X509Certificate {
    let certificate = this.parsed.get(pem);
    if (certificate === undefined) {
      certificate = new X509Certificate(pem);
      this.parsed.set(pem, certificate);
    }
    return certificate;
  }
}

function rssFigures(incarnations: readonly Incarnation[]): Ledger["rss"] {
  return incarnations
    .filter((incarnation) => incarnation.rss.length > 1)
    .map((incarnation) => {
      // "Start": the first sample 30 s after start (caches synced, load flowing), else the first.
      const start =
        incarnation.rss.find((sample) => sample.at >= incarnation.startedAt + 30_000) ?? incarnation.rss[0]!;
      const end = incarnation.rss.at(-1)!;
      return {
        identity: incarnation.identity,
        startBytes: start.bytes,
        endBytes: end.bytes,
        minutes: (end.at - start.at) / 60_000,
      };
    });
}

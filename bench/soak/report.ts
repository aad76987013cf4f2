/** The soak's table (Markdown, for RELIABILITY.md) and whether every target was met. */
import { mib, ms } from "../controller/common.js";
import { faultKinds, leaseDurationMs, type FaultRecord } from "./faults.js";
import type { Ledger } from "./ledger.js";
import { cpuComponents, type CpuComponent } from "./cpu.js";

export interface RunFacts {
  seed: number;
  seconds: number;
  rate: number;
  revision: string;
  runtime: string;
  startedAt: string;
  loadAverage: string;
  /** Set when SOAK_FAULTS or SOAK_CONTROLLER_ARGS made this a diagnosis run, not the soak. */
  diagnosis?: string | undefined;
}

export function formatReport(
  ledger: Ledger,
  faults: readonly FaultRecord[],
  cores: Record<CpuComponent, number>,
  facts: RunFacts,
) {
  const failover = [...ledger.failoverMs].sort((a, b) => a - b);
  const failoverMax = failover.at(-1);
  const failoverTarget = leaseDurationMs + 5_000;
  const drained = ledger.afterLastFault.drainedMs;
  const rows: [string, string, string, boolean][] = [];
  const row = (what: string, value: string, target: string, met: boolean): void =>
    void rows.push([what, value, target, met]);
  const list = (items: readonly unknown[]): string => `${items.length}`;
  row(
    "requests (CSRs created)",
    `${ledger.requests} (issued ${ledger.issued}, refused ${ledger.refused}, pending at end ${ledger.pendingAtEnd.length})`,
    `${facts.rate}/s for ${facts.seconds} s`,
    true,
  );
  row(
    "faults",
    faultKinds.map((kind) => `${kind} ${ledger.faults[kind] ?? 0}`).join(", "),
    "each kind at least once",
    faultKinds.every((kind) => (ledger.faults[kind] ?? 0) > 0),
  );
  row(
    "faults recovered from (the harness saw the system whole again)",
    `${faults.length - ledger.notRecovered.length} of ${faults.length}${ledger.notRecovered.length === 0 ? "" : `; not: ${ledger.notRecovered.map((fault) => `${fault.kind} (${fault.why})`).join("; ")}`}`,
    "all",
    ledger.notRecovered.length === 0,
  );
  row(
    "lost",
    ledger.finalListRead ? list(ledger.lost) : "unknown (the final list of CSRs failed)",
    "0",
    ledger.finalListRead && ledger.lost.length === 0,
  );
  row(
    "double-signed (2+ serials written for one CSR)",
    list(ledger.doubleSigned),
    "0",
    ledger.doubleSigned.length === 0,
  );
  row(
    "certificates no controller logged (as written, or as an intent with unknown outcome)",
    list(ledger.unloggedCertificates),
    "0",
    ledger.unloggedCertificates.length === 0,
  );
  row(
    "issued outside policy (must-refuse issued, wrong SAN or tenant)",
    list(ledger.issuedOutsidePolicy),
    "0",
    ledger.issuedOutsidePolicy.length === 0,
  );
  row(
    "certificates not verifying against the tenant's published roots",
    list(ledger.notVerifying),
    "0",
    ledger.notVerifying.length === 0,
  );
  row("allowed requests refused", list(ledger.wronglyRefused), "0", ledger.wronglyRefused.length === 0);
  row(
    "must-refuse requests refused with another reason",
    list(ledger.wrongRefusalReason),
    "0",
    ledger.wrongRefusalReason.length === 0,
  );
  row(
    "signatures logged (write outcome)",
    `${ledger.signatures.total} (${Object.entries(ledger.signatures.byOutcome)
      .map(([outcome, count]) => `${outcome} ${count}`)
      .join(", ")}; outcome unknown but held by the API server: ${ledger.signatures.unknownHeld})`,
    "conflict = refused by the resourceVersion precondition; unknown = intent logged, no outcome line",
    true,
  );
  row(
    "writes begun by a replica not holding the Lease",
    list(ledger.writesAfterLeaseLoss),
    "0",
    ledger.writesAfterLeaseLoss.length === 0,
  );
  row(
    "writes begun while leading, answered after a takeover",
    `${ledger.writesAcrossTakeover}`,
    "fenced by the precondition: counted in double-signed if not",
    true,
  );
  row(
    "failover after leader SIGKILL (p50 / max)",
    failover.length === 0
      ? "n/a"
      : `${ms(failover[Math.floor((failover.length - 1) / 2)]!)} / ${ms(failoverMax!)}`,
    `max <= ${ms(failoverTarget)}`,
    failover.length > 0 && failoverMax! <= failoverTarget,
  );
  row(
    "create -> certificate outside fault windows (p50 / p99 / worst)",
    `${ms(ledger.latency.p50)} / ${ms(ledger.latency.p99)} / ${ms(ledger.latency.max)} (${ledger.latency.included} CSRs; worst of all ${ms(ledger.latency.maxAll)})`,
    "reported",
    true,
  );
  row(
    "after the last fault: pending then, all answered within",
    `${ledger.afterLastFault.pending}, ${drained === undefined ? "never" : ms(drained)}`,
    "<= 30 s",
    drained !== undefined && drained <= 30_000,
  );
  for (const rss of ledger.rss)
    row(
      `RSS ${rss.identity} (start -> end, over ${rss.minutes.toFixed(1)} min)`,
      `${mib(rss.startBytes)} -> ${mib(rss.endBytes)}`,
      "no steady growth",
      true,
    );
  row(
    "CPU while the load ran (mean cores used)",
    cpuComponents.map((component) => `${component} ${cores[component].toFixed(2)}`).join(", "),
    "reported",
    true,
  );
  row(
    "creates not sent / not created (API server away)",
    `${ledger.skipped} / ${ledger.notCreated}`,
    "reported",
    true,
  );
  const table = [
    ...(facts.diagnosis ? [`**Diagnosis run, not the soak** (${facts.diagnosis}).`, ""] : []),
    `Soak of ${facts.startedAt}: seed ${facts.seed}, ${facts.seconds} s at ${facts.rate} CSRs/s, commit ${facts.revision}, controllers ${facts.runtime}; load average at the end ${facts.loadAverage} (shared 2-core machine).`,
    "",
    "| | measured | target | |",
    "|---|---|---|---|",
    ...rows.map(
      ([what, value, target, met]) => `| ${what} | ${value} | ${target} | ${met ? "met" : "**MISSED**"} |`,
    ),
    "",
    "Faults (start, duration):",
    "",
    ...faults.map(
      (fault) =>
        `- ${fault.kind}: ${fault.detail} (${new Date(fault.startedAt).toISOString()}, ${((fault.endedAt - fault.startedAt) / 1000).toFixed(1)} s${fault.failoverMs === undefined ? "" : `, failover ${ms(fault.failoverMs)}`})`,
    ),
  ].join("\n");
  const details = [
    ...ledger.lost.slice(0, 10).map((name) => `lost: ${name}`),
    ...ledger.pendingAtEnd
      .slice(0, 10)
      .map((pending) => `pending at end: ${pending.name}: ${pending.reason}`),
    ...ledger.doubleSigned.slice(0, 10).map((uid) => `double-signed: ${uid}`),
    ...ledger.unloggedCertificates.slice(0, 10).map((name) => `unlogged: ${name}`),
    ...ledger.issuedOutsidePolicy.slice(0, 10).map((name) => `outside policy: ${name}`),
    ...ledger.notVerifying.slice(0, 10).map((name) => `not verifying: ${name}`),
    ...ledger.wronglyRefused.slice(0, 10).map((name) => `wrongly refused: ${name}`),
    ...ledger.wrongRefusalReason.slice(0, 10).map((name) => `other refusal reason: ${name}`),
    ...ledger.writesAfterLeaseLoss.slice(0, 10).map((w) => `write after lease loss: ${JSON.stringify(w)}`),
  ];
  return { table, details, allMet: rows.every(([, , , met]) => met) };
}

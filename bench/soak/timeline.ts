/**
 * Whether the system kept up, over time: per interval, the CSRs created and answered (seen Issued or
 * Failed by the harness's watch), the backlog (created and not yet answered) at its end, and the
 * cores each component used (bench/soak/cpu.ts). A backlog that stays flat between faults at the
 * load's rate means the answers come exactly as fast as the requests: no headroom to catch up.
 */
import { cpuComponents, type CpuSampler } from "./cpu.js";
import type { FaultRecord } from "./faults.js";
import type { SentRequest } from "./load.js";
import type { Outcome } from "./observers.js";

export interface TimelineRow {
  /** Seconds since the load started, at the interval's end. */
  second: number;
  created: number;
  answered: number;
  backlog: number;
  /** Faults that started in the interval. */
  faults: string[];
  cores: Record<string, number>;
}

export function timeline(input: {
  loadStartedAt: number;
  loadEndedAt: number;
  sent: ReadonlyMap<string, SentRequest>;
  outcomes: ReadonlyMap<string, Outcome>;
  faults: readonly FaultRecord[];
  cpu: CpuSampler;
  intervalMs?: number;
}): TimelineRow[] {
  const { loadStartedAt, sent, outcomes, faults, cpu } = input;
  const intervalMs = input.intervalMs ?? 10_000;
  const created = [...sent.values()].map((request) => request.createdAt).sort((a, b) => a - b);
  const answered = [...outcomes.values()]
    .filter((outcome) => sent.has(outcome.name))
    .map((outcome) => outcome.seenAt)
    .sort((a, b) => a - b);
  const countUntil = (times: number[], end: number): number => {
    let low = 0;
    let high = times.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (times[middle]! <= end) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  const rows: TimelineRow[] = [];
  const lastAnswer = answered.at(-1) ?? input.loadEndedAt;
  for (let start = loadStartedAt; start < Math.max(input.loadEndedAt, lastAnswer); start += intervalMs) {
    const end = start + intervalMs;
    const createdBy = countUntil(created, end);
    const answeredBy = countUntil(answered, end);
    rows.push({
      second: Math.round((end - loadStartedAt) / 1000),
      created: createdBy - countUntil(created, start),
      answered: answeredBy - countUntil(answered, start),
      backlog: createdBy - answeredBy,
      faults: faults.filter((fault) => fault.startedAt >= start && fault.startedAt < end).map((f) => f.kind),
      cores: cpu.mean(start, end),
    });
  }
  return rows;
}

/** One line per row: "t=40s created 500 answered 498 backlog 12 | apiserver 0.71 etcd 0.10 ...". */
export function formatTimeline(rows: readonly TimelineRow[]): string[] {
  return rows.map(
    (row) =>
      `t=${row.second}s created ${row.created} answered ${row.answered} backlog ${row.backlog} | ` +
      cpuComponents.map((component) => `${component} ${row.cores[component]!.toFixed(2)}`).join(", ") +
      (row.faults.length > 0 ? ` | fault: ${row.faults.join(", ")}` : ""),
  );
}

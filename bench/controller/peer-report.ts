/**
 * The comparison's Markdown: each signer's rounds summed up by their median (every round's figure
 * beside it), and the ratios of those medians (csr-signer / kube-controller-manager, csr-signer-alt /
 * csr-signer, and the Node floor's), each CPU ratio also as the geometric mean of the rounds' own
 * ratios with a 95% interval. On a 2-core machine shared by the submitter, kube-apiserver and etcd,
 * one run of either signer moves by a quarter from one run to the next, so a single side-by-side
 * pair says little; interleaved rounds, and rounds pooled from several runs, do.
 */
import { contenders, ms, peerRounds, peerWarmUpCsrs, percentile, qpsModes } from "./common.js";
import { signerProcessName, type Contender, type PeerResult } from "./peer.js";

/** The rounds of one signer at one client limit. */
interface Group {
  contender: Contender;
  qps: number;
  label: string;
  rounds: PeerResult[];
}

const median = (values: number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

export const signerCpuPerCertificateMs = (r: PeerResult): number =>
  ((r.cpu[signerProcessName(r.contender)] ?? 0) * 1000) / Math.max(1, r.issued);
/**
 * The signer's CPU over the submitter's (this process's) in the same window: unitless, lower is
 * better. The submitter creates and approves the same requests for every signer, so the host's drift
 * from one round to the next moves both. But the submitter's CPU grows with the window's length about
 * one for one, so this is close to the signer's CPU per second of the round: it compares CPU per
 * certificate only where both signers' throughputs are equal, and a change that raises throughput
 * reads as spending more (BENCHMARKS.md, eleventh pass). NaN when the submitter's CPU is missing.
 */
const signerOverSubmitterCpu = (r: PeerResult): number =>
  r.cpu.bench ? (r.cpu[signerProcessName(r.contender)] ?? 0) / r.cpu.bench : Number.NaN;
const apiserverCpuPerCertificateMs = (r: PeerResult): number =>
  ((r.cpu["kube-apiserver"] ?? 0) * 1000) / Math.max(1, r.issued);
const p = (q: number) => (r: PeerResult) => percentile(r.createToIssued, q);

function groups(peer: PeerResult[]): Group[] {
  const found: Group[] = [];
  for (const qps of qpsModes)
    for (const contender of contenders) {
      const rounds = peer.filter((r) => r.qps === qps && r.contender === contender);
      if (rounds.length > 0) found.push({ contender, qps, label: rounds[0]!.label, rounds });
    }
  return found;
}

/** "**median** (round 1 / round 2 / ...)" of `figure` over a group's rounds. */
function medianCell(group: Group, figure: (r: PeerResult) => number, format: (v: number) => string): string {
  const values = group.rounds.map(figure);
  const each = values.length > 1 ? ` (${values.map(format).join(" / ")})` : "";
  return `**${format(median(values))}**${each}`;
}

export function peerReport(peer: PeerResult[], introduction: string): string[] {
  const out: string[] = [introduction, ""];
  const all = groups(peer);
  const columns = all.map((g) => `${g.contender}, ${g.label}`);
  out.push(
    `| median of ${peerRounds} round${peerRounds === 1 ? "" : "s"} (each round) | ${columns.join(" | ")} |`,
  );
  out.push(`|---|${columns.map(() => "---").join("|")}|`);
  const row = (name: string, cell: (g: Group) => string): void => {
    out.push(`| ${name} | ${all.map(cell).join(" | ")} |`);
  };
  const sum = (g: Group, figure: (r: PeerResult) => number): number =>
    g.rounds.reduce((total, r) => total + figure(r), 0);
  row("issued / failed (all rounds)", (g) => {
    const timedOut = g.rounds.some((r) => !r.complete) ? " (timed out)" : "";
    return `${sum(g, (r) => r.issued)} / ${sum(g, (r) => r.failed)}${timedOut}`;
  });
  row("sustained CSRs/s", (g) =>
    medianCell(
      g,
      (r) => r.perSecond,
      (v) => v.toFixed(1),
    ),
  );
  row("create → certificate p50", (g) => medianCell(g, p(0.5), ms));
  row("create → certificate p99", (g) => medianCell(g, p(0.99), ms));
  row("over istiod's 60 s deadline (all rounds)", (g) => String(sum(g, (r) => r.missedDeadline)));
  row("signer CPU per certificate", (g) =>
    medianCell(g, signerCpuPerCertificateMs, (v) => `${v.toFixed(2)} ms`),
  );
  row("signer CPU ÷ the submitter's CPU, same window (≈ CPU per second of the round; lower is better)", (g) =>
    medianCell(g, signerOverSubmitterCpu, (v) => v.toFixed(3)),
  );
  row("kube-apiserver CPU per certificate", (g) =>
    medianCell(g, apiserverCpuPerCertificateMs, (v) => `${v.toFixed(2)} ms`),
  );
  row(
    `signer CPU s since its process started (start-up and the ${peerWarmUpCsrs} warm-up certificates included)`,
    (g) =>
      medianCell(
        g,
        (r) => r.signerCpuSinceStart,
        (v) => v.toFixed(1),
      ),
  );
  row("kube-apiserver requests per certificate (everyone's, all rounds)", (g) => {
    const issued = Math.max(
      1,
      sum(g, (r) => r.issued),
    );
    const counts = new Map<string, number>();
    for (const r of g.rounds)
      for (const [key, count] of r.apiserverRequests) counts.set(key, (counts.get(key) ?? 0) + count);
    return [...counts]
      .filter(([, count]) => count / issued >= 0.01)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, count]) => `${key} ${(count / issued).toFixed(2)}`)
      .join("<br>");
  });
  out.push("");
  // Each only when both of its sides ran (BENCH_CONTENDERS may name one).
  for (const [ourName, theirName] of [
    ["csr-signer", "kube-controller-manager"],
    ["csr-signer-alt", "csr-signer"],
    ["node-floor", "kube-controller-manager"],
    ["csr-signer", "node-floor"],
  ] as const) {
    const ratios = ratioLines(all, ourName, theirName);
    if (ratios.length > 0)
      out.push(
        `**Ratio ${ourName} / ${theirName}, medians** (throughput: higher is better; latency and ` +
          `CPU: lower is better; in brackets the same ratio within each round, unless marked as an ` +
          `interval): ${ratios.join("; ")}.`,
        "",
      );
  }
  return out;
}

function ratioLines(all: Group[], ourName: Contender, theirName: Contender): string[] {
  const lines: string[] = [];
  for (const qps of qpsModes) {
    const ours = all.find((g) => g.qps === qps && g.contender === ourName);
    const theirs = all.find((g) => g.qps === qps && g.contender === theirName);
    if (!ours || !theirs) continue;
    /** Each round's ratio of `figure`, ours over theirs, rounds paired by their number. */
    const roundRatios = (figure: (r: PeerResult) => number): number[] =>
      ours.rounds
        .map((r) => {
          const theirRound = theirs.rounds.find((t) => t.round === r.round);
          return theirRound ? figure(r) / figure(theirRound) : Number.NaN;
        })
        .filter((value) => Number.isFinite(value));
    const ratio = (figure: (r: PeerResult) => number): string => {
      const overall = median(ours.rounds.map(figure)) / median(theirs.rounds.map(figure));
      const pairs = roundRatios(figure);
      const each = pairs.length > 1 ? ` (${pairs.map((v) => `${v.toFixed(2)}x`).join(" / ")})` : "";
      return `${overall.toFixed(2)}x${each}`;
    };
    /** The rounds' ratios as one figure: their geometric mean with a 95% interval (Student's t). */
    const pairedMean = (figure: (r: PeerResult) => number): string => {
      const logs = roundRatios(figure).map(Math.log);
      if (logs.length < 2) return "";
      const mean = logs.reduce((sum, value) => sum + value, 0) / logs.length;
      const variance = logs.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (logs.length - 1);
      const half = studentT975(logs.length - 1) * Math.sqrt(variance / logs.length);
      return `, geometric mean of the rounds ${Math.exp(mean).toFixed(2)}x (95% interval ${Math.exp(mean - half).toFixed(2)}-${Math.exp(mean + half).toFixed(2)}x)`;
    };
    lines.push(
      `${ours.label}: throughput ${ratio((r) => r.perSecond)}, p50 latency ${ratio(p(0.5))}, ` +
        `p99 latency ${ratio(p(0.99))}, signer CPU per certificate ${ratio(signerCpuPerCertificateMs)}` +
        `${pairedMean(signerCpuPerCertificateMs)}; signer CPU ÷ the submitter's CPU ` +
        `${ratio(signerOverSubmitterCpu)}${pairedMean(signerOverSubmitterCpu)}`,
    );
  }
  return lines;
}

/** Student's t, two-sided 95%, by degrees of freedom from 1 (2.0 from 31 on). */
const studentT975Table = [
  12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.2, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.1,
  2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04,
];
const studentT975 = (degrees: number): number => studentT975Table[degrees - 1] ?? 2.0;

/** How the rounds ran, for the introduction. */
export const peerMethod = (): string =>
  `${peerRounds} interleaved round${peerRounds === 1 ? "" : "s"} (each round runs every signer once at each ` +
  `client limit, in alternating order, so no signer always runs first), each signer process fresh, ` +
  `${peerWarmUpCsrs} warm-up certificate${peerWarmUpCsrs === 1 ? "" : "s"} before the measured ones`;

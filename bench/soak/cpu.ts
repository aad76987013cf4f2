/**
 * Where the soak machine's CPU goes: every 5 s, the CPU time of kube-apiserver and etcd (found by
 * their command line naming the control plane's folder, so a restarted one is found again), of the
 * Lease holder and of the other replicas, of the harness itself (load generator, watch, pollers)
 * and of the whole machine (/proc/stat). Says whether the system can keep up at the load's rate, and
 * which part cannot.
 */
import fs from "node:fs";
import type { LeasePoller } from "./observers.js";
import type { Replicas } from "./replicas.js";

export const cpuComponents = [
  "kube-apiserver",
  "etcd",
  "leader",
  "follower",
  "harness",
  "rest of machine",
  "idle",
] as const;
export type CpuComponent = (typeof cpuComponents)[number];

/** Cores used by each component over one interval. */
export interface CpuInterval {
  at: number;
  seconds: number;
  cores: Record<CpuComponent, number>;
}

/** USER_HZ: the unit of /proc/<pid>/stat's utime and stime (100 on Linux). */
const ticksPerSecond = 100;

export class CpuSampler {
  readonly intervals: CpuInterval[] = [];
  private timer: NodeJS.Timeout | undefined;
  private previous:
    | { at: number; pids: Map<number, number>; machine: { busy: number; idle: number }; harness: number }
    | undefined;

  constructor(
    private readonly controlPlaneDir: string,
    private readonly replicas: Replicas,
    private readonly lease: LeasePoller,
  ) {}

  start(intervalMs = 5_000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  /** Mean cores per component between `from` and `to` (Date.now() values). */
  mean(from = 0, to = Infinity): Record<CpuComponent, number> {
    const chosen = this.intervals.filter((interval) => interval.at > from && interval.at <= to);
    const seconds = chosen.reduce((sum, interval) => sum + interval.seconds, 0);
    const result = Object.fromEntries(cpuComponents.map((component) => [component, 0])) as Record<
      CpuComponent,
      number
    >;
    if (seconds === 0) return result;
    for (const interval of chosen)
      for (const component of cpuComponents)
        result[component] += (interval.cores[component] * interval.seconds) / seconds;
    return result;
  }

  private sample(): void {
    const at = Date.now();
    const pids = new Map<number, number>();
    const owner = new Map<number, CpuComponent>();
    for (const [pid, component] of this.controlPlanePids()) owner.set(pid, component);
    const holder = this.lease.tenures.at(-1)?.holder;
    for (const incarnation of this.replicas.incarnations)
      if (!incarnation.stopped)
        owner.set(incarnation.process.pid, incarnation.identity === holder ? "leader" : "follower");
    for (const pid of owner.keys()) {
      const ticks = processTicks(pid);
      if (ticks !== undefined) pids.set(pid, ticks);
    }
    const machine = machineTicks();
    const usage = process.cpuUsage();
    const harness = (usage.user + usage.system) / 1e6;
    const previous = this.previous;
    this.previous = { at, pids, machine, harness };
    if (!previous) return;
    const seconds = (at - previous.at) / 1000;
    if (seconds <= 0) return;
    const cores = Object.fromEntries(cpuComponents.map((component) => [component, 0])) as Record<
      CpuComponent,
      number
    >;
    for (const [pid, ticks] of pids) {
      const before = previous.pids.get(pid);
      if (before === undefined) continue; // new since the last sample: counted from the next
      cores[owner.get(pid)!] += (ticks - before) / ticksPerSecond / seconds;
    }
    cores.harness = (harness - previous.harness) / seconds;
    const busy = (machine.busy - previous.machine.busy) / ticksPerSecond / seconds;
    cores.idle = (machine.idle - previous.machine.idle) / ticksPerSecond / seconds;
    const named = cpuComponents
      .filter((component) => component !== "rest of machine" && component !== "idle")
      .reduce((sum, component) => sum + cores[component], 0);
    cores["rest of machine"] = Math.max(0, busy - named);
    this.intervals.push({ at, seconds, cores });
  }

  /** kube-apiserver and etcd of this control plane (their command lines name its folder). */
  private controlPlanePids(): [number, CpuComponent][] {
    const found: [number, CpuComponent][] = [];
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let command: string;
      try {
        command = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
      } catch {
        continue; // exited meanwhile
      }
      if (!command.includes(this.controlPlaneDir)) continue;
      const binary = command.split("\0")[0] ?? "";
      if (binary.endsWith("/kube-apiserver")) found.push([Number(entry), "kube-apiserver"]);
      else if (binary.endsWith("/etcd")) found.push([Number(entry), "etcd"]);
    }
    return found;
  }
}

/** utime + stime of one process, in ticks; undefined when it is gone. */
function processTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  } catch {
    return undefined; // exited meanwhile
  }
}

/** The machine's busy and idle ticks, all CPUs together (/proc/stat's first line). */
function machineTicks(): { busy: number; idle: number } {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { busy: user! + nice! + system! + irq! + softirq! + steal!, idle: idle! + iowait! };
}

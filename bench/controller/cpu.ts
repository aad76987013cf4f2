/**
 * CPU accounting per process, from /proc: this process, and every process whose command line names the
 * control plane's folder (kube-apiserver, etcd, and a signer run with its kubeconfig).
 */
import { readFileSync, readdirSync } from "node:fs";
import type { ControlPlane } from "../../test/support/control-plane.js";

const clockTicksPerSecond = 100; // USER_HZ on Linux

export interface CpuSnapshot {
  self: NodeJS.CpuUsage;
  others: Map<string, number>; // process name -> CPU seconds
}

export function cpuSnapshot(controlPlane: ControlPlane): CpuSnapshot {
  const others = new Map<string, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (!commandLine.includes(controlPlane.dir)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const command = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const name = command === "MainThread" ? "node" : command; // Node names its main thread
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const seconds = (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond; // utime + stime
      others.set(name, (others.get(name) ?? 0) + seconds);
    } catch {
      continue; // gone meanwhile
    }
  }
  return { self: process.cpuUsage(), others };
}

export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  const self = process.cpuUsage(before.self);
  const spent: Record<string, number> = { bench: (self.user + self.system) / 1e6 };
  for (const [name, seconds] of after.others) spent[name] = seconds - (before.others.get(name) ?? 0);
  return spent;
}

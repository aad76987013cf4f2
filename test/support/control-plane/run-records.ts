/**
 * Run records: what lets the next test run clean up after a crashed one, and this process after
 * itself. Each control plane's processes are recorded under $CSR_SIGNER_CACHE/run; a later run
 * kills the process groups of a run whose owner is gone (only when their command line still names
 * that run's folder, since pids get reused) and removes its folder.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { signalGroup } from "./processes.js";

/** Prefix of every temporary folder; stale-run cleanup only ever deletes folders with this prefix. */
const TEMP_DIR_PREFIX = "csr-signer-control-plane-";
const PID_FILE_PREFIX = "control-plane-";

interface RunRecord {
  ownerPid: number;
  ownerStartTime: string | undefined;
  dir: string;
  processes: { name: string; pid: number }[];
}

export interface LiveRun {
  record: RunRecord;
  pidFile: string;
}

/** Control planes of this process, torn down synchronously if the process exits without stop(). */
const liveRuns = new Set<LiveRun>();

/** A fresh temporary folder for a control plane, and its run record (removed by unregisterRun). */
export async function startRun(): Promise<LiveRun> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_DIR_PREFIX));
  const run: LiveRun = {
    record: { ownerPid: process.pid, ownerStartTime: processStartTime(process.pid), dir, processes: [] },
    pidFile: path.join(ensureRunDirectory(), `${PID_FILE_PREFIX}${process.pid}-${path.basename(dir)}.json`),
  };
  registerRun(run);
  return run;
}

/** Records the process group of `name` (replacing an earlier one of that name, as after a restart). */
export function recordProcess(run: LiveRun, name: string, pid: number): void {
  const entry = run.record.processes.find((recorded) => recorded.name === name);
  if (entry === undefined) run.record.processes.push({ name, pid });
  else entry.pid = pid;
  writeRunRecord(run);
}

function runDirectory(): string {
  const cache = process.env.CSR_SIGNER_CACHE || path.join(os.homedir(), ".cache", "csr-signer");
  return path.join(cache, "run");
}

function ensureRunDirectory(): string {
  const directory = runDirectory();
  fs.mkdirSync(directory, { recursive: true });
  return directory;
}

function writeRunRecord(run: LiveRun): void {
  const temporary = `${run.pidFile}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(run.record, null, 2));
  fs.renameSync(temporary, run.pidFile);
}

/** Field 22 of /proc/<pid>/stat: with the pid, it tells a live owner from a reused pid. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined; // No such process.
  }
}

function processCommandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return undefined; // No such process.
  }
}

/** Kills the process groups and removes the folders of runs whose owning process is gone. */
export function cleanUpStaleRuns(): void {
  const directory = runDirectory();
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch {
    return; // No run directory yet: nothing ever ran here.
  }
  for (const name of names) {
    if (!name.startsWith(PID_FILE_PREFIX) || !name.endsWith(".json")) continue;
    const pidFile = path.join(directory, name);
    let record: RunRecord;
    try {
      record = JSON.parse(fs.readFileSync(pidFile, "utf8")) as RunRecord;
    } catch {
      // Half-written or removed meanwhile by its owner; a half-written one has no processes yet.
      continue;
    }
    const ownerAlive =
      record.ownerStartTime !== undefined && processStartTime(record.ownerPid) === record.ownerStartTime;
    if (ownerAlive) continue; // Another test run in progress, not ours to touch.
    for (const { name: processName, pid } of record.processes ?? []) {
      // Only a process still running with that run's folder on its command line; pids get reused.
      if (typeof pid === "number" && processCommandLine(pid)?.includes(record.dir)) {
        console.error(`control-plane: killing stale ${processName} (process group ${pid}) of a crashed run`);
        signalGroup(pid, "SIGKILL");
      }
    }
    if (isOurTemporaryFolder(record.dir)) fs.rmSync(record.dir, { recursive: true, force: true });
    fs.rmSync(pidFile, { force: true });
  }
}

function isOurTemporaryFolder(dir: unknown): dir is string {
  return (
    typeof dir === "string" &&
    path.dirname(dir) === path.resolve(os.tmpdir()) &&
    path.basename(dir).startsWith(TEMP_DIR_PREFIX)
  );
}

let exitHooksInstalled = false;

function registerRun(run: LiveRun): void {
  liveRuns.add(run);
  writeRunRecord(run);
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: no grace period, straight SIGKILL.
  process.on("exit", killLiveRunsSynchronously);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killLiveRunsSynchronously();
      process.removeListener(signal, onSignal);
      // Our listener replaced the default action (terminate): restore it unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export function unregisterRun(run: LiveRun): void {
  liveRuns.delete(run);
  fs.rmSync(run.pidFile, { force: true });
}

function killLiveRunsSynchronously(): void {
  for (const run of liveRuns) {
    for (const { pid } of [...run.record.processes].reverse()) signalGroup(pid, "SIGKILL");
    try {
      fs.rmSync(run.record.dir, { recursive: true, force: true });
    } catch {
      // A process may still be writing into it for a moment; the next run's cleanup removes it.
      continue;
    }
    unregisterRun(run);
  }
}

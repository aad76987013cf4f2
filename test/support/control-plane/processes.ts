/**
 * Supervision of the control plane's processes: each runs in its own process group (so the whole
 * group can be signalled), logs to a file, and can be terminated, frozen and inspected.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";

/** A process started by spawnInOwnGroup. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited; never rejects. */
  readonly exited: Promise<void>;
  exitDescription?: string;
}

export function spawnInOwnGroup(
  name: string,
  binary: string,
  args: string[],
  logPath: string,
  env?: NodeJS.ProcessEnv,
): ManagedProcess {
  const logFd = fs.openSync(logPath, "a");
  let child: ChildProcess;
  try {
    // detached: a new session and process group, so the whole group can be killed, and a Ctrl-C in the
    // terminal reaches only the test process, whose handlers then stop the control plane in order.
    child = spawn(binary, args, { detached: true, stdio: ["ignore", logFd, logFd], ...(env ? { env } : {}) });
  } finally {
    fs.closeSync(logFd);
  }
  // Not kept alive by the children: a run that forgets stop() still exits, and the exit hook kills them.
  child.unref();
  if (child.pid === undefined) {
    throw new Error(`could not start ${binary}`);
  }
  const managed: ManagedProcess = {
    name,
    pid: child.pid,
    logPath,
    exited: new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        managed.exitDescription = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve();
      });
      child.once("error", (error) => {
        managed.exitDescription = `spawn error: ${error.message}`;
        resolve();
      });
    }),
  };
  return managed;
}

/** SIGTERM to the process group, SIGKILL after a grace period; resolves once the leader has exited. */
export async function terminate(managed: ManagedProcess, graceMs = 5_000): Promise<void> {
  if (managed.exitDescription === undefined) {
    signalGroup(managed.pid, "SIGTERM");
    if (!(await exitsWithin(managed, graceMs))) {
      signalGroup(managed.pid, "SIGKILL");
      await exitsWithin(managed, graceMs);
    }
  }
  // Anything the leader left behind in its group.
  signalGroup(managed.pid, "SIGKILL");
}

/** Whether the process exits within the time; the timer is cleared so it never holds the event loop. */
async function exitsWithin(managed: ManagedProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([managed.exited.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export function signalGroup(processGroupId: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-processGroupId, signal);
  } catch (error) {
    // ESRCH: the group is already gone, which is the goal.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Why the first of `watched` that exited is gone ("<name> exited (<how>)"), or undefined while all run. */
export function exitedProcess(watched: readonly ManagedProcess[]): string | undefined {
  const dead = watched.find((managed) => managed.exitDescription !== undefined);
  return dead === undefined ? undefined : `${dead.name} exited (${dead.exitDescription})`;
}

export function describeLog(managed: ManagedProcess, lines = 40): string {
  let text: string;
  try {
    text = fs.readFileSync(managed.logPath, "utf8");
  } catch (error) {
    text = `(no log: ${String(error)})`;
  }
  const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
  return `--- last ${lines} lines of ${managed.logPath} (${managed.exitDescription ?? "running"}) ---\n${tail}`;
}

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The text of a file from a byte offset on ("" when it cannot be read). */
export function readFrom(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
}

/** Field 3 of /proc/<pid>/stat: R running, S sleeping, T stopped, Z zombie...; undefined when gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

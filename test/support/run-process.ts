/** Running a command-line tool (kubectl, helm) to completion for a test: its output, never a throw on exit codes. */
import { spawn } from "node:child_process";
import { repositoryRoot } from "./testbin.js";

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to its stdin, which is then closed. */
  input?: string | undefined;
  /** Killed (SIGKILL) after this, said in stderr (default 60 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Default: the repository root, where the tests' relative paths start. */
  cwd?: string;
}

/** Runs `binary` with `args` until it exits; rejects only when it cannot be started. */
export function runProcess(
  binary: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd: options.cwd ?? repositoryRoot,
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.env ? { env: options.env } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs} ms)`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

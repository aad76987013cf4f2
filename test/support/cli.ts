import { runCli } from "../../src/cli/main.js";
import type { CommandIo } from "../../src/cli/io.js";
import { systemIssuanceEnvironment, type IssuanceEnvironment } from "../../src/pki/issuance.js";

export interface CliRun {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs the CLI in-process, as `csr-signer <args>` with `stdin` on standard input. */
export async function runCliInProcess(
  args: string[],
  stdin = "",
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<CliRun> {
  const run: CliRun = { stdout: "", stderr: "", exitCode: 0 };
  const io: CommandIo = {
    stdout: (text) => void (run.stdout += text),
    stderr: (text) => void (run.stderr += text),
    readStdin: async () => stdin,
    setExitCode: (code) => void (run.exitCode = code),
    environment,
  };
  await runCli(args, io);
  return run;
}

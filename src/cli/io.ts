import { systemIssuanceEnvironment, type IssuanceEnvironment } from "../pki/issuance.js";

/** A mistake in how the command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The value of a required flag; a missing or empty one is a UsageError naming the flag. */
export function requiredFlag(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw new UsageError(`${flag} is required`);
  return value;
}

/** What a command touches outside itself, so tests can run commands in-process. */
export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  setExitCode(code: number): void;
  environment: IssuanceEnvironment;
}

export function processIo(): CommandIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of process.stdin) {
        size += (chunk as Buffer).length;
        if (size > 1 << 20) throw new UsageError("standard input is larger than 1 MiB");
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks).toString("utf8");
    },
    setExitCode: (code) => {
      process.exitCode = code;
    },
    environment: systemIssuanceEnvironment,
  };
}

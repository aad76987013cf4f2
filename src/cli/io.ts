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

/** What brokenPipeTolerantWriter needs of process.stdout/stderr. */
export interface WritableOutput {
  write(text: string): unknown;
  on(event: "error", listener: (error: NodeJS.ErrnoException) => void): unknown;
}

/**
 * Writes to `stream` until its reader goes away: `csr-signer ca root ... | head -1` closes the pipe
 * early, which is the reader's choice, not a failure. EPIPE (sync or as an 'error' event) drops
 * later output instead of crashing with a stack trace; the exit code stays the command's own.
 * Any other stream error is still thrown.
 */
export function brokenPipeTolerantWriter(stream: WritableOutput): (text: string) => void {
  let readerGone = false;
  const isBrokenPipe = (error: unknown): boolean => (error as { code?: string })?.code === "EPIPE";
  stream.on("error", (error) => {
    if (!isBrokenPipe(error)) throw error;
    readerGone = true;
  });
  return (text) => {
    if (readerGone) return;
    try {
      stream.write(text);
    } catch (error) {
      if (!isBrokenPipe(error)) throw error;
      readerGone = true;
    }
  };
}

export function processIo(): CommandIo {
  return {
    stdout: brokenPipeTolerantWriter(process.stdout),
    stderr: brokenPipeTolerantWriter(process.stderr),
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

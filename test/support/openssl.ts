import { execFileSync } from "node:child_process";

/** openssl exited non-zero; the message names the command and carries what openssl printed. */
export class OpensslError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly output: string,
    options?: ErrorOptions,
  ) {
    super(`openssl ${args.join(" ")} failed: ${output.trim()}`, options);
    this.name = "OpensslError";
  }
}

/**
 * Runs the openssl CLI, the independent judge of what csr-signer parses and issues, and the tool
 * that makes the control plane's certificates. `input` goes to its standard input; returns its
 * standard output.
 */
export function openssl(args: string[], input?: string, cwd?: string): string {
  try {
    return execFileSync("openssl", args, { input, cwd, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    throw new OpensslError(args, `${failure.stdout ?? ""}${failure.stderr ?? ""}` || String(error), {
      cause: error,
    });
  }
}

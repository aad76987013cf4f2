import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

/**
 * A self-signed CA certificate and key made by openssl (`req -x509`, 30 days unless `days` says
 * otherwise, CA:TRUE, keyCertSign
 * and cRLSign), as a kubernetes.io/tls Secret's files: tests that need a CA the project's own code
 * did not make (odd key sizes, large subjects, padded extensions).
 */
export function opensslSelfSignedCa(options: {
  subject: string;
  /** openssl's -newkey value and options (default: EC P-256). */
  key?: string[];
  extensions?: string[];
  days?: number;
}): { "tls.crt": Buffer; "tls.key": Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "openssl-ca-"));
  try {
    openssl(
      [
        "req",
        "-x509",
        "-newkey",
        ...(options.key ?? ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        "-nodes",
        "-subj",
        options.subject,
        "-days",
        String(options.days ?? 30),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        ...(options.extensions ?? []).flatMap((extension) => ["-addext", extension]),
        "-keyout",
        "tls.key",
        "-out",
        "tls.crt",
      ],
      undefined,
      dir,
    );
    return { "tls.crt": readFileSync(join(dir, "tls.crt")), "tls.key": readFileSync(join(dir, "tls.key")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A self-signed EC P-256 certificate (a CA's) from openssl valid for `days` (from now), as PEM. */
export function opensslSelfSignedCertificate(days: number): string {
  return opensslSelfSignedCa({ subject: "/CN=openssl-self-signed", days })["tls.crt"].toString("utf8");
}

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** What Go's crypto/x509 saw in one request (hack/testbin/x509-oracle/main.go writes it). */
export interface GoView {
  parsed: boolean;
  parseError?: string;
  signatureValid: boolean;
  signatureError?: string;
  /** One list per RDN; value is null when Go decoded something other than a string. */
  subject: { type: string; value: string | null; goType?: string }[][];
  dns: string[];
  email: string[];
  /** Hex of the 4 or 16 address bytes. */
  ip: string[];
  uri: string[];
  publicKey: { algorithm: string; bits?: number; exponent?: string; curve?: string } | null;
  extensions: { oid: string; critical: boolean; value: string }[];
  basicConstraintsCA: boolean | null;
}

const repositoryRoot = new URL("../..", import.meta.url).pathname;
const buildScript = join(repositoryRoot, "hack/testbin/build.sh");

/**
 * The Go helper as one long-lived process: a request per line in, a JSON report per line out.
 * `start` builds it through hack/testbin/build.sh (cached by a hash of its source, so this is a
 * no-op after the first build) and fails loudly when Go is missing: the test must not pass without it.
 */
export class X509Oracle {
  private readonly pending: ((line: string) => void)[] = [];
  private exited: string | undefined;

  private constructor(private readonly process: ChildProcessWithoutNullStreams) {
    createInterface({ input: process.stdout }).on("line", (line) => this.pending.shift()?.(line));
    let stderr = "";
    process.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    process.on("exit", (code) => {
      this.exited = `x509-oracle exited with ${code}: ${stderr}`;
      for (const resolve of this.pending.splice(0)) resolve("");
    });
  }

  static start(): X509Oracle {
    execFileSync(buildScript, ["x509-oracle"], { stdio: ["ignore", "inherit", "inherit"] });
    const dirs = execFileSync(buildScript, ["--print-dir"], { encoding: "utf8" });
    const dir = /^X509_ORACLE_BIN_DIR=(.*)$/m.exec(dirs)?.[1];
    if (!dir) throw new Error(`hack/testbin/build.sh --print-dir names no X509_ORACLE_BIN_DIR:\n${dirs}`);
    return new X509Oracle(spawn(join(dir, "x509-oracle"), [], { stdio: ["pipe", "pipe", "pipe"] }));
  }

  inspect(der: Uint8Array): Promise<GoView> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => {
      this.pending.push((line) =>
        this.exited && line === "" ? reject(new Error(this.exited)) : resolve(JSON.parse(line) as GoView),
      );
      this.process.stdin.write(Buffer.from(der).toString("base64") + "\n");
    });
  }

  close(): void {
    this.process.stdin.end();
  }
}

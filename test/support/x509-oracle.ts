import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { buildScript, testBinary } from "./testbin.js";

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
    const binary = testBinary("X509_ORACLE_BIN_DIR", "x509-oracle");
    return new X509Oracle(spawn(binary, [], { stdio: ["pipe", "pipe", "pipe"] }));
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

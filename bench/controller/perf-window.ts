/**
 * BENCH_PERF=DIR: each signer process sampled by Linux perf over exactly the measured window of each
 * round (`perf record -e cpu-clock -F 997 -p PID`, started with the window's CPU snapshot and stopped
 * with its last), then summed up by part: microseconds of CPU per certificate issued in the window,
 * over every thread of the process (its JavaScript thread, V8's compiler and garbage-collector
 * threads, libuv's) in user and kernel mode. `node --cpu-prof` sees only the main thread's
 * JavaScript and files native time under the JavaScript function that called it; this is where the
 * twelfth pass found what csr-signer spends beyond the Node floor (BENCHMARKS.md). The recordings stay
 * in DIR (`perf report -i FILE` reads them). Node signers get `--perf-basic-prof` so that their JIT
 * code is named (V8 writes /tmp/perf-PID.map); without names it is still counted as JavaScript. The
 * software clock is all a VM without hardware counters offers; the tool is Debian's linux-perf.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** Where recordings go; undefined: no perf sampling (the default). */
export const perfDirectory: string | undefined = process.env.BENCH_PERF || undefined;

/** The node flag that names JIT code for perf, added to Node signers' flags when sampling. */
export const perfNodeFlags: string[] = perfDirectory ? ["--perf-basic-prof"] : [];

/** Fails at once, before any round, when perf is missing or may not sample other processes. */
export function checkPerfAvailable(): void {
  if (!perfDirectory) return;
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("BENCH_PERF needs Linux perf on the PATH (Debian: apt-get install linux-perf)");
  }
  mkdirSync(perfDirectory, { recursive: true });
}

export interface PerfRecording {
  /** Stops sampling; resolves with the recording's file once perf has written it. */
  stop(): Promise<string>;
}

/** Starts sampling process `pid` (all its threads) into DIR/`name`.data; undefined when not asked for. */
export function startPerfRecording(pid: number, name: string): PerfRecording | undefined {
  if (!perfDirectory) return undefined;
  const file = join(perfDirectory, `${name}.data`);
  const perf: ChildProcess = spawn(
    "perf",
    ["record", "-e", "cpu-clock", "-F", "997", "-p", String(pid), "-o", file, "--quiet"],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) => perf.once("exit", () => resolve()));
  return {
    stop: async () => {
      perf.kill("SIGINT"); // perf writes the recording and exits on SIGINT
      await exited;
      return file;
    },
  };
}

/** The parts CPU is summed up by, in the report's order. */
export const perfParts = [
  "JavaScript (JIT code)",
  "V8 builtins (ICs, Map and Set operations, async functions, object literals)",
  "V8 runtime (C++)",
  "V8 compilers (TurboFan, Maglev)",
  "garbage collection",
  "JSON parse and stringify",
  "OpenSSL",
  "WebAssembly (undici's llhttp)",
  "Node and libuv",
  "libc (memory, strings)",
  "kernel",
  "Go (kube-controller-manager)",
  "other",
] as const;
export type PerfPart = (typeof perfParts)[number];

const openSslSymbol =
  /^(ecp_|_?_?ecp_nistz256|sha\d|SHA\d|sha1_|EVP_|evp_|ossl_|OSSL_|bn_|BN_|CRYPTO_|ERR_|EC_|ec_|x25519|aesni_|aes_|gcm_|CRYPTO_gcm|tls_|ssl_|SSL_|OPENSSL_|getrn|OBJ_|ASN1_|asn1_|PEM_|RAND_|rand_|DRBG|lh_|sk_|BIO_|bio_|ECDSA_|ecdsa_|der2key|RSA_|rsa_|md_|HMAC|hmac_|KDF|mul_|obj_)/;
const gcSymbol =
  /Scaveng|Heap::|MarkCompact|Marking|Mark|Sweep|Evacuat|Compact|RememberedSet|SlotSet|MemoryChunk|PagedSpace|NewSpace|ConcurrentMarking|MinorMS|GCTracer|GlobalHandles/;
const compilerSymbol =
  /compiler::|maglev::|turboshaft|Turbofan|TurboFan|interpreter::|Bytecode|Parser::|parsing::|Compiler::/;

/** Which part a sampled leaf frame (perf's symbol and shared object) belongs to. Pure. */
export function perfPart(symbol: string, sharedObject: string): PerfPart {
  if (sharedObject.startsWith("[kernel")) return "kernel";
  if (sharedObject.endsWith("kube-controller-manager")) return "Go (kube-controller-manager)";
  const jit =
    sharedObject.startsWith("/tmp/perf-") || sharedObject === "[unknown]" || sharedObject.startsWith("[JIT]");
  if (jit)
    return symbol.includes("wasm-function") ? "WebAssembly (undici's llhttp)" : "JavaScript (JIT code)";
  if (symbol.startsWith("Builtins_"))
    return "V8 builtins (ICs, Map and Set operations, async functions, object literals)";
  if (/Json/.test(symbol)) return "JSON parse and stringify";
  if (openSslSymbol.test(symbol)) return "OpenSSL";
  if (gcSymbol.test(symbol)) return "garbage collection";
  if (compilerSymbol.test(symbol)) return "V8 compilers (TurboFan, Maglev)";
  if (symbol.startsWith("v8::") || symbol.startsWith("icu_")) return "V8 runtime (C++)";
  if (
    symbol.startsWith("node::") ||
    symbol.startsWith("uv_") ||
    symbol.startsWith("uv__") ||
    symbol.startsWith("simdutf::")
  )
    return "Node and libuv";
  if (
    sharedObject.includes("libc.so") ||
    sharedObject.includes("libstdc++") ||
    sharedObject.includes("libm.so")
  )
    return "libc (memory, strings)";
  return "other";
}

/**
 * Microseconds of CPU per certificate by part, from `perf script -F ip,sym,dso` output, each sample
 * 1/997 s of CPU: one line a sample, or (a recording made with call stacks, `perf record -g`) one
 * block a sample, its first line the frame that was running. Lines perf could not read are "other".
 */
export function perfBreakdownOf(script: string, certificates: number): Record<PerfPart, number> {
  const out = Object.fromEntries(perfParts.map((part) => [part, 0])) as Record<PerfPart, number>;
  const perSample = 1e6 / 997 / Math.max(1, certificates);
  const blocks = script.split(/\n[ \t]*\n/).filter((block) => block.trim() !== "");
  const samples =
    blocks.length > 1
      ? blocks.map((block) => block.split("\n").find((line) => line.trim() !== "")!)
      : script.split("\n").filter((line) => line.trim() !== "");
  for (const line of samples) {
    const match = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$/.exec(line);
    out[match ? perfPart(match[1]!, match[2]!) : "other"] += perSample;
  }
  return out;
}

/** Reads a recording back (`perf script`) and sums it up by part; per certificate of the window. */
export function perfBreakdown(file: string, certificates: number): Record<PerfPart, number> {
  const script = execFileSync("perf", ["script", "-i", file, "-F", "ip,sym,dso"], {
    encoding: "utf8",
    maxBuffer: 512 * 1024 * 1024,
    stdio: ["ignore", "pipe", "ignore"],
  });
  return perfBreakdownOf(script, certificates);
}

/** The Markdown table: each signer at each client limit, the mean of its rounds, by part. */
export function perfReport(
  rounds: { contender: string; label: string; perf?: Record<PerfPart, number> }[],
): string[] {
  const sampled = rounds.filter((r) => r.perf !== undefined);
  if (sampled.length === 0) return [];
  const columns = [...new Set(sampled.map((r) => `${r.contender}, ${r.label}`))];
  const mean = (column: string, part: PerfPart): number => {
    const of = sampled.filter((r) => `${r.contender}, ${r.label}` === column);
    return of.reduce((sum, r) => sum + r.perf![part], 0) / of.length;
  };
  const total = (column: string): number => perfParts.reduce((sum, part) => sum + mean(column, part), 0);
  const rows = [
    `**Where each signer's CPU went** (BENCH_PERF: Linux perf over each round's measured window, every ` +
      `thread and the kernel, 997 samples a second; microseconds of CPU per certificate, the mean of the ` +
      `rounds; recordings in \`${perfDirectory ?? ""}\`).`,
    "",
    `| part | ${columns.join(" | ")} |`,
    `|---|${columns.map(() => "---").join("|")}|`,
    `| **total** | ${columns.map((column) => `**${total(column).toFixed(0)}**`).join(" | ")} |`,
  ];
  for (const part of perfParts)
    rows.push(`| ${part} | ${columns.map((column) => mean(column, part).toFixed(0)).join(" | ")} |`);
  rows.push("");
  return rows;
}

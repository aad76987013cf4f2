/**
 * BENCH_PERF=DIR (peer phase only): each signer process sampled by Linux perf over the measured window
 * of each round. `perf record -e cpu-clock -F 997 -k CLOCK_MONOTONIC -p PID` starts before the round's
 * 2 s pause, so that it is attached when the window opens, and the samples are cut to the window by
 * their timestamps (the same clock as process.hrtime). They are summed up by part: microseconds of
 * CPU per certificate issued in the window,
 * over every thread of the process (its JavaScript thread, V8's compiler and garbage-collector
 * threads, libuv's) in user and kernel mode. `node --cpu-prof` sees only the main thread's
 * JavaScript and files native time under the JavaScript function that called it; this is where the
 * twelfth pass found what csr-signer spends beyond the Node floor (BENCHMARKS.md). The recordings stay
 * in DIR (`perf report -i FILE` reads them; JIT names come from /tmp/perf-PID.map, which V8 writes
 * outside DIR, while it lasts). Node signers get `--perf-basic-prof` so that their JIT code is named
 * (kube-controller-manager needs nothing); without names it is still counted as JavaScript. The
 * software clock is all a VM without hardware counters offers; the tool is Debian's linux-perf. The
 * main table's /proc CPU figures include what sampling costs each signer.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

/** Where recordings go; undefined: no perf sampling (the default). */
export const perfDirectory: string | undefined = process.env.BENCH_PERF || undefined;

/** The node flag that names JIT code for perf, added to Node signers' flags when sampling. */
export const perfNodeFlags: string[] = perfDirectory ? ["--perf-basic-prof"] : [];

/**
 * Fails at once, before any round, when perf is missing or may not sample other processes with their
 * kernel time (root, or kernel.perf_event_paranoid at most 1; otherwise perf falls back to user
 * space alone and the kernel row would read 0).
 */
export function checkPerfAvailable(): void {
  if (!perfDirectory) return;
  try {
    execFileSync("perf", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("BENCH_PERF needs Linux perf on the PATH (Debian: apt-get install linux-perf)");
  }
  const paranoid = Number(readFileSync("/proc/sys/kernel/perf_event_paranoid", "utf8").trim());
  if (process.getuid?.() !== 0 && !(paranoid <= 1))
    throw new Error(
      `BENCH_PERF needs root or kernel.perf_event_paranoid <= 1 to sample the kernel too (it is ${paranoid})`,
    );
  mkdirSync(perfDirectory, { recursive: true });
}

export interface PerfRecording {
  /** Marks now (the same clock as the samples') as the window's start. */
  openWindow(): void;
  /** Marks now as the window's end, stops sampling, and resolves with the window's samples (`perf script`). */
  closeWindow(): Promise<string>;
}

const monotonicSeconds = (): string => {
  const nanoseconds = process.hrtime.bigint(); // CLOCK_MONOTONIC, as `perf record -k CLOCK_MONOTONIC`
  return `${nanoseconds / 1_000_000_000n}.${String(nanoseconds % 1_000_000_000n).padStart(9, "0")}`;
};

/** Starts sampling process `pid` (all its threads) into DIR/`name`.data; undefined when not asked for. */
export function startPerfRecording(pid: number, name: string): PerfRecording | undefined {
  if (!perfDirectory) return undefined;
  const file = join(perfDirectory, `${name}.data`);
  rmSync(file, { force: true }); // never read a recording left by an earlier run
  let stderr = "";
  let failure: Error | undefined;
  const perf: ChildProcess = spawn(
    "perf",
    ["record", "-e", "cpu-clock", "-F", "997", "-k", "CLOCK_MONOTONIC", "-N", "-p", String(pid), "-o", file],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  perf.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-4096)));
  perf.once("error", (error) => (failure = error));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    perf.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let start: string | undefined;
  return {
    openWindow: () => {
      start = monotonicSeconds();
    },
    closeWindow: async () => {
      const end = monotonicSeconds();
      perf.kill("SIGINT"); // perf writes the recording and exits on SIGINT
      const { code, signal } = await exited;
      if (failure || !(code === 0 || signal === "SIGINT" || code === 130))
        throw new Error(
          `perf record for ${name} failed (${failure?.message ?? `exit ${code ?? signal}`}): ${stderr.trim()}`,
        );
      if (start === undefined) throw new Error(`perf window for ${name} was never opened`);
      const script = execFileSync(
        "perf",
        ["script", "-i", file, "-F", "ip,sym,dso", "--time", `${start},${end}`],
        { encoding: "utf8", maxBuffer: 512 * 1024 * 1024, stdio: ["ignore", "pipe", "ignore"] },
      );
      if (script.trim() === "")
        throw new Error(`perf recorded no samples of ${name} in its window (${file})`);
      return script;
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
  /^(ecp_|_?_?ecp_nistz256|sha\d|SHA\d|sha1_|EVP_|evp_|ossl_|OSSL_|bn_|BN_|CRYPTO_|ERR_|EC_|ec_|x25519|aesni_|_aesni_|aes_|gcm_|tls_|tls1|tls13|ssl_|ssl3_|SSL_|OPENSSL_|getrn|OBJ_|ASN1_|asn1_|PEM_|RAND_|rand_|drbg_|DRBG|lh_|sk_|BIO_|bio_|ECDSA_|ecdsa_|der2key|RSA_|rsa_|md_|HMAC|hmac_|KDF|mul_|obj_|X509|x509|d2i_|i2d_|WPACKET|PACKET|decoder_|encoder_|bin2bn|bn2bin)/;
/** Symbols of the node binary that are not OpenSSL though they are plain C (no namespace). */
const nodeBinaryNonOpenSsl =
  /^(Builtins_|uv_|uv__|llhttp|Brotli|deflate|inflate|crc32|adler32|zcalloc|zcfree|nghttp2_|nghttp3_|ngtcp2_|ares_|uvwasi|sqlite3|_start|@plt)/;
const gcSymbol =
  /^v8::internal::.*(Scaveng|MarkCompact|MinorMarkSweep|ConcurrentMarking|IncrementalMarking|MarkingVisitor|MarkingWorklist|MarkingBarrier|Sweeper|Evacuat|RememberedSet|SlotSet|GCTracer|Heap::Collect|Heap::Perform|Heap::Scavenge|Heap::MarkCompact|Heap::MinorMarkSweep)/;
const compilerSymbol =
  /compiler::|maglev::|turboshaft|Turbofan|TurboFan|interpreter::|Bytecode|Parser::|parsing::|Compiler::|wasm::/;

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
  if (compilerSymbol.test(symbol)) return "V8 compilers (TurboFan, Maglev)";
  if (gcSymbol.test(symbol)) return "garbage collection";
  if (/^(node::|non-virtual thunk to node::|ncrypto::|nbytes::|simdutf::|uv_|uv__)/.test(symbol))
    return "Node and libuv";
  if (symbol.includes("v8::") || symbol.startsWith("icu_")) return "V8 runtime (C++)";
  if (
    sharedObject.includes("libc.so") ||
    sharedObject.includes("libstdc++") ||
    sharedObject.includes("libm.so") ||
    sharedObject === "[vdso]"
  )
    return "libc (memory, strings)";
  // The rest of the node binary without a C++ namespace is OpenSSL's (statically linked) C.
  if (sharedObject.endsWith("/node") && !symbol.includes("::") && !nodeBinaryNonOpenSsl.test(symbol))
    return "OpenSSL";
  return "other";
}

/**
 * Microseconds of CPU per certificate by part, from `perf script -F ip,sym,dso` output, each sample
 * 1/997 s of CPU: one line a sample, or (a recording made with call stacks, `perf record -g`) one
 * block a sample, its first line the frame that was running. Lines perf could not read are "other".
 */
export function perfBreakdownOf(script: string, certificates: number): Record<PerfPart, number> {
  const out = Object.fromEntries(perfParts.map((part) => [part, 0])) as Record<PerfPart, number>;
  // No certificate issued in the window: no figure per certificate (NaN, never a made-up one).
  const perSample = certificates > 0 ? 1e6 / 997 / certificates : Number.NaN;
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

/** The Markdown table: each signer at each client limit, the mean of its rounds, by part. */
export function perfReport<
  Round extends { contender: string; label: string; perf?: Record<PerfPart, number> },
>(
  rounds: Round[],
  /** The signer's /proc CPU µs per certificate over the same window (the main table's figure). */
  procMicroseconds: (round: Round) => number,
): string[] {
  const sampled = rounds.filter((r) => r.perf !== undefined);
  if (sampled.length === 0) return [];
  const columns = [...new Set(sampled.map((r) => `${r.contender}, ${r.label}`))];
  const of = (column: string): Round[] => sampled.filter((r) => `${r.contender}, ${r.label}` === column);
  const mean = (column: string, figure: (r: Round) => number): number =>
    of(column).reduce((sum, r) => sum + figure(r), 0) / of(column).length;
  const part = (name: PerfPart) => (r: Round) => r.perf![name];
  const total = (r: Round): number => perfParts.reduce((sum, name) => sum + r.perf![name], 0);
  const rows = [
    `**Where each signer's CPU went** (BENCH_PERF: Linux perf over each round's measured window, every ` +
      `thread and the kernel, 997 samples a second; microseconds of CPU per certificate, the mean of the ` +
      `rounds, where the table above gives medians; Node signers also ran with \`--perf-basic-prof\`; ` +
      `recordings in \`${perfDirectory ?? ""}\`). perf's total is its samples' count; /proc's is the ` +
      `main table's figure for the same window, sampling included.`,
    "",
    `| part | ${columns.join(" | ")} |`,
    `|---|${columns.map(() => "---").join("|")}|`,
    `| **total** (perf) | ${columns.map((column) => `**${mean(column, total).toFixed(0)}**`).join(" | ")} |`,
    `| /proc, the same window | ${columns.map((column) => mean(column, procMicroseconds).toFixed(0)).join(" | ")} |`,
  ];
  for (const name of perfParts)
    rows.push(`| ${name} | ${columns.map((column) => mean(column, part(name)).toFixed(0)).join(" | ")} |`);
  rows.push("");
  return rows;
}

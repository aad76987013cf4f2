import { expect } from "chai";
import { perfBreakdownOf, perfPart, perfParts, perfReport } from "../../../bench/controller/perf-window.js";

const node = "/root/.cache/csr-signer/node-v24.21.0/bin/node";
const libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";

// Leaf frames as `perf script -F ip,sym,dso` printed them for csr-signer (2026-12-03, twelfth pass).
const samples: [string, string][] = [
  ["\t ffffffff813ae453 finish_task_switch.isra.0 ([kernel.kallsyms])", "kernel"],
  [
    "\t 7fd012967c17 JS:*'search file:///work/main/dist/csr-signer.mjs:3:21643 (/tmp/perf-1821.map)",
    "JavaScript (JIT code)",
  ],
  ["\t 7fd0129a0000 JS:*'wasm-function[20]-20-liftoff (/tmp/perf-1821.map)", "WebAssembly (undici's llhttp)"],
  ["\t 7fd0129a0010 [unknown] ([unknown])", "JavaScript (JIT code)"],
  [
    `\t 167b90d Builtins_LoadIC (${node})`,
    "V8 builtins (ICs, Map and Set operations, async functions, object literals)",
  ],
  [`\t 1ba28ff ecp_nistz256_avx2_gather_w7 (${node})`, "OpenSSL"],
  [`\t 1ba247a __ecp_nistz256_sqr_montx (${node})`, "OpenSSL"],
  [
    `\t bc67cb v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot> (${node})`,
    "garbage collection",
  ],
  [`\t cd0000 v8::internal::JsonParser<unsigned char>::ScanJsonString (${node})`, "JSON parse and stringify"],
  [`\t ce0000 v8::internal::compiler::GraphReducer::ReduceTop (${node})`, "V8 compilers (TurboFan, Maglev)"],
  [`\t cf0000 v8::internal::StringTable::LookupKey (${node})`, "V8 runtime (C++)"],
  [`\t 1622581 uv__io_poll (${node})`, "Node and libuv"],
  [`\t 98a9a malloc (${libc})`, "libc (memory, strings)"],
  [`\t 1c00000 _aesni_ctr32_ghash_6x (${node})`, "OpenSSL"],
  [`\t 1c00010 bin2bn (${node})`, "OpenSSL"],
  [`\t 1c00020 WPACKET_put_bytes__ (${node})`, "OpenSSL"],
  [`\t 1c00030 ssl3_read_bytes (${node})`, "OpenSSL"],
  [`\t 1c00040 decoder_cache_entry_hash (${node})`, "OpenSSL"],
  [`\t 1c00050 v8::internal::GlobalHandles::Destroy (${node})`, "V8 runtime (C++)"],
  [
    `\t 1c00060 v8::internal::compiler::RegisterAllocator::MarkFixedUse (${node})`,
    "V8 compilers (TurboFan, Maglev)",
  ],
  [`\t 1c00070 ncrypto::MarkPopErrorOnReturn::~MarkPopErrorOnReturn (${node})`, "Node and libuv"],
  [`\t 1c00080 non-virtual thunk to node::LibuvStreamWrap::OnUvRead (${node})`, "Node and libuv"],
  [`\t 1c00090 v8::internal::MarkCompactCollector::ProcessMarkingWorklist (${node})`, "garbage collection"],
  [`\t 1c000a0 llhttp_execute (${node})`, "other"],
  ["\t 7ffd1234 __vdso_clock_gettime ([vdso])", "libc (memory, strings)"],
  [`\t 4242 runtime.mallocgc (/usr/local/bin/kube-controller-manager)`, "Go (kube-controller-manager)"],
  [`\t 4243 somewhere_else (/usr/lib/x86_64-linux-gnu/libz.so.1)`, "other"],
];

describe("perf-window: make bench-controller's BENCH_PERF breakdown", () => {
  for (const [line, part] of samples) {
    it(`files ${line.trim().split(" ").slice(1, 2).join("")} under ${part}`, () => {
      const match = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$/.exec(line)!;
      expect(perfPart(match[1]!, match[2]!)).to.equal(part);
    });
  }

  it("counts one sample a line, 1/997 s each, per certificate", () => {
    const script = samples.map(([line]) => line).join("\n") + "\n";
    const breakdown = perfBreakdownOf(script, 2);
    // Every sample over 2 certificates: half a sample of 1,003 µs each per certificate.
    const total = perfParts.reduce((sum, part) => sum + breakdown[part], 0);
    expect(total).to.be.closeTo((samples.length * 1e6) / 997 / 2, 1e-6);
    expect(breakdown.OpenSSL).to.be.closeTo((7 * 1e6) / 997 / 2, 1e-6);
    expect(breakdown.kernel).to.be.closeTo(1e6 / 997 / 2, 1e-6);
  });

  it("takes only the running frame of each sample of a recording with call stacks", () => {
    const script = [
      `\t 1ba28ff ecp_nistz256_avx2_gather_w7 (${node})`,
      `\t 1622581 uv__io_poll (${node})`,
      "",
      "\t ffffffff813ae453 finish_task_switch.isra.0 ([kernel.kallsyms])",
      `\t 1622581 uv__io_poll (${node})`,
      "",
    ].join("\n");
    const breakdown = perfBreakdownOf(script, 1);
    expect(breakdown.OpenSSL).to.be.closeTo(1e6 / 997, 1e-6);
    expect(breakdown.kernel).to.be.closeTo(1e6 / 997, 1e-6);
    expect(breakdown["Node and libuv"]).to.equal(0);
  });

  it("reports the mean of each signer's rounds by part, and nothing without recordings", () => {
    const zero = Object.fromEntries(perfParts.map((part) => [part, 0])) as ReturnType<typeof perfBreakdownOf>;
    const round = (kernel: number, proc: number) => ({
      contender: "csr-signer",
      label: "limit raised to 5,000 QPS",
      perf: { ...zero, kernel } as typeof zero | undefined,
      proc,
    });
    const unsampled = { contender: "kube-controller-manager", label: "x", perf: undefined, proc: 7 };
    const table = perfReport([round(100, 150), round(300, 350), unsampled], (r) => r.proc);
    expect(table).to.include("| **total** (perf) | **200** |");
    expect(table).to.include("| /proc, the same window | 250 |");
    expect(table).to.include("| kernel | 200 |");
    expect(perfReport([unsampled], (r) => r.proc)).to.deep.equal([]);
  });

  it("gives no figure per certificate when none was issued in the window", () => {
    const figure = perfBreakdownOf(`\t 98a9a malloc (${libc})\n`, 0)["libc (memory, strings)"];
    expect(Number.isNaN(figure)).to.equal(true);
  });
});

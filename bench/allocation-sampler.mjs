/**
 * Preloaded into a controller under load to see what it allocates per certificate, collected garbage
 * included (V8's sampling heap profiler through an inspector session; `--heap-prof` keeps only what
 * is alive at the end):
 *   BENCH_PHASES=peer BENCH_CONTENDERS=csr-signer BENCH_QPS_MODES=0 BENCH_PEER_ROUNDS=1 BENCH_CSRS=4000 \
 *     BENCH_NODE_FLAGS="--import ./bench/allocation-sampler.mjs" make -s bench-controller
 * Samples from ALLOCATION_SAMPLER_START_MS (14,000) after start for ALLOCATION_SAMPLER_MS (15,000),
 * then writes the profile (Chrome DevTools' .heapprofile format, with source positions in the
 * bundle: dist/csr-signer.mjs.map maps them) to ALLOCATION_SAMPLER_DIR (the system temp folder).
 * Divide the bytes by the certificates issued in that window. Only for `controller` processes.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setTimeout } from "node:timers";

if (process.argv.includes("controller")) {
  const session = new Session();
  session.connect();
  const startMs = Number(process.env.ALLOCATION_SAMPLER_START_MS ?? 14_000);
  const forMs = Number(process.env.ALLOCATION_SAMPLER_MS ?? 15_000);
  const folder = process.env.ALLOCATION_SAMPLER_DIR ?? tmpdir();
  setTimeout(() => {
    const options = {
      samplingInterval: 8192,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    };
    session.post("HeapProfiler.enable", () =>
      session.post("HeapProfiler.startSampling", options, () => {
        setTimeout(() => {
          session.post("HeapProfiler.stopSampling", (error, result) => {
            if (error) return process.stderr.write(`allocation sampler: ${error.message}\n`);
            const file = join(folder, `csr-signer-${process.pid}.heapprofile`);
            writeFileSync(file, JSON.stringify(result.profile));
            process.stderr.write(`allocation sampler: wrote ${file}\n`);
          });
        }, forMs).unref();
      }),
    );
  }, startMs).unref();
}

/**
 * Preloaded (`node --expose-gc --import bench/heap-reporter.mjs dist/csr-signer.mjs controller ...`)
 * into the controller that bench/rss-child.ts measures: the controller itself runs exactly as the
 * CLI wires it, and this only reports the process's memory over the IPC channel the parent opened.
 *   {"type":"memory",...}  every 500 ms: rss now, peak of the 100 ms samples, kernel VmHWM, heap
 *   {"type":"gc",...}      after the parent sends "gc" (a full collection, then the figures)
 *   {"type":"reset",...}   after "reset": the peak and VmHWM start again from the current RSS
 * Plain JavaScript, so nothing (tsx, type stripping) is loaded that the deployed controller does not load.
 */
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { setInterval } from "node:timers";

if (process.send) {
  /** Kernel's high-water mark of this process's resident set (catches peaks between samples). */
  const vmHwmBytes = () => {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  };
  let peakRss = process.memoryUsage.rss();
  const memory = (type) => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    return {
      type,
      at: Date.now(),
      rss: usage.rss,
      peakRss,
      vmHwm: vmHwmBytes(),
      heapUsed: usage.heapUsed,
      heapTotal: usage.heapTotal,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
    };
  };
  const send = (message) => process.send?.(message);
  setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100).unref();
  setInterval(() => send(memory("memory")), 500).unref();
  process.on("message", (command) => {
    if (command === "reset") {
      peakRss = process.memoryUsage.rss();
      writeFileSync("/proc/self/clear_refs", "5"); // "5" resets the kernel's peak RSS (VmHWM)
      send(memory("reset"));
    } else if (command === "gc") {
      globalThis.gc?.();
      send({ ...memory("gc"), collected: globalThis.gc !== undefined });
    }
  });
  // The parent gone: stop as a pod does. The channel itself must not keep the controller alive.
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
  process.channel?.unref();
}

/**
 * A young-generation collection after every 8 MiB of response bodies, when node runs with
 * --expose-gc (the image's entrypoint does); without it, nothing.
 *
 * Why: each chunk of a response body arrives as a Buffer whose bytes live outside V8's heap. They
 * are freed only when a collection finds the Buffer dead, and scavenges are paced by what JavaScript
 * allocates, not by those bytes (V8 starts a full collection only after tens of MiB of them). A
 * relist of padded CSRs (1.3 MB each, cut while they stream) allocates little on the heap per
 * megabyte read, so with the image's 8 MiB semi-spaces the dropped chunks piled up: +80 MiB over
 * idle at `make bench-memory`'s restart, +39 MiB with this (BENCHMARKS.md, eighth pass). An ordinary
 * certificate's responses are about 10 KB (its watch events' text alone 9.5 KiB in the allocation
 * sampler, BENCHMARKS.md eighth pass), so under load this asks for one extra scavenge per ~800
 * certificates; a tenant would have to make the API server send 8 MiB for each.
 */
export type CollectGarbage = (options: { type: "minor"; execution: "async" }) => void;

export const scavengeEveryBytes = 8 * 1024 * 1024;

/** Counts response bytes and asks `collect` for a scavenge each time `everyBytes` more have come. */
export function responseBytesScavenger(
  collect: CollectGarbage | undefined,
  everyBytes = scavengeEveryBytes,
): (bytes: number) => void {
  if (!collect) return () => {};
  let sinceLast = 0;
  let working = true;
  return (bytes) => {
    sinceLast += bytes;
    if (!working || sinceLast < everyBytes) return;
    sinceLast = 0;
    try {
      // Asynchronous: V8 runs it between tasks, never inside the response handler that counted.
      // The options object is V8's gc extension's, not a Node API: the unit test runs it on Node.
      collect({ type: "minor", execution: "async" });
    } catch {
      working = false; // a V8 that refuses the options: reading responses matters more than this
    }
  };
}

/** node's gc(), defined only under --expose-gc. */
const exposedGc = (globalThis as { gc?: CollectGarbage }).gc;

/** The process's one counter: the bytes piling up are the process's, whichever client read them. */
export const countResponseBytes = responseBytesScavenger(exposedGc);

/** Whether this process asks for scavenges (node ran with --expose-gc): the start-up line says so. */
export const scavengesResponseBytes = exposedGc !== undefined;

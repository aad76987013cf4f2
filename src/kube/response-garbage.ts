/**
 * A young-generation collection after every 16 MiB of response bodies, when node runs with
 * --expose-gc (the image's entrypoint does); without it, nothing.
 *
 * Why: each chunk of a response body arrives as a Buffer whose bytes live outside V8's heap. They
 * are freed only when a scavenge finds the Buffer dead, and scavenges are paced by what JavaScript
 * allocates, not by those bytes. A relist of padded CSRs (1.3 MB each, cut while they stream)
 * allocates little on the heap per megabyte read, so with the image's 8 MiB semi-spaces the dropped
 * chunks piled up: +80 MiB over idle at `make bench-memory`'s restart, +39 MiB with this
 * (BENCHMARKS.md, eighth pass). An ordinary certificate's watch events and write are about 10 KB,
 * so under load this asks for one extra scavenge per ~1,600 certificates.
 */
export type CollectGarbage = (options: { type: "minor"; execution: "async" }) => void;

export const scavengeEveryBytes = 16 * 1024 * 1024;

/** Counts response bytes and asks `collect` for a scavenge each time `everyBytes` more have come. */
export function responseBytesScavenger(
  collect: CollectGarbage | undefined,
  everyBytes = scavengeEveryBytes,
): (bytes: number) => void {
  if (!collect) return () => {};
  let sinceLast = 0;
  return (bytes) => {
    sinceLast += bytes;
    if (sinceLast < everyBytes) return;
    sinceLast = 0;
    // Asynchronous: V8 runs it between tasks, never inside the response handler that counted.
    collect({ type: "minor", execution: "async" });
  };
}

/** The process's one counter: the bytes piling up are the process's, whichever client read them. */
export const countResponseBytes = responseBytesScavenger((globalThis as { gc?: CollectGarbage }).gc);

/**
 * List and watch calls that read the response as bytes, for the informers. With `maxStringBytes`,
 * long string values are cut out before parsing (see long-strings.ts), for resources whose objects
 * may carry megabytes we will not read: such a value never becomes a string.
 */
import type { KubeApi, Query } from "./api-client.js";
import { LongStringCutter } from "./long-strings.js";
import { WatchLines } from "./watch-lines.js";

/**
 * A GET whose body is handed to `onChunk` chunk by chunk as it arrives, resolving at its end (a
 * watch: `begun` once the response has begun, `signal` aborts it). Each chunk is consumed
 * synchronously when undici receives it and can be dropped at once, with no queue of chunks, no
 * promise per chunk, and no chunk retained after `onChunk` returns (the caller copies what it keeps).
 * Under ~1 GB of watch bytes fetch's web stream queue and per-chunk garbage kept tens of MiB of
 * buffers alive and grew V8's young generation (see BENCHMARKS.md, memory under padded CSRs).
 */
async function streamGet(
  api: KubeApi,
  path: string,
  query: Query,
  onChunk: (chunk: Buffer) => void,
  watch?: { signal: AbortSignal; begun: () => void },
): Promise<void> {
  await api.stream(
    path,
    query,
    onChunk,
    watch ? { signal: watch.signal, unthrottled: true, begun: watch.begun } : {},
  );
}

/** One list page; with `maxStringBytes`, string values longer than that are cut before parsing. */
export async function listPage<T>(
  api: KubeApi,
  path: string,
  query: Query,
  maxStringBytes: number | undefined,
): Promise<T> {
  if (maxStringBytes === undefined) return api.get<T>(path, query);
  // Cut as the body streams in: the page is never held whole, only what remains after cutting.
  const cutter = new LongStringCutter(maxStringBytes);
  const kept: Buffer[] = [];
  await streamGet(api, path, query, (chunk) => {
    cutter.push(chunk);
    kept.push(...cutter.take());
  });
  // Without the open string's bytes (held by the cutter) the rest could parse: refused as JSON.parse
  // of the whole body would refuse it.
  if (cutter.endsInString) throw new SyntaxError(`${path}: the response ends inside a string`);
  return JSON.parse(Buffer.concat(kept).toString("utf8")) as T;
}

/**
 * A watch, one event per line; with `maxStringBytes`, string values longer than that are cut before
 * parsing. Calls `done` once when it ends (an abort ends it with an AbortError, as client-node's
 * Watch does). Resolves with the controller that aborts it once the response has begun (or the
 * request failed, `done` having been called then), as client-node's Watch does.
 */
export async function watch(
  api: KubeApi,
  path: string,
  query: Query,
  maxStringBytes: number | undefined,
  callback: (type: string, object: never) => void,
  done: (error?: unknown) => void,
): Promise<AbortController> {
  const controller = new AbortController();
  let finished = false;
  const finish = (error?: unknown): void => {
    if (finished) return;
    finished = true;
    controller.abort();
    done(error);
  };
  const deliver = (text: string): void => {
    let event: { type: string; object: never };
    try {
      event = JSON.parse(text) as typeof event;
    } catch {
      return; // not JSON: skipped, as client-node's Watch skips it
    }
    callback(event.type, event.object);
  };
  const lines = new WatchLines(maxStringBytes, deliver);
  let begun!: () => void;
  const beginning = new Promise<void>((resolve) => (begun = resolve));
  const read = streamGet(api, path, { ...query, watch: true }, (chunk) => lines.push(chunk), {
    signal: controller.signal,
    begun,
  });
  read.then(
    () => finish(),
    (error: unknown) => finish(error),
  );
  await Promise.race([beginning, read.catch(() => undefined)]); // its failure was handed to finish
  return controller;
}

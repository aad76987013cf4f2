/**
 * List and watch calls that read the response as bytes and cut long string values out before
 * parsing (see long-strings.ts), for resources whose objects may carry megabytes we will not read.
 * client-node parses whole responses (list) and whole lines (watch) into strings first; these
 * calls never make a string of a cut value. Same authentication, TLS and connection pool as
 * client-node (the kubeconfig's RequestContext and undici dispatcher).
 */
import { HttpMethod, RequestContext, type KubeConfig } from "@kubernetes/client-node";
import { finished } from "node:stream/promises";
import { fetch, request as undiciRequest } from "undici";
import { LongStringCutter } from "./long-strings.js";

type Query = Record<string, string | number | boolean | undefined>;

/** The URL with its query, and the kubeconfig's authentication headers and dispatcher for it. */
async function prepare(kubeConfig: KubeConfig, path: string, query: Query, method: HttpMethod) {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in the kubeconfig");
  const url = new URL(cluster.server + path);
  for (const [key, value] of Object.entries(query))
    if (value !== undefined) url.searchParams.set(key, String(value));
  const context = new RequestContext(url.toString(), method);
  await kubeConfig.applySecurityAuthentication(context);
  return { url, headers: context.getHeaders(), dispatcher: context.getDispatcher() as never };
}

/** The error for a non-200 answer: the metav1.Status message when the body is one, with statusCode. */
function refusal(statusCode: number, statusText: string, body: string): Error {
  let message = statusText;
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? message;
  } catch {
    // not a metav1.Status: keep the status text
  }
  return Object.assign(new Error(`HTTP ${statusCode}: ${message}`), { statusCode });
}

/**
 * A GET whose body is handed to `onChunk` chunk by chunk as it arrives, resolving at its end (a
 * watch: `begun` once the response has begun, `signal` aborts it).
 * Read as a Node stream in flowing mode rather than fetch's web stream: each chunk is consumed
 * synchronously when undici receives it and can be dropped at once, with no queue of chunks, no
 * promise per chunk, and no chunk retained after `onChunk` returns (the caller copies what it keeps).
 * Under ~1 GB of watch bytes the web stream's queue and per-chunk garbage kept tens of MiB of
 * buffers alive and grew V8's young generation (see BENCHMARKS.md, memory under padded CSRs).
 */
async function streamGet(
  kubeConfig: KubeConfig,
  path: string,
  query: Query,
  onChunk: (chunk: Buffer) => void,
  watch?: { signal: AbortSignal; begun: () => void },
): Promise<void> {
  const { url, headers, dispatcher } = await prepare(kubeConfig, path, query, HttpMethod.GET);
  const { statusCode, statusText, body } = await undiciRequest(url, {
    method: "GET",
    headers,
    dispatcher,
    ...(watch ? { signal: watch.signal } : {}),
  });
  if (statusCode !== 200) {
    const text = await body.text().catch(() => ""); // the status text is enough when the body is lost
    throw refusal(statusCode, statusText, text);
  }
  watch?.begun();
  body.on("data", (chunk: Buffer) => {
    try {
      onChunk(chunk);
    } catch (error) {
      body.destroy(error as Error); // ends the read with the consumer's error, as a throw would
    }
  });
  await finished(body);
}

async function request(
  kubeConfig: KubeConfig,
  path: string,
  patch: { contentType: string; body: unknown },
): Promise<Awaited<ReturnType<typeof fetch>>> {
  const { url, headers, dispatcher } = await prepare(kubeConfig, path, {}, HttpMethod.PATCH);
  const response = await fetch(url, {
    method: "PATCH",
    headers: { ...headers, "Content-Type": patch.contentType },
    body: JSON.stringify(patch.body),
    dispatcher,
  });
  if (response.status !== 200) {
    const body = await response.text().catch(() => ""); // the status text is enough when the body is lost
    throw refusal(response.status, response.statusText, body);
  }
  return response;
}

/** The content types of the patches the controller sends. */
export const patchContentType = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
} as const;

/**
 * A patch whose response is discarded unread: the API server answers with the whole object, which
 * for a CSR may carry megabytes of spec.request. Throws on a refusal, with statusCode.
 */
export async function patchDiscardingResponse(
  kubeConfig: KubeConfig,
  path: string,
  contentType: (typeof patchContentType)[keyof typeof patchContentType],
  body: unknown,
): Promise<void> {
  const response = await request(kubeConfig, path, { contentType, body });
  await response.body?.cancel(); // the echo of the object is not needed
}

/** One list page; string values longer than `maxStringBytes` are cut before parsing. */
export async function listCuttingLongStrings<T>(
  kubeConfig: KubeConfig,
  path: string,
  query: Query,
  maxStringBytes: number,
): Promise<T> {
  // Cut as the body streams in: the page is never held whole, only what remains after cutting.
  const cutter = new LongStringCutter(maxStringBytes);
  const kept: Buffer[] = [];
  await streamGet(kubeConfig, path, query, (chunk) => {
    cutter.push(chunk);
    kept.push(...cutter.take());
  });
  return JSON.parse(Buffer.concat(kept).toString("utf8")) as T;
}

/**
 * A watch whose events have string values longer than `maxStringBytes` cut before parsing. Calls
 * `done` once when it ends (an abort ends it with an AbortError, as client-node's Watch does).
 * Resolves with the controller that aborts it once the response has begun (or the request failed,
 * `done` having been called then), as client-node's Watch does.
 */
export async function watchCuttingLongStrings(
  kubeConfig: KubeConfig,
  path: string,
  query: Query,
  maxStringBytes: number,
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
  const deliver = (line: Buffer): void => {
    let event: { type: string; object: never };
    try {
      event = JSON.parse(line.toString("utf8")) as typeof event;
    } catch {
      return; // not JSON: skipped, as client-node's Watch skips it
    }
    callback(event.type, event.object);
  };
  // One event per line (JSON strings hold no raw newline, so cutting keeps the lines); the bytes
  // are cut as they stream in, and a line is assembled from what remains.
  const cutter = new LongStringCutter(maxStringBytes);
  let pending: Buffer[] = [];
  const consume = (chunk: Buffer): void => {
    cutter.push(chunk);
    for (let rest of cutter.take()) {
      for (let newline = rest.indexOf(0x0a); newline >= 0; newline = rest.indexOf(0x0a)) {
        pending.push(rest.subarray(0, newline));
        const line = Buffer.concat(pending);
        pending = [];
        rest = rest.subarray(newline + 1);
        if (line.length > 0) deliver(line);
      }
      if (rest.length > 0) pending.push(rest);
    }
  };
  let begun!: () => void;
  const beginning = new Promise<void>((resolve) => (begun = resolve));
  const read = streamGet(kubeConfig, path, { ...query, watch: true }, consume, {
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

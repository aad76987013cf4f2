/**
 * List and watch calls that read the response as bytes and cut long string values out before
 * parsing (see long-strings.ts), for resources whose objects may carry megabytes we will not read.
 * client-node parses whole responses (list) and whole lines (watch) into strings first; these
 * calls never make a string of a cut value. Same authentication, TLS and connection pool as
 * client-node (the kubeconfig's RequestContext and undici dispatcher).
 */
import { HttpMethod, RequestContext, type KubeConfig } from "@kubernetes/client-node";
import { fetch } from "undici";
import { LongStringCutter } from "./long-strings.js";

type Query = Record<string, string | number | boolean | undefined>;

async function request(
  kubeConfig: KubeConfig,
  path: string,
  query: Query,
  signal?: AbortSignal,
  patch?: { contentType: string; body: unknown },
): Promise<Awaited<ReturnType<typeof fetch>>> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in the kubeconfig");
  const url = new URL(cluster.server + path);
  for (const [key, value] of Object.entries(query))
    if (value !== undefined) url.searchParams.set(key, String(value));
  const context = new RequestContext(url.toString(), patch ? HttpMethod.PATCH : HttpMethod.GET);
  await kubeConfig.applySecurityAuthentication(context);
  const response = await fetch(url, {
    method: patch ? "PATCH" : "GET",
    headers: { ...context.getHeaders(), ...(patch ? { "Content-Type": patch.contentType } : {}) },
    ...(patch ? { body: JSON.stringify(patch.body) } : {}),
    dispatcher: context.getDispatcher() as never,
    ...(signal ? { signal } : {}),
  });
  if (response.status !== 200) {
    const body = await response.text().catch(() => ""); // the status text is enough when the body is lost
    let message = response.statusText;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      // not a metav1.Status: keep the status text
    }
    throw Object.assign(new Error(`HTTP ${response.status}: ${message}`), { statusCode: response.status });
  }
  return response;
}

/**
 * A JSON merge patch whose response is discarded unread: the API server answers with the whole
 * object, which for a CSR may carry megabytes of spec.request. Throws on a refusal, with statusCode.
 */
export async function mergePatchDiscardingResponse(
  kubeConfig: KubeConfig,
  path: string,
  body: unknown,
): Promise<void> {
  const response = await request(kubeConfig, path, {}, undefined, {
    contentType: "application/merge-patch+json",
    body,
  });
  await response.body?.cancel(); // the echo of the object is not needed
}

/** A JSON Patch whose response is discarded unread, as mergePatchDiscardingResponse. */
export async function jsonPatchDiscardingResponse(
  kubeConfig: KubeConfig,
  path: string,
  body: unknown,
): Promise<void> {
  const response = await request(kubeConfig, path, {}, undefined, {
    contentType: "application/json-patch+json",
    body,
  });
  await response.body?.cancel(); // the echo of the object is not needed
}

/** One list page; string values longer than `maxStringBytes` are cut before parsing. */
export async function listCuttingLongStrings<T>(
  kubeConfig: KubeConfig,
  path: string,
  query: Query,
  maxStringBytes: number,
): Promise<T> {
  const response = await request(kubeConfig, path, query);
  // Cut as the body streams in: the page is never held whole, only what remains after cutting.
  const cutter = new LongStringCutter(maxStringBytes);
  const kept: Buffer[] = [];
  if (response.body) {
    for await (const chunk of response.body) {
      cutter.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      kept.push(...cutter.take());
    }
  }
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
  let response: Awaited<ReturnType<typeof request>>;
  try {
    response = await request(kubeConfig, path, { ...query, watch: true }, controller.signal);
  } catch (error) {
    finish(error);
    return controller;
  }
  const read = async (): Promise<void> => {
    if (!response.body) return;
    // One event per line (JSON strings hold no raw newline, so cutting keeps the lines); the
    // bytes are cut as they stream in, and a line is assembled from what remains.
    const cutter = new LongStringCutter(maxStringBytes);
    let pending: Buffer[] = [];
    for await (const chunk of response.body) {
      cutter.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
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
    }
  };
  read().then(
    () => finish(),
    (error: unknown) => finish(error),
  );
  return controller;
}

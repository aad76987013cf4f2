/**
 * A list/watch cache that keeps going. client-node's informer stops on any non-410 error,
 * reports success when its first list failed, requests no bookmarks and its watches idle out
 * after 30 s; this one relists on 410 Gone, re-watches from the last resourceVersion after
 * ordinary ends, backs off with jitter on errors, aborts a watch that has been silent too long
 * (watchdog), and replays every object periodically (resync) so nothing is forgotten.
 * Lists are paged (limit/continue), so no list response is held whole, and every object passes
 * through an optional transform as it arrives, before it is cached: a cache keeps only what its
 * controller reads.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeApi } from "./api-client.js";
import { apiErrorCode, describeError } from "./client.js";
import { listPage, watch } from "./raw-json.js";

export interface KubernetesObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
}

export interface ListResult<T> {
  items: T[];
  /** client-node names the continue token _continue; the raw JSON calls it continue. */
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

/** One page of a list call, in client-node's parameter names. */
export interface ListPage {
  limit: number;
  _continue?: string;
}

const defaultPageSize = 500;

export interface InformerOptions<T extends KubernetesObject> {
  /** The list and watch path, e.g. /apis/certificates.k8s.io/v1/certificatesigningrequests. */
  path: string;
  /** A list call of its own instead of listing `path` (tests count the pages with it). */
  list?: (page: ListPage) => Promise<ListResult<T>>;
  /**
   * When set, every string value longer than this is cut out of list and watch responses before
   * parsing (see raw-json.ts): for objects that may carry megabytes not read.
   */
  maxStringBytes?: number;
  /** Objects per list page (default 500): what one list response holds at most. */
  pageSize?: number;
  /**
   * Applied to every object as it arrives (each list page, each watch event), before it enters the
   * cache or reaches a handler: what it drops is never held.
   */
  transform?: (object: T) => T;
  fieldSelector?: string;
  labelSelector?: string;
  /** Abort a watch after this long without any event or bookmark. */
  watchdogMs?: number;
  /** Replay all objects to the handlers this often (0: never). */
  resyncMs?: number;
  logger?: (message: string, fields?: Record<string, unknown>) => void;
  /**
   * Told of every list or watch failure before the retry (backoff as usual); true when the caller
   * reports it where operators look (a 403 as a Signer condition), so no log line repeats it.
   */
  onFailure?: (error: unknown) => boolean;
}

export type InformerEvent = "upsert" | "delete" | "resync";

export class ResilientInformer<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: ((event: InformerEvent, object: T) => void)[] = [];
  private resourceVersion = "";
  private abort: AbortController | undefined;
  private stopped = false;
  private lastEventAt = 0;
  private failures = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private syncedOnce = false;
  private watching = false;
  private readonly syncWaiters: (() => void)[] = [];
  private listStartedAt: number | undefined;

  private readonly api: KubeApi;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: InformerOptions<T>,
  ) {
    this.api = KubeApi.for(kubeConfig);
  }

  on(handler: (event: InformerEvent, object: T) => void): void {
    this.handlers.push(handler);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get path(): string {
    return this.options.path;
  }

  /** When the list call in flight began (ms since the epoch); undefined while not listing. */
  get listingSince(): number | undefined {
    return this.listStartedAt;
  }

  /** True once a list succeeded and a watch is open (what /readyz reports). */
  get healthy(): boolean {
    return this.syncedOnce && this.watching;
  }

  /** Starts listing and watching; resolves when the first list has been applied. */
  start(): Promise<void> {
    void this.run();
    const watchdogMs = this.options.watchdogMs ?? 90_000;
    this.watchdog = setInterval(
      () => {
        if (this.watching && Date.now() - this.lastEventAt > watchdogMs) {
          this.log("watch silent too long; restarting it", { silentMs: Date.now() - this.lastEventAt });
          this.abort?.abort();
        }
      },
      Math.min(watchdogMs, 5000),
    );
    this.watchdog.unref();
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const object of this.cache.values()) this.emit("resync", object);
      }, this.options.resyncMs);
      this.resyncTimer.unref();
    }
    return this.syncedOnce ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    clearInterval(this.watchdog);
    clearInterval(this.resyncTimer);
  }

  private key(object: T): string {
    const { name = "", namespace } = object.metadata ?? {};
    return namespace ? `${namespace}/${name}` : name;
  }

  /**
   * The object as the cache keeps it; undefined when the transform threw. One object the transform
   * cannot handle is logged and left out, never allowed to end the list or watch for every other.
   */
  private transform(object: T): T | undefined {
    if (!this.options.transform) return object;
    try {
      return this.options.transform(object);
    } catch (error) {
      this.log("informer transform failed: object not cached", {
        name: this.key(object),
        error: describeError(error),
      });
      return undefined;
    }
  }

  private emit(event: InformerEvent, object: T): void {
    for (const handler of this.handlers) {
      try {
        handler(event, object);
      } catch (error) {
        // A handler bug must not stop the informer; handlers only enqueue keys.
        this.log("informer handler failed", { error: describeError(error) });
      }
    }
  }

  private log(message: string, fields: Record<string, unknown> = {}): void {
    this.options.logger?.(message, { path: this.options.path, ...fields });
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          this.listStartedAt = Date.now();
          try {
            await this.relist();
          } finally {
            this.listStartedAt = undefined;
          }
          needList = false;
        }
        const outcome = await this.watchOnce();
        if (outcome === "gone") needList = true;
        this.failures = 0;
      } catch (error) {
        this.watching = false;
        if (apiErrorCode(error) === 410) {
          needList = true;
          continue;
        }
        this.failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6)) * (0.5 + Math.random());
        if (!this.options.onFailure?.(error))
          this.log("list/watch failed; retrying", {
            error: describeError(error),
            retryInMs: Math.round(delay),
          });
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  private async relist(): Promise<void> {
    const limit = this.options.pageSize ?? defaultPageSize;
    const seen = new Set<string>();
    let continueToken: string | undefined;
    let resourceVersion = "";
    for (;;) {
      let page: ListResult<T>;
      try {
        page = await this.listPage({ limit, ...(continueToken ? { _continue: continueToken } : {}) });
      } catch (error) {
        // The continue token expired (410) between pages: list again from the start, as client-go does.
        if (continueToken === undefined || apiErrorCode(error) !== 410) throw error;
        continueToken = undefined;
        seen.clear();
        continue;
      }
      for (const raw of page.items) {
        const item = this.transform(raw);
        if (!item) continue; // logged; a cached copy of it is dropped below as unseen
        const key = this.key(item);
        seen.add(key);
        const previous = this.cache.get(key);
        this.cache.set(key, item);
        // Another object under the key (deleted and created again while no watch ran): its
        // deletion first, as a watch would have told it, so that no state kept per name carries over.
        if (previous?.metadata?.uid !== undefined && previous.metadata.uid !== item.metadata?.uid)
          this.emit("delete", previous);
        if (previous?.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit("upsert", item);
      }
      resourceVersion = page.metadata?.resourceVersion ?? "";
      continueToken = page.metadata?._continue || page.metadata?.continue || undefined;
      if (continueToken === undefined) break;
      if (this.stopped) return;
    }
    for (const [key, object] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit("delete", object);
      }
    }
    this.resourceVersion = resourceVersion;
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private listPage(page: ListPage): Promise<ListResult<T>> {
    const { list, maxStringBytes, path, labelSelector, fieldSelector } = this.options;
    if (list) return list(page);
    return listPage<ListResult<T>>(
      this.api,
      path,
      { limit: page.limit, continue: page._continue, labelSelector, fieldSelector },
      maxStringBytes,
    );
  }

  /** One watch from the current resourceVersion; resolves when it ends, "gone" on 410. */
  private watchOnce(): Promise<"ended" | "gone"> {
    return new Promise((resolve, reject) => {
      let gone = false;
      /** An ERROR event other than 410: the watch failed, and is retried with backoff like any failure. */
      let failed: Error | undefined;
      let finished = false;
      const query: Record<string, string | boolean> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
      };
      if (this.options.fieldSelector) query.fieldSelector = this.options.fieldSelector;
      if (this.options.labelSelector) query.labelSelector = this.options.labelSelector;
      this.lastEventAt = Date.now();
      const onEvent = (type: string, object: T & { code?: number }): void => {
        this.lastEventAt = Date.now();
        this.watching = true;
        if (type === "ERROR") {
          if (object.code === 410) gone = true;
          else failed = watchErrorEvent(object as { code?: number; reason?: string; message?: string });
          this.abort?.abort();
          return;
        }
        const resourceVersion = object.metadata?.resourceVersion;
        if (resourceVersion) this.resourceVersion = resourceVersion;
        if (type === "BOOKMARK") return;
        const item = this.transform(object);
        const key = this.key(item ?? object);
        if (type === "DELETED" || !item) {
          // A deletion, or an object the transform could not keep (logged): no stale copy remains.
          const previous = this.cache.get(key);
          this.cache.delete(key);
          if (type === "DELETED" || previous) this.emit("delete", item ?? previous ?? object);
        } else {
          this.cache.set(key, item);
          this.emit("upsert", item);
        }
      };
      const onDone = (error: unknown): void => {
        finished = true;
        this.watching = false;
        if (gone) return resolve("gone");
        if (failed) return reject(failed);
        const aborted = (error as Error | undefined)?.name === "AbortError";
        // A watch that ends on its own (idle timeout, server closing it) is resumed, not an error.
        if (!error || aborted || (error as Error).name === "TimeoutError") resolve("ended");
        else reject(error);
      };
      watch(this.api, this.options.path, query, this.options.maxStringBytes, onEvent, onDone).then(
        (controller) => {
          this.abort = controller;
          // watch() resolves even when the request failed (done() already ran): not watching then.
          if (!finished) this.watching = true;
          if (this.stopped) controller.abort();
        },
        reject,
      );
    });
  }
}

/** The metav1.Status of a watch ERROR event as an error run() understands (statusCode as client-node's). */
function watchErrorEvent(status: { code?: number; reason?: string; message?: string }): Error {
  const text = `watch ERROR event: ${status.code ?? "no code"}${status.reason ? ` ${status.reason}` : ""}${status.message ? `: ${status.message}` : ""}`;
  return Object.assign(new Error(text), status.code !== undefined ? { statusCode: status.code } : {});
}

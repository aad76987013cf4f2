/**
 * A thin JSON client for the Kubernetes API: every call the controller makes goes through it.
 * client-node's generated clients run each request and response through a generic ObjectSerializer
 * (a walk over its type map, Dates rebuilt), a fetch with web streams, and a fresh undici Agent plus
 * RequestContext per call: the largest share of the controller's CPU per certificate outside signing.
 * Here a call goes straight on the kubeconfig's pooled dispatcher (lists and watches as a byte
 * stream), JSON.stringify out and JSON.parse in. Authentication and TLS still come from the KubeConfig (client-node's
 * applySecurityAuthentication, so kubeconfig auth providers, exec plugins, token files and the
 * tests' impersonation all keep working); only the result is cached for a few seconds.
 */
import { HttpMethod, RequestContext, type KubeConfig } from "@kubernetes/client-node";
import { getGlobalDispatcher, type Dispatcher } from "undici";
import { authenticateUnthrottled, ConnectionReusingKubeConfig, KubeApiError } from "./client.js";
import { countResponseBytes } from "./response-garbage.js";
import type { TokenBucket } from "./token-bucket.js";

export type Query = Record<string, string | number | boolean | undefined>;

/** The content types of the patches the controller sends. */
export const patchContentType = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
} as const;

export type PatchContentType = (typeof patchContentType)[keyof typeof patchContentType];

/**
 * Told of every request's outcome (client-go's rest_client metrics): method, status code ("<error>"
 * when no answer came, as client-go says), the API server's host:port and the seconds from sending
 * (after the client rate limit) to the whole response (lists and watches: to their headers).
 */
export type KubeRequestObserver = (method: string, code: string, host: string, seconds: number) => void;

interface Connection {
  headers: Record<string, string>;
  dispatcher: Dispatcher | undefined;
  at: number;
}

/**
 * How long the authentication headers read from the kubeconfig are reused. client-go re-reads a
 * service account token file once a minute; exec plugins cache their own credentials.
 */
const connectionRefreshMs = 10_000;

const clients = new WeakMap<KubeConfig, KubeApi>();

/**
 * Every request and watch goes out over HTTP/1.1: undici's Agent honours a per-request allowH2
 * (undici's types do not declare it) and keeps, for the origin, a keep-alive pool of HTTP/1.1
 * connections, one request at a time on each (no pipelining), opened as concurrent requests need
 * them (the workers, the watches, the Event recorder's budget bound how many). So each watch has a
 * connection of its own and the workers' writes run side by side in kube-apiserver instead of as
 * streams of one HTTP/2 connection. Measured (`make bench-controller`, BENCHMARKS.md): the same
 * CPU per certificate in both processes, certificates out in about half the time under load.
 */
const http1Only: object = { allowH2: false };

/** `?key=value&...` for the defined values of `query` ("" when there are none). */
function search(query: Query): string {
  let text = "";
  for (const [key, value] of Object.entries(query))
    if (value !== undefined)
      text += `${text ? "&" : "?"}${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`;
  return text;
}

/** A write dropped before it was sent because its sendOnlyIf condition no longer held. */
export class WriteNotSentError extends Error {
  constructor(request: string) {
    super(`${request} not sent: its condition no longer holds`);
    this.name = "WriteNotSentError";
  }
}

export class KubeApi {
  private connection: Connection | undefined;
  private parsedServer: { server: string; origin: string; host: string; prefix: string } | undefined;

  /**
   * `ownLimiter`: the bucket this client's requests wait on; undefined: the kubeconfig's client
   * rate limit (ConnectionReusingKubeConfig.setRateLimit), shared by every client of it.
   */
  private constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly observers: Set<KubeRequestObserver>,
    private readonly ownLimiter: TokenBucket | undefined,
  ) {}

  /** The client of `kubeConfig` (one per kubeconfig, so its connection pool and limiter are shared). */
  static for(kubeConfig: KubeConfig): KubeApi {
    let client = clients.get(kubeConfig);
    if (client === undefined) {
      client = new KubeApi(kubeConfig, new Set(), undefined);
      clients.set(kubeConfig, client);
    }
    return client;
  }

  /**
   * A client on the same kubeconfig (its connection pool, this client's request observers) whose
   * requests wait on `limiter` instead of the client rate limit, so never behind the controller's
   * backlog of writes: for the Lease, as kube-controller-manager gives leader election a client of
   * its own, and for Signer status writes.
   */
  withOwnRateLimiter(limiter: TokenBucket): KubeApi {
    return new KubeApi(this.kubeConfig, this.observers, limiter);
  }

  /** Tells `observer` of every request from now on; returns what stops that. */
  observeRequests(observer: KubeRequestObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** GET a JSON object. */
  get<T>(path: string, query: Query = {}): Promise<T> {
    return this.json<T>("GET", path, query);
  }

  /** GET, with 404 answered as undefined. */
  async getIfExists<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 404) return undefined;
      throw error;
    }
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>("POST", path, {}, body);
  }

  /**
   * A POST that does not wait for the client rate limit, for Kubernetes Events: the recorder keeps
   * them within a budget of their own (kube/events.ts), as kube-controller-manager's event client has
   * a limiter apart from each controller's, so Events never take the controller's writes' turn.
   */
  async createOutsideRateLimit(path: string, body: unknown): Promise<void> {
    await this.exchange("POST", path, {}, body, undefined, false, false);
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>("PUT", path, {}, body);
  }

  patch<T>(path: string, contentType: PatchContentType, body: unknown): Promise<T> {
    return this.json<T>("PATCH", path, {}, body, contentType);
  }

  /**
   * A patch whose response is not parsed: the API server answers with the whole object, which for
   * a CSR may carry megabytes of spec.request. Read and dropped rather than cancelled: cancelling
   * costs more (an HTTP/1.1 connection closed and opened again, undici's abort errors) than
   * reading a few KiB.
   */
  async patchDiscardingResponse(
    path: string,
    contentType: PatchContentType,
    body: unknown,
    sendOnlyIf?: () => boolean,
  ): Promise<void> {
    await this.exchange("PATCH", path, {}, body, contentType, false, true, sendOnlyIf);
  }

  /** A PUT whose response (the whole object) is read and dropped unparsed, as patchDiscardingResponse's. */
  async replaceDiscardingResponse(path: string, body: unknown, sendOnlyIf?: () => boolean): Promise<void> {
    await this.exchange("PUT", path, {}, body, undefined, false, true, sendOnlyIf);
  }

  async delete(path: string, body?: unknown): Promise<void> {
    await this.exchange("DELETE", path, {}, body, undefined, false);
  }

  /**
   * A GET whose 200 response body is handed to `onChunk` chunk by chunk as undici receives it (lists
   * and watches read as bytes); resolves at its end. Straight on the dispatcher, as exchange(): no
   * Readable between the socket and `onChunk`, whose per-chunk machinery (push, flow, a data event)
   * cost about as much as the line scanner itself on a CSR watch. `onChunk` runs synchronously and
   * must not keep the chunk; a throw ends the request with that error. `begun` is told when a 200
   * response has begun; its chunks are delivered from the next turn of the event loop on, so that
   * whoever awaits `begun` holds the request's AbortController before the first event.
   * Watches (`unthrottled`) do not wait for the rate limiter: queueing a watch's reconnection behind
   * a backlog of writes would leave the caches blind exactly when the controller is busiest.
   */
  async stream(
    path: string,
    query: Query,
    onChunk: (chunk: Buffer) => void,
    options: { signal?: AbortSignal; unthrottled?: boolean; begun?: () => void } = {},
  ): Promise<void> {
    if (!options.unthrottled) await this.throttle();
    const started = this.observers.size > 0 ? performance.now() : -1;
    const connection = await this.currentConnection();
    const { origin, prefix } = this.server();
    const { signal } = options;
    signal?.throwIfAborted();
    const dispatcher = connection.dispatcher ?? getGlobalDispatcher();
    let statusCode = 0;
    const refusalChunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      const onAbort = (): void => controller?.abort(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (error?: unknown): void => {
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      };
      dispatcher.dispatch(
        {
          origin,
          path: prefix + path + search(query),
          method: "GET",
          headers: { ...connection.headers, accept: "application/json" },
          ...http1Only,
        },
        {
          onRequestStart: (requestController) => {
            controller = requestController;
            if (signal?.aborted) requestController.abort(signal.reason);
          },
          onResponseStart: (responseController, code) => {
            statusCode = code;
            this.observed("GET", code, started);
            if (code !== 200) return;
            // Held until the next turn, after the microtasks that hand out the AbortController.
            responseController.pause();
            setImmediate(() => {
              if (!responseController.aborted) responseController.resume();
            });
            options.begun?.();
          },
          onResponseData: (_controller, chunk) => {
            countResponseBytes(chunk.length);
            if (statusCode === 200) onChunk(chunk);
            else refusalChunks.push(chunk); // an error's metav1.Status is read
          },
          onResponseEnd: () =>
            settle(
              statusCode === 200
                ? undefined
                : this.refusal(statusCode, Buffer.concat(refusalChunks).toString("utf8")),
            ),
          onResponseError: (_controller, error) => {
            if (statusCode === 0) this.observed("GET", undefined, started);
            settle(error);
          },
        },
      );
    });
  }

  private async json<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    query: Query,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const data = await this.exchange(method, path, query, body, contentType, true);
    return JSON.parse(data.toString("utf8")) as T;
  }

  /**
   * One request with its whole response body collected (or, with `keepBody` false, read and dropped
   * unless it is an error). Straight on the dispatcher with a handler that only gathers chunks:
   * undici's `request` adds a Readable body and an AsyncResource per call, 10-20% of a request's
   * CPU here. A non-2xx answer is thrown as a KubeApiError.
   */
  private async exchange(
    method: Dispatcher.HttpMethod,
    path: string,
    query: Query,
    body: unknown,
    contentType: string | undefined,
    keepBody: boolean,
    throttled = true,
    sendOnlyIf?: () => boolean,
  ): Promise<Buffer> {
    if (throttled) await this.throttle();
    const started = this.observers.size > 0 ? performance.now() : -1;
    const connection = await this.currentConnection();
    // Asked last, after the rate limiter's wait: a process frozen meanwhile learns here that it lost the lease.
    if (sendOnlyIf && !sendOnlyIf()) throw new WriteNotSentError(`${method} ${path}`);
    const { origin, prefix } = this.server();
    const headers: Record<string, string> = { ...connection.headers, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = contentType ?? "application/json";
    const dispatcher = connection.dispatcher ?? getGlobalDispatcher();
    const answer = new Promise<{ statusCode: number; data: Buffer }>((resolve, reject) => {
      let statusCode = 0;
      let keep = keepBody;
      const chunks: Buffer[] = [];
      dispatcher.dispatch(
        {
          origin,
          path: prefix + path + search(query),
          method,
          headers,
          ...http1Only,
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        },
        {
          onRequestStart: () => undefined, // undici requires the method
          onResponseStart: (_controller, code) => {
            statusCode = code;
            keep ||= code < 200 || code >= 300; // an error's metav1.Status is read
          },
          onResponseData: (_controller, chunk) => {
            countResponseBytes(chunk.length);
            if (keep) chunks.push(chunk);
          },
          onResponseEnd: () => resolve({ statusCode, data: Buffer.concat(chunks) }),
          onResponseError: (_controller, error) => reject(error),
        },
      );
    });
    let statusCode: number, data: Buffer;
    try {
      ({ statusCode, data } = await answer);
    } catch (error) {
      this.observed(method, undefined, started);
      throw error;
    }
    this.observed(method, statusCode, started);
    if (statusCode >= 200 && statusCode < 300) return data;
    throw this.refusal(statusCode, data.toString("utf8"));
  }

  /** Reports a request to the observers (`started` -1: there were none when it was sent). */
  private observed(method: string, statusCode: number | undefined, started: number): void {
    if (started < 0) return;
    const seconds = (performance.now() - started) / 1000;
    const code = statusCode === undefined ? "<error>" : String(statusCode);
    const host = this.parsedServer?.host ?? "";
    for (const observer of this.observers) observer(method, code, host, seconds);
  }

  private async throttle(): Promise<void> {
    if (this.ownLimiter !== undefined) await this.ownLimiter.take();
    else if (this.kubeConfig instanceof ConnectionReusingKubeConfig) await this.kubeConfig.throttle();
  }

  private refusal(statusCode: number, text: string): KubeApiError {
    // Credentials may have rotated (a token file, an exec plugin): read them again next time.
    if (statusCode === 401) this.connection = undefined;
    return KubeApiError.fromResponse(statusCode, text);
  }

  /** The current cluster's origin and path prefix (a server URL may carry one, behind a proxy). */
  private server(): { origin: string; prefix: string } {
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error("no current cluster in the kubeconfig");
    if (this.parsedServer?.server !== server) {
      const url = new URL(server);
      this.parsedServer = {
        server,
        origin: url.origin,
        host: url.host,
        prefix: url.pathname.replace(/\/+$/, ""),
      };
    }
    return this.parsedServer;
  }

  /**
   * Headers and dispatcher from the kubeconfig, as client-node's generated clients get them, reused
   * for a few seconds. The kubeconfig pools its dispatcher (ConnectionReusingKubeConfig), so a
   * refresh keeps the connections; a plain KubeConfig builds a new Agent each time, so its first one
   * is kept for good.
   */
  private async currentConnection(): Promise<Connection> {
    const now = Date.now();
    const closed = (this.connection?.dispatcher as { closed?: boolean } | undefined)?.closed === true;
    // A closed pool (ConnectionReusingKubeConfig.close()) is replaced by the kubeconfig's next one.
    if (this.connection && !closed && now - this.connection.at < connectionRefreshMs) return this.connection;
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error("no current cluster in the kubeconfig");
    const context = new RequestContext(server, HttpMethod.GET);
    // The limiter's token for this request was taken by the caller (exchange or stream).
    await authenticateUnthrottled(this.kubeConfig, context);
    const pooled = this.kubeConfig instanceof ConnectionReusingKubeConfig;
    const dispatcher =
      pooled || !this.connection || closed
        ? (context.getDispatcher() as Dispatcher | undefined)
        : this.connection.dispatcher;
    this.connection = { headers: context.getHeaders(), dispatcher, at: now };
    return this.connection;
  }
}

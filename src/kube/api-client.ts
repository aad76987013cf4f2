/**
 * A thin JSON client for the Kubernetes API: every call the controller makes goes through it.
 * client-node's generated clients run each request and response through a generic ObjectSerializer
 * (a walk over its type map, Dates rebuilt), a fetch with web streams, and a fresh undici Agent plus
 * RequestContext per call: the largest share of the controller's CPU per certificate outside signing.
 * Here a call is one undici `request` on the kubeconfig's pooled dispatcher, JSON.stringify out and
 * JSON.parse in. Authentication and TLS still come from the KubeConfig (client-node's
 * applySecurityAuthentication, so kubeconfig auth providers, exec plugins, token files and the
 * tests' impersonation all keep working); only the result is cached for a few seconds.
 */
import { HttpMethod, RequestContext, type KubeConfig } from "@kubernetes/client-node";
import { request, type Dispatcher } from "undici";
import { authenticateUnthrottled, ConnectionReusingKubeConfig, KubeApiError } from "./client.js";

export type Query = Record<string, string | number | boolean | undefined>;

/** The content types of the patches the controller sends. */
export const patchContentType = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
} as const;

export type PatchContentType = (typeof patchContentType)[keyof typeof patchContentType];

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

export class KubeApi {
  private connection: Connection | undefined;

  private constructor(private readonly kubeConfig: KubeConfig) {}

  /** The client of `kubeConfig` (one per kubeconfig, so its connection pool and limiter are shared). */
  static for(kubeConfig: KubeConfig): KubeApi {
    let client = clients.get(kubeConfig);
    if (client === undefined) {
      client = new KubeApi(kubeConfig);
      clients.set(kubeConfig, client);
    }
    return client;
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

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>("PUT", path, {}, body);
  }

  patch<T>(path: string, contentType: PatchContentType, body: unknown): Promise<T> {
    return this.json<T>("PATCH", path, {}, body, contentType);
  }

  /**
   * A patch whose response is not parsed: the API server answers with the whole object, which for
   * a CSR may carry megabytes of spec.request. Read and dropped rather than cancelled: cancelling an
   * HTTP/2 stream costs more (an RST_STREAM and undici's abort errors) than reading a few KiB.
   */
  async patchDiscardingResponse(path: string, contentType: PatchContentType, body: unknown): Promise<void> {
    const response = await this.send("PATCH", path, {}, body, contentType);
    await response.body.dump({ limit: 1 << 20 }); // a larger echo is cut off; nothing is read from it
  }

  async delete(path: string, body?: unknown): Promise<void> {
    const response = await this.send("DELETE", path, {}, body);
    await response.body.dump();
  }

  /**
   * A GET whose 200 response body is returned as a Node stream (lists and watches read as bytes).
   * Watches (`unthrottled`) do not wait for the rate limiter: queueing a watch's reconnection behind
   * a backlog of writes would leave the caches blind exactly when the controller is busiest.
   */
  async stream(
    path: string,
    query: Query,
    options: { signal?: AbortSignal; unthrottled?: boolean } = {},
  ): Promise<Dispatcher.ResponseData["body"]> {
    const response = await this.send("GET", path, query, undefined, undefined, options);
    return response.body;
  }

  private async json<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    query: Query,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const response = await this.send(method, path, query, body, contentType);
    return (await response.body.json()) as T;
  }

  /** Sends one request; a non-2xx answer is read and thrown as a KubeApiError. */
  private async send(
    method: Dispatcher.HttpMethod,
    path: string,
    query: Query,
    body: unknown,
    contentType?: string,
    options: { signal?: AbortSignal; unthrottled?: boolean } = {},
  ): Promise<Dispatcher.ResponseData> {
    if (!options.unthrottled && this.kubeConfig instanceof ConnectionReusingKubeConfig)
      await this.kubeConfig.throttle();
    const connection = await this.currentConnection();
    const url = this.url(path, query);
    const headers: Record<string, string> = { ...connection.headers, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = contentType ?? "application/json";
    const response = await request(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(connection.dispatcher ? { dispatcher: connection.dispatcher } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    // The status text is enough when the body is lost.
    const text = await response.body.text().catch(() => "");
    // Credentials may have rotated (a token file, an exec plugin): read them again next time.
    if (response.statusCode === 401) this.connection = undefined;
    throw KubeApiError.fromResponse(response.statusCode, text);
  }

  private url(path: string, query: Query): string {
    const server = this.kubeConfig.getCurrentCluster()?.server;
    if (!server) throw new Error("no current cluster in the kubeconfig");
    let search = "";
    for (const [key, value] of Object.entries(query))
      if (value !== undefined)
        search += `${search ? "&" : "?"}${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`;
    return server.replace(/\/+$/, "") + path + search;
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
    // The limiter's token for this request was taken in send().
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

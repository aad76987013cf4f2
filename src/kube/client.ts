/**
 * The kubeconfig side of API access, shared by the controller, the CLI and the tests: a KubeConfig
 * whose connections are pooled and rate limited, and reading API errors (ours, KubeApiError, and client-node's: the tests use client-node's generated clients).
 */
import { ApiException, KubeConfig, type RequestContext } from "@kubernetes/client-node";
import { TokenBucket } from "./token-bucket.js";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

/**
 * A KubeConfig whose API clients and watches share one connection pool.
 *
 * client-node 2.0.1 builds a new undici Agent for every request (KubeConfig.applySecurityAuthentication),
 * so every call opens a new TLS connection and leaves it open until undici's idle timeout: a busy controller pays a handshake per call and piles up sockets. This
 * subclass keeps the first Agent per context and hands it to every later request.
 * The TLS material (CA, client certificate files) is read when the pool is created: call close() to
 * start over after rotating files. Bearer tokens are headers, applied per request.
 */
export class ConnectionReusingKubeConfig extends KubeConfig {
  private readonly dispatchers = new Map<string, Dispatcher>();
  private limiter: TokenBucket | undefined;

  /**
   * Client-side rate limit for API requests (client-go's --kube-api-qps/--kube-api-burst): a token
   * bucket every request passes through before it is sent, but watches, Events
   * (KubeApi.createOutsideRateLimit) and clients with a limiter of their own
   * (KubeApi.withOwnRateLimiter: the Lease).
   */
  setRateLimit(qps: number, burst: number): void {
    this.limiter = new TokenBucket(qps, burst);
  }

  /** Waits for the limiter's next token (at once when no limit is set). */
  async throttle(): Promise<void> {
    await this.limiter?.take();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    // A watch is one long request: queueing its reconnection behind a backlog of writes would
    // leave the caches blind (and /readyz false) exactly when the controller is busiest.
    if (!unthrottled.has(context) && !/[?&]watch=true(&|$)/.test(context.getUrl())) await this.throttle();
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return; // Plain HTTP without TLS options: undici's global dispatcher pools.
    const key = JSON.stringify([
      this.getCurrentContext(),
      this.getCurrentCluster()?.server,
      this.getCurrentUser()?.name,
    ]);
    const pooled = this.dispatchers.get(key);
    if (pooled === undefined) {
      this.dispatchers.set(key, fresh);
      return;
    }
    context.setDispatcher(pooled);
    // The fresh Agent never connected; closing it only releases the object.
    fresh.close().catch(() => undefined);
  }

  /** Closes the pooled connections; later requests open a new pool. */
  async close(): Promise<void> {
    const dispatchers = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.close()));
  }
}

/** Contexts authenticated for KubeApi, which takes the limiter's token itself (per request). */
const unthrottled = new WeakSet<RequestContext>();

/**
 * Applies the kubeconfig's authentication to `context` without taking a rate-limit token. Goes
 * through applySecurityAuthentication, so subclasses (the tests' impersonation) still apply.
 */
export async function authenticateUnthrottled(
  kubeConfig: KubeConfig,
  context: RequestContext,
): Promise<void> {
  unthrottled.add(context);
  await kubeConfig.applySecurityAuthentication(context);
}

/**
 * A refused API call: the HTTP status code and, when the body was a metav1.Status, its reason and
 * message. `statusCode` is kept as well, as the watch errors have always carried it.
 */
export class KubeApiError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: number,
    readonly reason: string | undefined,
    readonly statusMessage: string | undefined,
  ) {
    super(`HTTP ${code}${reason ? ` ${reason}` : ""}${statusMessage ? `: ${statusMessage}` : ""}`);
    this.name = "KubeApiError";
    this.statusCode = code;
  }

  /** The error for a non-2xx answer whose body (a metav1.Status, usually) is `text`. */
  static fromResponse(code: number, text: string): KubeApiError {
    let reason: string | undefined;
    let message: string | undefined;
    try {
      const status = JSON.parse(text) as { reason?: unknown; message?: unknown };
      if (typeof status?.reason === "string") reason = status.reason;
      if (typeof status?.message === "string") message = status.message;
    } catch {
      // Not JSON (a proxy or an HTML error page): the code alone is all there is.
    }
    return new KubeApiError(code, reason, message);
  }
}

/** The parts of a failed API call a caller branches on. */
export interface ApiErrorStatus {
  /** HTTP status code (403, 404, 409, 422, ...). */
  code: number;
  /** metav1.Status reason (`Forbidden`, `NotFound`, `Conflict`, `Invalid`, ...) when the body carried one. */
  reason?: string;
  /** metav1.Status message when the body carried one. */
  message?: string;
}

/**
 * Reads the status of a failed API call, or undefined when the error did not come from the API server.
 * KubeApi throws KubeApiError; client-node 2.x throws ApiException whose `body` is the raw response text (a JSON metav1.Status), not a
 * parsed object; Watch reports failures as an Error with `statusCode`.
 */
export function apiErrorStatus(error: unknown): ApiErrorStatus | undefined {
  if (error instanceof KubeApiError) {
    const status: ApiErrorStatus = { code: error.code };
    if (error.reason !== undefined) status.reason = error.reason;
    if (error.statusMessage !== undefined) status.message = error.statusMessage;
    return status;
  }
  if (error instanceof ApiException) {
    const status: ApiErrorStatus = { code: error.code };
    const body: unknown = error.body;
    let parsed: unknown = body;
    if (typeof body === "string") {
      try {
        parsed = JSON.parse(body);
      } catch {
        // Not JSON (a proxy or an HTML error page): the code alone is all there is.
        parsed = undefined;
      }
    }
    if (parsed !== null && typeof parsed === "object") {
      const { reason, message } = parsed as { reason?: unknown; message?: unknown };
      if (typeof reason === "string") status.reason = reason;
      if (typeof message === "string") status.message = message;
    }
    return status;
  }
  if (error instanceof Error) {
    const { statusCode } = error as Error & { statusCode?: unknown };
    if (typeof statusCode === "number") return { code: statusCode, message: error.message };
  }
  return undefined;
}

/** The HTTP status code of a failed API call, or undefined when the error did not come from the API server. */
export function apiErrorCode(error: unknown): number | undefined {
  return apiErrorStatus(error)?.code;
}

/** One line for logs: "HTTP 403 Forbidden: <message>" for API errors, the message otherwise. */
export function describeError(error: unknown): string {
  const status = apiErrorStatus(error);
  if (status)
    return `HTTP ${status.code}${status.reason ? ` ${status.reason}` : ""}${status.message ? `: ${status.message}` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

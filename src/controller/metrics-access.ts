/**
 * Who may read /metrics, as controller-runtime's secure serving (filters.WithAuthenticationAndAuthorization)
 * decides it: the bearer token is checked with a TokenReview, then the user is checked with a
 * SubjectAccessReview for `get` on the non-resource URL /metrics (the metrics-reader ClusterRole).
 * Answers are cached briefly (allowed longer than refused, as kube-rbac-proxy does) and the cache is
 * bounded, so a scraper every few seconds costs the API server one review pair per minute, and a flood
 * of random tokens cannot grow memory. Tokens are kept only as SHA-256 digests.
 */
import { hash } from "node:crypto";
import type { KubeApi } from "../kube/api-client.js";
import { describeError } from "../kube/client.js";
import { subjectAccessAllowed } from "../kube/subject-access-review.js";
import type { Logger } from "../logger.js";

/** 200 allowed, 401 no or bad token, 403 authenticated but not allowed, 500 the reviews failed. */
export type AccessAnswer = 200 | 401 | 403 | 500;

export interface MetricsAccessOptions {
  /** How long an allowed and a refused answer are reused (ms). */
  allowedTtlMs?: number;
  refusedTtlMs?: number;
  /** Cached answers at most; the oldest go first. */
  maxEntries?: number;
  now?: () => number;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
}

export class MetricsAccess {
  private readonly cache = new Map<string, { answer: AccessAnswer; until: number }>();
  private readonly allowedTtlMs: number;
  private readonly refusedTtlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly api: KubeApi,
    private readonly logger: Logger,
    options: MetricsAccessOptions = {},
  ) {
    this.allowedTtlMs = options.allowedTtlMs ?? 60_000;
    this.refusedTtlMs = options.refusedTtlMs ?? 10_000;
    this.maxEntries = options.maxEntries ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** The answer for a request with this Authorization header, for GET `path`. */
  async check(authorization: string | undefined, path: string): Promise<AccessAnswer> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match) return 401;
    const key = `${path} ${hash("sha256", match[1]!, "hex")}`;
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached && cached.until > now) return cached.answer;
    this.cache.delete(key);
    let answer: AccessAnswer;
    try {
      answer = await this.review(match[1]!, path);
    } catch (error) {
      // Not cached: the API server may be back on the next scrape.
      this.logger.warn("metrics access review failed", { error: describeError(error) });
      return 500;
    }
    this.remember(key, answer, now);
    return answer;
  }

  private async review(token: string, path: string): Promise<AccessAnswer> {
    const review = await this.api.create<{ status?: TokenReviewStatus }>(
      "/apis/authentication.k8s.io/v1/tokenreviews",
      { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
    );
    const user = review.status?.user;
    if (!review.status?.authenticated || !user?.username) return 401;
    const allowed = await subjectAccessAllowed(
      this.api,
      { user: user.username, uid: user.uid, groups: user.groups, extra: user.extra },
      { nonResource: { path, verb: "get" } },
    );
    return allowed ? 200 : 403;
  }

  private remember(key: string, answer: AccessAnswer, now: number): void {
    while (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    this.cache.set(key, { answer, until: now + (answer === 200 ? this.allowedTtlMs : this.refusedTtlMs) });
  }

  /** Cached answers now held (for tests). */
  get size(): number {
    return this.cache.size;
  }
}

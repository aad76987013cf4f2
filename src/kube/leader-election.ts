/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics and timings
 * (lease 15 s, renew deadline 10 s, retry 2 s). Writes carry the resourceVersion read, so two
 * candidates can never both believe a write made them leader. A leader that cannot renew within
 * the renew deadline steps down before any other candidate may take over (deadline < duration).
 */
import type { KubeApi } from "./api-client.js";
import { apiErrorCode, describeError } from "./client.js";
import { TokenBucket } from "./token-bucket.js";
import { systemClock, type Clock } from "../api/clock.js";

/** A coordination.k8s.io/v1 Lease, the fields the elector reads and writes. */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    /** MicroTime: RFC 3339 with microseconds. */
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** Where the one Lease lives: the API server (kubernetesLeaseStore), or a stand-in in unit tests. */
export interface LeaseStore {
  /** The Lease, or undefined when it does not exist. */
  read(): Promise<Lease | undefined>;
  /** Creates it; fails with 409 when it exists (another candidate was first). */
  create(lease: Lease): Promise<void>;
  /** Replaces it; fails with 409 when its resourceVersion is no longer current. */
  replace(lease: Lease): Promise<void>;
}

/**
 * The Lease's own client rate limit: 20 requests a second, burst 20, what the elector asks at the
 * most (a read and a write every retry period, 100 ms at the shortest), so it only stops a runaway.
 */
const leaseRequestsPerSecond = 20;

/**
 * The Lease on the API server. Its calls wait on a rate limiter of their own, not the client's
 * (--kube-api-qps): behind a backlog of CSR and PodCertificateRequest writes a renewal would land
 * past the renew deadline, and the leader would step down while merely busy.
 */
export function kubernetesLeaseStore(client: KubeApi, namespace: string, name: string): LeaseStore {
  const api = client.withOwnRateLimiter(new TokenBucket(leaseRequestsPerSecond, leaseRequestsPerSecond));
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  const typed = (lease: Lease): Lease => ({ ...lease, apiVersion: "coordination.k8s.io/v1", kind: "Lease" });
  return {
    read: () => api.getIfExists<Lease>(`${collection}/${name}`),
    create: async (lease) => {
      await api.create(collection, typed(lease));
    },
    replace: async (lease) => {
      await api.replace(`${collection}/${name}`, typed(lease));
    },
  };
}

/** A MicroTime as the API server writes it: 2026-11-23T12:00:00.123000Z. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Time and timers; unit tests drive the elector with a manual clock. */
  clock?: Clock;
  /** Jitter added to each retry period, as a fraction of it (default: random up to 0.2). */
  jitter?: () => number;
  logger?: (message: string, fields?: Record<string, unknown>) => void;
}

export const defaultLeaderElectionTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** client-go's JitterFactor: a retry waits up to 1.2 retry periods (jitteredRetry below). */
const leaderElectionJitterFactor = 1.2;

/**
 * The longest lease duration: far beyond any sane failover, and it keeps every timer below
 * setTimeout's 2^31-1 ms (a longer one fires after 1 ms: a Lease write loop) and
 * leaseDurationSeconds inside the API server's int32.
 */
const maximumLeaseDurationMs = 3_600_000;
/** The shortest retry period: a shorter one is a tight loop of Lease reads and writes. */
const minimumRetryPeriodMs = 100;

/**
 * What is wrong with these timings, as client-go's NewLeaderElector refuses them, or undefined. A
 * leader must give up (renew deadline) before a peer may take over (lease duration), and must get at
 * least one jittered retry in before giving up. Beyond client-go: the lease at most 1h, the retry at
 * least 100ms (maximumLeaseDurationMs, minimumRetryPeriodMs).
 */
export function leaderElectionTimingsProblem(
  timings: typeof defaultLeaderElectionTimings,
): string | undefined {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timings;
  if (![leaseDurationMs, renewDeadlineMs, retryPeriodMs].every((ms) => Number.isFinite(ms) && ms > 0))
    return "the lease duration, renew deadline and retry period must be positive";
  if (leaseDurationMs > maximumLeaseDurationMs)
    return "the lease duration must be at most 1h (longer overflows the timers and the Lease's int32 seconds)";
  if (retryPeriodMs < minimumRetryPeriodMs)
    return "the retry period must be at least 100ms (shorter writes the Lease in a tight loop)";
  if (leaseDurationMs <= renewDeadlineMs) return "the lease duration must be greater than the renew deadline";
  if (renewDeadlineMs <= leaderElectionJitterFactor * retryPeriodMs)
    return `the renew deadline must be greater than the retry period times ${leaderElectionJitterFactor} (client-go's jitter factor)`;
  return undefined;
}

export class LeaderElector {
  private leading = false;
  private lastRenewAt = 0;
  /** The Lease record as last read, and when (by this clock) it was first seen so. */
  private observed: { record: string; at: number } | undefined;
  private timer: { cancel(): void } | undefined;
  private readonly clock: Clock;
  private stopped = false;
  private readonly listeners: ((leading: boolean) => void)[] = [];

  constructor(
    private readonly store: LeaseStore,
    private readonly options: LeaderElectionOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    const problem = leaderElectionTimingsProblem(options);
    if (problem) throw new Error(`leader election: ${problem}`);
  }

  get isLeader(): boolean {
    return this.leading && this.now() - this.lastRenewAt < this.options.renewDeadlineMs;
  }

  onChange(listener: (leading: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      await this.tryAcquireOrRenew();
      if (this.leading && this.now() - this.lastRenewAt >= this.options.renewDeadlineMs)
        this.setLeading(false);
      if (!this.stopped) this.timer = this.clock.setTimeout(() => void tick(), this.jitteredRetry());
    };
    void tick();
  }

  /** Stops campaigning; a leader releases the lease so a peer takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.store.read();
      if (!lease?.spec || lease.spec.holderIdentity !== this.options.identity) return;
      const { holderIdentity: _, ...spec } = lease.spec;
      await this.store.replace({ ...lease, spec: { ...spec, leaseDurationSeconds: 1 } });
    } catch (error) {
      // Best effort: if the release fails the lease simply expires after its duration.
      this.log("could not release the lease", { error: describeError(error) });
    }
  }

  private now(): number {
    return this.clock.now();
  }

  private jitteredRetry(): number {
    const jitter = this.options.jitter?.() ?? Math.random() * (leaderElectionJitterFactor - 1);
    return this.options.retryPeriodMs * (1 + jitter);
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.log(leading ? "became leader" : "stopped leading", {
      lease: `${this.options.namespace}/${this.options.name}`,
    });
    for (const listener of this.listeners) listener(leading);
  }

  private log(message: string, fields: Record<string, unknown> = {}): void {
    this.options.logger?.(message, { identity: this.options.identity, ...fields });
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.options;
    const now = this.now();
    const leaseDurationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    let lease: Lease | undefined;
    try {
      lease = await this.store.read();
    } catch (error) {
      return this.log("reading the lease failed", { error: describeError(error) });
    }
    if (lease === undefined) {
      try {
        await this.store.create({
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        this.lastRenewAt = now;
        this.setLeading(true);
      } catch (createError) {
        // Another candidate created it first (409): try again next round.
        this.log("creating the lease failed", { error: describeError(createError) });
      }
      return;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    // As client-go: a Lease expires a lease duration after this instance last saw it change, by its
    // own clock. The holder's renewTime is another machine's clock; trusting it would let a follower
    // whose clock runs ahead take over from a leader that is still renewing.
    const record = `${holder ?? ""} ${spec.renewTime ?? ""} ${lease.metadata?.resourceVersion ?? ""}`;
    // Seen when the answer arrived, not when it was asked for: a slow read must not age the Lease.
    if (this.observed?.record !== record) this.observed = { record, at: this.now() };
    const expiresAt = this.observed.at + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (holder && holder !== identity && now < expiresAt) {
      this.setLeading(false);
      return;
    }
    const transition = holder !== identity;
    const renewed: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: microTime(now),
        ...(transition
          ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
          : {}),
      },
    };
    try {
      // resourceVersion from the read makes this a compare-and-swap: a concurrent winner makes it fail with 409.
      await this.store.replace(renewed);
      this.lastRenewAt = now;
      this.setLeading(true);
    } catch (error) {
      this.log("renewing the lease failed", { error: describeError(error), code: apiErrorCode(error) });
    }
  }
}

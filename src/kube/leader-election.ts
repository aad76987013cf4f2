/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics and timings
 * (lease 15 s, renew deadline 10 s, retry 2 s). Writes carry the resourceVersion read, so two
 * candidates can never both believe a write made them leader. A leader that cannot renew within
 * the renew deadline steps down before any other candidate may take over (deadline < duration).
 */
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from "@kubernetes/client-node";
import { apiErrorCode, describeError } from "./client.js";
import type { Clock } from "../api/clock.js";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  now?: Clock["now"];
  logger?: (message: string, fields?: Record<string, unknown>) => void;
}

export const defaultLeaderElectionTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

export class LeaderElector {
  private leading = false;
  private lastRenewAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly listeners: ((leading: boolean) => void)[] = [];

  constructor(
    private readonly api: CoordinationV1Api,
    private readonly options: LeaderElectionOptions,
  ) {}

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
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.jitteredRetry());
    };
    void tick();
  }

  /** Stops campaigning; a leader releases the lease so a peer takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.api.readNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
      });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      lease.spec.holderIdentity = undefined;
      lease.spec.leaseDurationSeconds = 1;
      await this.api.replaceNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
        body: lease,
      });
    } catch (error) {
      // Best effort: if the release fails the lease simply expires after its duration.
      this.log("could not release the lease", { error: describeError(error) });
    }
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private jitteredRetry(): number {
    return this.options.retryPeriodMs * (1 + Math.random() * 0.2);
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
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (apiErrorCode(error) !== 404)
        return this.log("reading the lease failed", { error: describeError(error) });
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds,
              acquireTime: new V1MicroTime(now),
              renewTime: new V1MicroTime(now),
              leaseTransitions: 0,
            },
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
    const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expiresAt = renewedAt + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (holder && holder !== identity && now < expiresAt) {
      this.setLeading(false);
      return;
    }
    const transition = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: new V1MicroTime(now),
      ...(transition
        ? { acquireTime: new V1MicroTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
        : {}),
    };
    try {
      // resourceVersion from the read makes this a compare-and-swap: a concurrent winner makes it fail with 409.
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      this.lastRenewAt = now;
      this.setLeading(true);
    } catch (error) {
      this.log("renewing the lease failed", { error: describeError(error), code: apiErrorCode(error) });
    }
  }
}

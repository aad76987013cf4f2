/**
 * Kubernetes Events about the objects we act on (`kubectl describe csr` shows them). Recording
 * is best effort: a failed Event never fails the work it describes.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "../logger.js";
import type { KubeApi } from "./api-client.js";
import { describeError } from "./client.js";
import { kubernetesTime } from "./time.js";
import { TokenBucket } from "./token-bucket.js";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  /** Absent for cluster-scoped objects, whose Events go to the default namespace. */
  namespace?: string;
}

export interface EventRecorder {
  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void;
}

/** Where Events are written: the API server (kubernetesEventWriter), or a stand-in in unit tests. */
export interface EventWriter {
  createEvent(namespace: string, event: CoreEvent): Promise<void>;
}

/** A core/v1 Event as the recorder writes it. */
export interface CoreEvent {
  apiVersion: "v1";
  kind: "Event";
  metadata: { name: string; namespace: string };
  involvedObject: { apiVersion: string; kind: string; name: string; uid?: string; namespace?: string };
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

export function kubernetesEventWriter(api: KubeApi): EventWriter {
  return {
    createEvent: async (namespace, event) => {
      // Limited by the recorder's own EventBudget, not by the controller's client limit.
      await api.createOutsideRateLimit(`/api/v1/namespaces/${namespace}/events`, event);
    },
  };
}

/**
 * Limits of the recorder: a budget of its own, apart from the client rate limit that the controller's
 * reads and writes share (kube-controller-manager's Events go through a client of their own too).
 */
export interface EventBudget {
  ratePerSecond: number;
  burst: number;
  /** Events waiting beyond this are dropped (the outcome is in the object's status anyway). */
  maxQueued: number;
  /** The same object, reason and message again within this window is dropped. */
  repeatWindowMs: number;
}

export const defaultEventBudget: EventBudget = {
  ratePerSecond: 5,
  burst: 25,
  maxQueued: 100,
  repeatWindowMs: 10 * 60_000,
};

/**
 * Records Events through a bounded queue with its own token bucket, dropping repeats and
 * overflow: a controller that starts with thousands of pending CSRs must not spend its API budget
 * (and istiod's 60 s) on Events before it signs anything.
 */
export class KubernetesEventRecorder implements EventRecorder {
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly recent = new Map<string, number>();
  private readonly bucket: TokenBucket;
  private pumping = false;
  dropped = 0;

  constructor(
    private readonly writer: EventWriter,
    private readonly component: string,
    private readonly instance: string,
    private readonly logger: Logger,
    private readonly budget: EventBudget = defaultEventBudget,
  ) {
    this.bucket = new TokenBucket(budget.ratePerSecond, budget.burst);
  }

  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    const now = Date.now();
    const key = `${target.uid ?? target.name}\0${reason}\0${message}`;
    const seen = this.recent.get(key);
    if (
      (seen !== undefined && now - seen < this.budget.repeatWindowMs) ||
      this.queue.length >= this.budget.maxQueued
    ) {
      this.dropped++;
      return;
    }
    this.recent.set(key, now);
    if (this.recent.size > 10_000) {
      for (const [recentKey, at] of this.recent)
        if (now - at >= this.budget.repeatWindowMs) this.recent.delete(recentKey);
    }
    this.queue.push(() => this.send(target, type, reason, message));
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const waitMs = this.bucket.reserve();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
        await this.queue.shift()!();
      }
    } finally {
      this.pumping = false;
    }
  }

  private async send(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    const namespace = target.namespace ?? "default";
    const now = kubernetesTime(new Date());
    try {
      await this.writer.createEvent(namespace, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${target.name}.${randomBytes(8).toString("hex")}`, namespace },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.name,
          ...(target.uid ? { uid: target.uid } : {}),
          ...(target.namespace ? { namespace: target.namespace } : {}),
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (error) {
      // Events are advisory; the outcome itself is in the object's status.
      this.logger.warn("could not record event", {
        reason,
        object: target.name,
        error: describeError(error),
      });
    }
  }
}

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
  /**
   * Who caused the object, for the recorder's per-tenant share (a CSR's signer name plus requester, a
   * PodCertificateRequest's namespace, a Signer itself); absent, the object is its own tenant.
   */
  tenant?: string;
  /**
   * Who asked, whatever the tenant, for the recorder's per-requester share (a CSR's requester, a
   * namespace's service accounts as one); absent, no such share is taken.
   */
  requester?: string;
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
  /** What one involved object may use of the above; defaultPerObjectEventBudget when absent. */
  perObject?: PerObjectEventBudget;
  /** What one tenant's objects together may use; defaultPerTenantEventBudget when absent. */
  perTenant?: PerObjectEventBudget;
  /** What one requester's objects together may hold of the queue; defaultPerRequesterEventBudget when absent. */
  perRequester?: SlotsOnlyEventBudget;
}

/**
 * One object's share, as client-go's EventSourceObjectSpamFilter: a token bucket per involved object
 * (`burst` Events, then one per `refillEveryMs`), and at most `maxQueued` of the queue's slots. A
 * tenant rewriting its CA Secret in a loop changes its Signer's messages each time, so the repeat
 * window does not catch it: without this its Signer's Events would fill the queue and other
 * objects' Events (a CSR's refusal Warning) would be dropped.
 */
export interface PerObjectEventBudget {
  burst: number;
  refillEveryMs: number;
  maxQueued: number;
}

/** client-go's spam filter figures (burst 25, one per 5 minutes); 10 of the 100 queue slots. */
export const defaultPerObjectEventBudget: PerObjectEventBudget = {
  burst: 25,
  refillEveryMs: 5 * 60_000,
  maxQueued: 10,
};

/**
 * A tenant's share, taken by every Event of its objects besides each object's own: a tenant creating
 * CSRs (or PodCertificateRequests) by the hundred gets a fresh object share with each, so without
 * this its refusals would fill the queue and another tenant's Denied Warning would be dropped. Twice
 * an object's burst and slots, refilled 50 times as fast (10 a minute), so a tenant with many
 * requests of its own still sees most of their Events.
 */
export const defaultPerTenantEventBudget: PerObjectEventBudget = {
  burst: 50,
  refillEveryMs: 6_000,
  maxQueued: 20,
};

/** A share held to queue slots only, with no rate of its own. */
export interface SlotsOnlyEventBudget {
  maxQueued: number;
}

/**
 * A requester's share, taken besides the object's and the tenant's by Events of objects that name
 * one (CSRs): a CSR's tenant is its signer name plus requester, so a requester sending CSRs to many
 * signer names gets a fresh tenant share with each, and without this 30 signer names would fill the
 * queue and another tenant's Denied Warning would be dropped. Slots only: a requester that files
 * every tenant's CSRs (istiod, one signer name per tenant) would otherwise make one rate for the
 * whole mesh, and two busy tenants would spend it and silence every other tenant's Warnings (an
 * adversarial review measured it); each tenant's rate is its own share's.
 */
export const defaultPerRequesterEventBudget: SlotsOnlyEventBudget = { maxQueued: 40 };

export const defaultEventBudget: EventBudget = {
  ratePerSecond: 5,
  burst: 25,
  maxQueued: 100,
  repeatWindowMs: 10 * 60_000,
  perObject: defaultPerObjectEventBudget,
  perTenant: defaultPerTenantEventBudget,
  perRequester: defaultPerRequesterEventBudget,
};

/**
 * Objects (and, apart, tenants and requesters) whose share is remembered (and repeats before their
 * window is pruned). Past it, the least recently recorded are forgotten (their share starts afresh
 * if they come back): one recording in a loop is always among the most recent, so it keeps its
 * spent share.
 */
const trackedObjects = 10_000;

/**
 * Why an Event was dropped: a repeat within the window, the recorder's queue full, the involved
 * object's share spent, its tenant's share spent, or its requester's share spent
 * (csr_signer_events_dropped_total's `cause`). A tenant share already spent is asked before
 * anything else, so such an Event counts as `tenant` even when it repeats one or the queue is full;
 * otherwise repeat, queue, requester, then object.
 */
export type EventDropCause = "repeat" | "queue" | "object" | "tenant" | "requester";

interface ObjectShare {
  /** Absent for a slots-only share. */
  bucket: TokenBucket | undefined;
  queued: number;
}

/** No slot or no token left in this share. */
function spent(share: ObjectShare, budget: PerObjectEventBudget | SlotsOnlyEventBudget): boolean {
  return share.queued >= budget.maxQueued || (share.bucket?.availableInMs() ?? 0) > 0;
}

/**
 * Records Events through a bounded queue with its own token bucket, dropping repeats and
 * overflow: a controller that starts with thousands of pending CSRs must not spend its API budget
 * (and istiod's 60 s) on Events before it signs anything.
 */
export class KubernetesEventRecorder implements EventRecorder {
  private readonly queue: { shares: readonly ObjectShare[]; send: () => Promise<void> }[] = [];
  private readonly recent = new Map<string, number>();
  private readonly objects = new Map<string, ObjectShare>();
  private readonly tenants = new Map<string, ObjectShare>();
  private readonly requesters = new Map<string, ObjectShare>();
  private readonly bucket: TokenBucket;
  private readonly perObject: PerObjectEventBudget;
  private readonly perTenant: PerObjectEventBudget;
  private readonly perRequester: SlotsOnlyEventBudget;
  private pumping = false;
  dropped = 0;

  constructor(
    private readonly writer: EventWriter,
    private readonly component: string,
    private readonly instance: string,
    private readonly logger: Logger,
    private readonly budget: EventBudget = defaultEventBudget,
    private readonly now: () => number = Date.now,
    /** Told of each dropped Event's cause (the controller counts them in its metrics). */
    private readonly onDropped: (cause: EventDropCause) => void = () => {},
  ) {
    this.bucket = new TokenBucket(budget.ratePerSecond, budget.burst, now);
    this.perObject = budget.perObject ?? defaultPerObjectEventBudget;
    this.perTenant = budget.perTenant ?? defaultPerTenantEventBudget;
    this.perRequester = budget.perRequester ?? defaultPerRequesterEventBudget;
  }

  /** How many objects' shares are remembered (bounded by trackedObjects). */
  get trackedObjects(): number {
    return this.objects.size;
  }

  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    const now = this.now();
    const objectKey = `${target.kind}\0${target.namespace ?? ""}\0${target.name}\0${target.uid ?? ""}`;
    // The tenant's share is asked first: under load the commonest drop is a tenant's spent share
    // (an Issued Event per certificate), told by one share lookup before the repeat key (with the
    // whole message) is hashed. Looking it up moves it to the most recent place, so a tenant that
    // keeps trying is never forgotten with its share spent.
    const tenant = this.shareOf(this.tenants, target.tenant ?? objectKey, this.perTenant);
    if (spent(tenant, this.perTenant)) return this.drop("tenant");
    const key = `${objectKey}\0${reason}\0${message}`;
    const seen = this.recent.get(key);
    // Then repeats and a full queue, before the other shares are looked up (two Map reads); a
    // repeat does not refresh its object's place among the remembered.
    if (seen !== undefined && now - seen < this.budget.repeatWindowMs) return this.drop("repeat");
    if (this.queue.length >= this.budget.maxQueued) return this.drop("queue");
    // Every share has a token before any gives one: a drop spends nothing. The requester's share is
    // looked up before the object's: a CSR's first Event would otherwise make its object a share
    // only to drop it (a new share per certificate issued).
    const requester =
      target.requester === undefined
        ? undefined
        : this.shareOf(this.requesters, target.requester, this.perRequester);
    if (requester && spent(requester, this.perRequester)) return this.drop("requester");
    const object = this.shareOf(this.objects, objectKey, this.perObject);
    if (spent(object, this.perObject)) return this.drop("object");
    const shares = requester ? [object, tenant, requester] : [object, tenant];
    for (const share of shares) share.bucket?.tryTake();
    // Re-inserted, so the map stays in recording order: pruning stops at the first entry still in
    // its window, and past the bound the oldest go first (a forgotten one may repeat once, within
    // the budgets), so a recording costs the same whatever the map holds.
    this.recent.delete(key);
    this.recent.set(key, now);
    for (const [recentKey, at] of this.recent) {
      if (this.recent.size <= trackedObjects && now - at < this.budget.repeatWindowMs) break;
      this.recent.delete(recentKey);
    }
    for (const share of shares) share.queued++;
    this.queue.push({ shares, send: () => this.send(target, type, reason, message) });
    void this.pump();
  }

  private drop(cause: EventDropCause): void {
    this.dropped++;
    this.onDropped(cause);
  }

  /** The object's (tenant's, requester's) share, moved to the end of `shares` (most recent last). */
  private shareOf(
    shares: Map<string, ObjectShare>,
    key: string,
    budget: PerObjectEventBudget | SlotsOnlyEventBudget,
  ): ObjectShare {
    const known = shares.get(key);
    if (known) shares.delete(key);
    else if (shares.size >= trackedObjects)
      for (const [oldKey, share] of shares) {
        if (shares.size < trackedObjects * 0.9) break;
        if (share.queued === 0) shares.delete(oldKey); // one with Events queued keeps its count
      }
    const share = known ?? {
      bucket:
        "burst" in budget ? new TokenBucket(1000 / budget.refillEveryMs, budget.burst, this.now) : undefined,
      queued: 0,
    };
    shares.set(key, share);
    return share;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const waitMs = this.bucket.reserve();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs).unref());
        const next = this.queue.shift()!;
        for (const share of next.shares) share.queued--;
        await next.send();
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
    const now = kubernetesTime(new Date(this.now()));
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

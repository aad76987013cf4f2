/**
 * Kubernetes Events about the objects we act on (`kubectl describe csr` shows them). Recording
 * is best effort: a failed Event never fails the work it describes.
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";
import type { Logger } from "../logger.js";
import { describeError } from "./client.js";

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

export class KubernetesEventRecorder implements EventRecorder {
  constructor(
    private readonly api: CoreV1Api,
    private readonly component: string,
    private readonly instance: string,
    private readonly logger: Logger,
  ) {}

  record(target: EventTarget, type: "Normal" | "Warning", reason: string, message: string): void {
    const namespace = target.namespace ?? "default";
    const now = new Date();
    this.api
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${target.name}.${randomBytes(8).toString("hex")}`, namespace },
          involvedObject: {
            apiVersion: target.apiVersion,
            kind: target.kind,
            name: target.name,
            uid: target.uid,
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
        },
      })
      .catch((error: unknown) => {
        // Events are advisory; the outcome itself is in the object's status.
        this.logger.warn("could not record event", {
          reason,
          object: target.name,
          error: describeError(error),
        });
      });
  }
}

/**
 * The soak's faults, one at a time on a seeded schedule: each kind once in a shuffled order, then
 * kinds drawn at random until the fault window is used up, with a random pause after each. Every
 * fault is logged with its start and end (when the system is whole again as the harness sees it).
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { KubeApi, patchContentType } from "../../src/kube/api-client.js";
import { signerApiGroup, signerApiVersion, signerPlural } from "../../src/api/signer.js";
import type { ControlPlane } from "../../test/support/control-plane.js";
import { compactEtcdHistory } from "../../test/support/control-plane/etcd-compaction.js";
import { controllerNamespace } from "../../test/support/controller.js";
import { delay, waitFor } from "../../test/support/wait.js";
import type { TestCertificateAuthority } from "../../test/support/pki.js";
import { cacertsFiles, createIntermediateCertificateAuthority } from "../../src/pki/offline-ca.js";
import { tenants } from "./load.js";
import type { LeasePoller } from "./observers.js";
import type { Random } from "./random.js";
import type { Incarnation, Replicas } from "./replicas.js";

export const faultKinds = [
  "leader-sigkill",
  "follower-sigkill",
  "leader-sigstop",
  "apiserver-restart",
  "etcd-restart",
  "apiserver-sigstop",
  "ca-rotation",
  "signer-edit",
] as const;
export type FaultKind = (typeof faultKinds)[number];

/** Lease duration of the CLI's defaults (client-go's): 15 s. */
export const leaseDurationMs = 15_000;
/** The controller informers' watchdog (src/controller/informers.ts default): a silent watch is restarted after it. */
export const watchTimeoutMs = 90_000;

export interface FaultRecord {
  kind: FaultKind;
  /** Date.now() at the start (signal sent, restart begun) and when the harness saw it undone. */
  startedAt: number;
  endedAt: number;
  detail: string;
  /** For leader SIGKILL: from the kill until another identity held the Lease. */
  failoverMs?: number;
  /**
   * Set when the harness never saw the fault undone (a restarted kube-apiserver not ready within
   * the control plane's 90 s): why, and whether a second restart brought the control plane back.
   */
  notRecovered?: string;
}

/**
 * The record of a fault whose injection or recovery threw: kept in the ledger (the soak goes on to
 * its table, where it counts against "faults recovered from") instead of aborting the run.
 */
export function unrecoveredFault(
  kind: FaultKind,
  startedAt: number,
  error: unknown,
  afterwards: string,
  endedAt = Date.now(),
): FaultRecord {
  const why = error instanceof Error ? error.message.split("\n")[0]! : String(error);
  return { kind, startedAt, endedAt, detail: `did not recover: ${why}; ${afterwards}`, notRecovered: why };
}

/**
 * After a control-plane fault that did not recover, one more try at a whole control plane, so the
 * load can drain and the ledger be read from the API server: a fresh kube-apiserver (and etcd, after
 * an etcd restart) start. The controller faults leave the control plane alone.
 */
export async function restoreControlPlane(
  kind: FaultKind,
  controlPlane: Pick<ControlPlane, "restartApiServer" | "restartEtcd">,
): Promise<string> {
  if (kind !== "apiserver-restart" && kind !== "apiserver-sigstop" && kind !== "etcd-restart")
    return "the control plane left as it was (a controller fault)";
  const startedAt = Date.now();
  try {
    if (kind === "etcd-restart") await controlPlane.restartEtcd();
    await controlPlane.restartApiServer();
    return `the control plane was back ${((Date.now() - startedAt) / 1000).toFixed(1)} s later after another restart`;
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0]! : String(error);
    return `another restart failed too (${why})`;
  }
}

export interface FaultContext {
  controlPlane: ControlPlane;
  admin: KubeConfig;
  replicas: Replicas;
  lease: LeasePoller;
  random: Random;
  /** Each tenant's CA (root + current intermediate), rotated here. */
  authorities: Map<string, TestCertificateAuthority>;
  caSecretName: (tenant: string) => string;
  signerObjectName: (tenant: string) => string;
  log: (message: string) => void;
}

/** Rough duration of each fault, to fit the schedule into the window. */
const expectedMs: Record<FaultKind, number> = {
  "leader-sigkill": leaseDurationMs + 8_000,
  "follower-sigkill": 8_000,
  "leader-sigstop": leaseDurationMs + 15_000,
  "apiserver-restart": 10_000,
  "etcd-restart": 8_000,
  "apiserver-sigstop": watchTimeoutMs + 15_000,
  "ca-rotation": 1_000,
  "signer-edit": 1_000,
};

/** The kinds in the order they will run within `windowMs` (each once first when they fit). */
export function faultSchedule(
  random: Random,
  windowMs: number,
  pauseMs: [number, number],
  kinds: readonly FaultKind[] = faultKinds,
): FaultKind[] {
  const schedule: FaultKind[] = [];
  let used = 0;
  const meanPause = (pauseMs[0] + pauseMs[1]) / 2;
  const fits = (kind: FaultKind): boolean => used + expectedMs[kind] + meanPause <= windowMs;
  for (const kind of random.shuffle(kinds)) {
    if (!fits(kind)) continue;
    schedule.push(kind);
    used += expectedMs[kind] + meanPause;
  }
  // Then more of the short ones, drawn at random, while they fit (never a second 100 s freeze).
  const repeatable = kinds.filter((kind) => kind !== "apiserver-sigstop");
  for (let misses = 0; misses < 20 && repeatable.length > 0;) {
    const kind = repeatable[random.integer(repeatable.length)]!;
    if (!fits(kind)) {
      misses++;
      continue;
    }
    schedule.push(kind);
    used += expectedMs[kind] + meanPause;
  }
  return schedule;
}

const readiness = (incarnation: Incarnation): string =>
  incarnation.readyAfterMs === undefined
    ? " (not ready within 2 min)"
    : ` (ready after ${(incarnation.readyAfterMs / 1000).toFixed(1)} s)`;

export async function injectFault(kind: FaultKind, context: FaultContext): Promise<FaultRecord> {
  const { controlPlane, replicas, lease, log } = context;
  const startedAt = Date.now();
  const record = (detail: string, extra: Partial<FaultRecord> = {}): FaultRecord => ({
    kind,
    startedAt,
    endedAt: Date.now(),
    detail,
    ...extra,
  });
  const leaderAndFollower = async () => {
    const holder = await waitFor(
      "a Lease holder that is a running replica",
      async () => {
        const tenure = lease.tenures.at(-1);
        const incarnation = tenure ? replicas.byIdentity(tenure.holder) : undefined;
        return incarnation && !incarnation.stopped ? incarnation : undefined;
      },
      60_000,
      { intervalMs: 100 },
    );
    const other = replicas.current(holder.slot === "a" ? "b" : "a");
    return { leader: holder, follower: other };
  };
  switch (kind) {
    case "leader-sigkill": {
      const { leader, follower } = await leaderAndFollower();
      const killedAt = Date.now();
      log(`SIGKILL leader ${leader.identity}`);
      await replicas.kill(leader);
      const takenOver = await waitFor(
        "another replica to hold the Lease",
        async () => lease.takenOverAfter(killedAt, leader.identity),
        60_000,
        { intervalMs: 100 },
      );
      const failoverMs = takenOver - killedAt;
      log(`  failover to ${lease.holderAt(takenOver)?.holder} after ${failoverMs} ms; restarting the slot`);
      const replacement = await replicas.start(leader.slot);
      return record(
        `killed ${leader.identity} (follower ${follower?.identity ?? "none"}); replaced by ${replacement.identity}${readiness(replacement)}`,
        { failoverMs },
      );
    }
    case "follower-sigkill": {
      const { follower } = await leaderAndFollower();
      if (!follower) return record("no follower running: skipped");
      log(`SIGKILL follower ${follower.identity}`);
      await replicas.kill(follower);
      const replacement = await replicas.start(follower.slot);
      return record(
        `killed ${follower.identity}; replaced by ${replacement.identity}${readiness(replacement)}`,
      );
    }
    case "leader-sigstop": {
      const { leader } = await leaderAndFollower();
      // Past the lease by more than a retry period (2 s + jitter) and a loaded API server's answers: the
      // follower takes over while the leader is frozen (at 20 s it sometimes did not, on a loaded machine).
      const frozenMs = leaseDurationMs + 10_000;
      const frozenAt = Date.now();
      log(`SIGSTOP leader ${leader.identity} for ${frozenMs} ms`);
      replicas.freeze(leader);
      await delay(frozenMs);
      const resumedAt = Date.now();
      replicas.resume(leader);
      const takenOver = lease.takenOverAfter(frozenAt, leader.identity);
      const takeover =
        takenOver !== undefined && takenOver < resumedAt
          ? `taken over after ${takenOver - frozenAt} ms`
          : "not taken over while frozen";
      log(`  SIGCONT ${leader.identity}; Lease ${takeover}`);
      return record(`froze ${leader.identity} ${frozenMs} ms (lease ${leaseDurationMs} ms), ${takeover}`);
    }
    case "apiserver-restart": {
      log("kube-apiserver restart (etcd history compacted while it is down)");
      await controlPlane.restartApiServer({
        whileDown: () => compactEtcdHistory(controlPlane.etcdUrl, `csr-signer-soak/${startedAt}`),
      });
      return record("SIGTERM, compaction, start with the same flags");
    }
    case "etcd-restart": {
      log("etcd restart");
      await controlPlane.restartEtcd();
      return record("SIGTERM, start on the same data folder");
    }
    case "apiserver-sigstop": {
      const frozenMs = watchTimeoutMs + 5_000;
      log(`kube-apiserver SIGSTOP for ${frozenMs} ms (past the ${watchTimeoutMs} ms watch watchdog)`);
      await controlPlane.pauseApiServer();
      try {
        await delay(frozenMs);
      } finally {
        await controlPlane.resumeApiServer();
      }
      return record(`froze kube-apiserver ${frozenMs} ms`);
    }
    case "ca-rotation": {
      const tenant = tenants[context.random.integer(tenants.length)]!;
      const authority = context.authorities.get(tenant)!;
      const intermediate = await createIntermediateCertificateAuthority(authority.root, {
        subject: [
          { type: "O", value: "csr-signer soak" },
          { type: "CN", value: `soak ${tenant} intermediate ${startedAt}` },
        ],
        lifetimeSeconds: 365 * 86400,
        keyType: "ecdsa-p256",
      });
      const files = cacertsFiles(intermediate, [authority.root.certificate], [authority.root.certificate]);
      context.authorities.set(tenant, { ...authority, intermediate, files });
      log(`CA Secret of tenant ${tenant} rotated to a new intermediate (same root)`);
      await context.admin.makeApiClient(CoreV1Api).replaceNamespacedSecret({
        name: context.caSecretName(tenant),
        namespace: controllerNamespace,
        body: {
          metadata: { name: context.caSecretName(tenant) },
          type: "Opaque",
          data: Object.fromEntries(
            Object.entries(files).map(([key, value]) => [key, Buffer.from(value).toString("base64")]),
          ),
        },
      });
      return record(`tenant ${tenant}: new intermediate "${`soak ${tenant} intermediate ${startedAt}`}"`);
    }
    case "signer-edit": {
      const tenant = tenants[context.random.integer(tenants.length)]!;
      const name = context.signerObjectName(tenant);
      const path = `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}/${name}`;
      const api = KubeApi.for(context.admin);
      const current = await api.getIfExists<{ spec: { issuance?: { maxDuration?: string } } }>(path);
      const maxDuration = current?.spec.issuance?.maxDuration === "168h" ? "167h" : "168h";
      log(`Signer ${name} edited: spec.issuance.maxDuration -> ${maxDuration}`);
      await api.patchDiscardingResponse(path, patchContentType.merge, {
        spec: { issuance: { maxDuration } },
      });
      return record(`${name}: spec.issuance.maxDuration ${maxDuration}`);
    }
  }
}

/**
 * A real Kubernetes control plane (etcd + kube-apiserver) for integration tests, started the way envtest
 * does it: loopback only, free ports, a fresh temporary folder, TLS verified with a harness CA, the admin
 * authenticated by a client certificate in system:masters.
 *
 * Every run must survive the previous one having crashed: processes run in their own process groups,
 * their ids are recorded under $CSR_SIGNER_CACHE/run, and startControlPlane() kills the groups a dead
 * run left behind (only when their command line still names that run's folder) before starting anew.
 *
 * The parts: control-plane/processes.ts (process groups, logs), control-plane/run-records.ts (crash
 * clean-up), control-plane/certificates.ts (certificates and kubeconfigs), testbin.ts (binaries).
 */
import fsp from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { delay, waitFor } from "./wait.js";
import { testBinary } from "./testbin.js";
import { adminKubeConfig, clientCertificateKubeConfig, createPki } from "./control-plane/certificates.js";
import {
  describeLog,
  exitedProcess,
  fileSize,
  processState,
  readFrom,
  signalGroup,
  spawnInOwnGroup,
  terminate,
  type ManagedProcess,
} from "./control-plane/processes.js";
import { cleanUpStaleRuns, recordProcess, startRun, unregisterRun } from "./control-plane/run-records.js";

export interface ControlPlaneOptions {
  /** Folder holding kube-apiserver; default $KUBE_BIN_DIR, else what `hack/testbin/build.sh --print-dir` says. */
  kubeBinDir?: string;
  /** Folder holding etcd; default $ETCD_BIN_DIR, else what `hack/testbin/build.sh --print-dir` says. */
  etcdBinDir?: string;
  /** How long to wait for /readyz, in milliseconds (default 90 s). */
  readyTimeoutMs?: number;
  /** Flags appended to the kube-apiserver command line (a later flag overrides an earlier one). */
  extraApiServerArgs?: string[];
}

/** A running control plane. Call stop() when done; process exit and SIGINT/SIGTERM also tear it down. */
export interface ControlPlane {
  /** Base URL of the API server, e.g. `https://127.0.0.1:41234`. */
  readonly server: string;
  /** A kubeconfig file for the admin (client certificate in system:masters, all data embedded). */
  readonly kubeconfigPath: string;
  /** The temporary folder holding certificates, etcd data and the logs (etcd.log, kube-apiserver.log). */
  readonly dir: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly servingCaPem: string;
  /** The CA the API server trusts for client certificates (--client-ca-file), to mint more identities. */
  readonly clientCa: { readonly certificatePath: string; readonly keyPath: string };
  /** Milliseconds from the start of startControlPlane() until /readyz answered ok. */
  readonly startupMs: number;
  /** etcd's client URL (plain HTTP on loopback), e.g. for its v3 JSON gateway (`/v3/kv/range`, ...). */
  readonly etcdUrl: string;
  /** A fresh KubeConfig for the admin. */
  kubeConfig(): KubeConfig;
  /**
   * A KubeConfig authenticated by a new client certificate (CN=user, O=each group) signed by the client
   * CA: a real identity, as opposed to impersonation (see test/support/identities.ts).
   */
  clientCertificateKubeConfig(user: string, groups: string[]): Promise<KubeConfig>;
  /**
   * Stops the kube-apiserver process group (SIGTERM, SIGKILL after a grace period) and starts it again
   * with the same binary, flags, port and certificates, then waits for /readyz. etcd keeps running, so
   * every object survives. `whileDown` runs once the old process has exited and before the new one is
   * started; the server is started again even when it throws (its error is rethrown afterwards).
   * Rejects when a restart, stop or pause of this control plane is already in progress.
   */
  restartApiServer(options?: { whileDown?: () => Promise<void> }): Promise<void>;
  /**
   * Freezes the kube-apiserver process group with SIGSTOP, resolving once the process is stopped: its
   * sockets stay open and connections are still accepted by the kernel, but nothing is answered.
   * Always pair with resumeApiServer(); stop() resumes a paused server before terminating it.
   */
  pauseApiServer(): Promise<void>;
  /** SIGCONT to the kube-apiserver process group, then waits for /readyz. */
  resumeApiServer(): Promise<void>;
  /**
   * Stops etcd (SIGTERM, SIGKILL after a grace period) and starts it again on the same data folder,
   * flags and ports, then waits for its /health; kube-apiserver keeps running and reconnects.
   */
  restartEtcd(): Promise<void>;
  /** Stops kube-apiserver then etcd (SIGTERM, SIGKILL after a few seconds) and removes the folder. */
  stop(): Promise<void>;
  /**
   * Records another process group of this run (an istiod, a pilot-agent), under a name unique in the
   * run, so that it is killed with the run's processes should the test process die, and by the next
   * run's clean-up should it crash (its command line must name this run's folder). Stopping it
   * normally stays the caller's job, before stop().
   */
  adoptProcess(name: string, pid: number): void;
}

/** Starts etcd and kube-apiserver and waits until the API server is ready. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const startedAt = performance.now();
  cleanUpStaleRuns();
  const binaries = resolveBinaries(options);
  const maxAttempts = 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, binaries, startedAt);
    } catch (error) {
      // A port found free can be taken before etcd or the API server binds it: retry with new ports.
      if (!(error instanceof PortInUseError) || attempt === maxAttempts) throw error;
    }
  }
}

interface Binaries {
  etcd: string;
  kubeApiServer: string;
}

class PortInUseError extends Error {}

function resolveBinaries(options: ControlPlaneOptions): Binaries {
  return {
    etcd: testBinary("ETCD_BIN_DIR", "etcd", options.etcdBinDir),
    kubeApiServer: testBinary("KUBE_BIN_DIR", "kube-apiserver", options.kubeBinDir),
  };
}

async function startOnce(
  options: ControlPlaneOptions,
  binaries: Binaries,
  startedAt: number,
): Promise<ControlPlane> {
  const run = await startRun();
  const dir = run.record.dir;
  const processes: ManagedProcess[] = [];
  const launch = (name: string, binary: string, args: string[]): ManagedProcess => {
    const managed = spawnInOwnGroup(name, binary, args, path.join(dir, `${name}.log`));
    processes.push(managed);
    recordProcess(run, name, managed.pid);
    return managed;
  };

  try {
    const pki = createPki(path.join(dir, "pki"));
    const [etcdClientPort, etcdPeerPort, apiServerPort] = await findFreePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdArgs = [
      "--name=default",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ];
    let etcd = launch("etcd", binaries.etcd, etcdArgs);
    const waitForEtcdHealthy = (): Promise<true> =>
      waitFor(
        "etcd /health",
        async () => {
          const response = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
          return response.ok || undefined;
        },
        30_000,
        { intervalMs: 200, giveUpIf: () => exitedProcess([etcd]) },
      );
    await waitForEtcdHealthy();

    const server = `https://127.0.0.1:${apiServerPort}`;
    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${path.join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${pki.servingCertificatePath}`,
      `--tls-private-key-file=${pki.servingKeyPath}`,
      `--secure-port=${apiServerPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      "--service-cluster-ip-range=10.0.0.0/24",
      // As real clusters run: kubelets are confined to their own Node (and may still rewrite its status).
      "--authorization-mode=Node,RBAC",
      "--enable-admission-plugins=NodeRestriction",
      `--client-ca-file=${pki.clientCaCertificatePath}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${pki.serviceAccountKeyPath}`,
      `--service-account-signing-key-file=${pki.serviceAccountKeyPath}`,
      "--disable-admission-plugins=ServiceAccount",
      // ClusterTrustBundles, and PodCertificateRequests (beta in 1.35/1.36, off by default).
      "--feature-gates=ClusterTrustBundle=true,ClusterTrustBundleProjection=true,PodCertificateRequest=true",
      "--runtime-config=certificates.k8s.io/v1beta1/clustertrustbundles=true,certificates.k8s.io/v1beta1/podcertificaterequests=true",
      "--allow-privileged=true",
      "--profiling=false",
      ...(options.extraApiServerArgs ?? []),
    ];
    let apiServer = launch("kube-apiserver", binaries.kubeApiServer, apiServerArgs);
    const adminTls = { ca: pki.servingCaPem, cert: pki.adminCertificatePem, key: pki.adminKeyPem };
    const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    const waitForApiServerReady = (): Promise<true> =>
      waitFor(
        "kube-apiserver /readyz",
        async () => {
          const { status, body } = await httpsGet(`${server}/readyz`, adminTls, 5_000);
          return (status === 200 && body.trim() === "ok") || undefined;
        },
        readyTimeoutMs,
        { intervalMs: 200, giveUpIf: () => exitedProcess([etcd, apiServer]) },
      );
    await waitForApiServerReady();

    /** Starts kube-apiserver again with the same flags, recording its new process group for clean-up. */
    const relaunchApiServer = async (): Promise<void> => {
      const maxAttempts = 5;
      for (let attempt = 1; ; attempt++) {
        if (stopping !== undefined)
          throw new Error("cannot start kube-apiserver: the control plane is stopping");
        const logOffset = fileSize(path.join(dir, "kube-apiserver.log"));
        const managed = spawnInOwnGroup(
          "kube-apiserver",
          binaries.kubeApiServer,
          apiServerArgs,
          path.join(dir, "kube-apiserver.log"),
        );
        apiServer = managed;
        recordProcess(run, "kube-apiserver", managed.pid);
        try {
          await waitForApiServerReady();
          return;
        } catch (error) {
          await terminate(managed);
          const newLog = readFrom(managed.logPath, logOffset);
          // The port was free a moment ago; something may have bound it meanwhile: try again shortly.
          if (newLog.includes("address already in use") && attempt < maxAttempts) {
            await delay(1_000);
            continue;
          }
          throw new Error(`kube-apiserver failed to restart: ${String(error)}\n${describeLog(managed)}`, {
            cause: error,
          });
        }
      }
    };
    let stopping: Promise<void> | undefined;
    let apiServerPaused = false;
    let apiServerBusy = false;
    /** Runs one restart/pause/resume at a time, never during or after stop(). */
    const exclusively = async (what: string, action: () => Promise<void>): Promise<void> => {
      if (stopping !== undefined) throw new Error(`cannot ${what}: the control plane is stopping`);
      if (apiServerBusy) throw new Error(`cannot ${what}: another kube-apiserver operation is in progress`);
      apiServerBusy = true;
      try {
        await action();
      } finally {
        apiServerBusy = false;
      }
    };

    const kubeconfigPath = path.join(dir, "kubeconfig");
    await fsp.writeFile(kubeconfigPath, adminKubeConfig(server, pki).exportConfig(), { mode: 0o600 });

    return {
      server,
      kubeconfigPath,
      dir,
      servingCaPem: pki.servingCaPem,
      clientCa: { certificatePath: pki.clientCaCertificatePath, keyPath: pki.clientCaKeyPath },
      startupMs: Math.round(performance.now() - startedAt),
      kubeConfig: () => adminKubeConfig(server, pki),
      clientCertificateKubeConfig(user: string, groups: string[]): Promise<KubeConfig> {
        return Promise.resolve(clientCertificateKubeConfig(server, pki, user, groups));
      },
      etcdUrl,
      restartApiServer({ whileDown } = {}): Promise<void> {
        return exclusively("restart kube-apiserver", async () => {
          if (apiServerPaused) {
            signalGroup(apiServer.pid, "SIGCONT");
            apiServerPaused = false;
          }
          await terminate(apiServer);
          let failure: { error: unknown } | undefined;
          try {
            await whileDown?.();
          } catch (error) {
            failure = { error };
          }
          await relaunchApiServer();
          if (failure !== undefined) throw failure.error;
        });
      },
      pauseApiServer(): Promise<void> {
        return exclusively("pause kube-apiserver", async () => {
          if (apiServerPaused) throw new Error("kube-apiserver is already paused");
          if (apiServer.exitDescription !== undefined) {
            throw new Error(`kube-apiserver is not running (${apiServer.exitDescription})`);
          }
          apiServerPaused = true;
          signalGroup(apiServer.pid, "SIGSTOP");
          const pid = apiServer.pid;
          await waitFor(
            "kube-apiserver to stop (SIGSTOP)",
            () => Promise.resolve(processState(pid) === "T" || undefined),
            10_000,
            { intervalMs: 200, giveUpIf: () => exitedProcess([apiServer]) },
          );
        });
      },
      resumeApiServer(): Promise<void> {
        return exclusively("resume kube-apiserver", async () => {
          signalGroup(apiServer.pid, "SIGCONT");
          apiServerPaused = false;
          await waitForApiServerReady();
        });
      },
      restartEtcd(): Promise<void> {
        return exclusively("restart etcd", async () => {
          await terminate(etcd);
          etcd = spawnInOwnGroup("etcd", binaries.etcd, etcdArgs, path.join(dir, "etcd.log"));
          recordProcess(run, "etcd", etcd.pid);
          await waitForEtcdHealthy();
        });
      },
      adoptProcess(name: string, pid: number): void {
        recordProcess(run, name, pid);
      },
      stop(): Promise<void> {
        stopping ??= (async () => {
          // A frozen process would only act on SIGTERM once continued.
          if (apiServerPaused) signalGroup(apiServer.pid, "SIGCONT");
          // API server first, so it does not spend its shutdown complaining about a vanished etcd.
          await terminate(apiServer);
          await terminate(etcd);
          unregisterRun(run);
          await fsp.rm(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (error) {
    for (const managed of [...processes].reverse()) await terminate(managed);
    unregisterRun(run);
    const logs = processes.map((managed) => describeLog(managed)).join("\n");
    if (logs.includes("address already in use")) {
      await fsp.rm(dir, { recursive: true, force: true });
      throw new PortInUseError(`a port was taken during startup: ${String(error)}`, { cause: error });
    }
    // Keep the folder: its logs are what explains the failure.
    throw new Error(`control plane failed to start (folder kept: ${dir}): ${String(error)}\n${logs}`, {
      cause: error,
    });
  }
}

/** Ports free on 127.0.0.1 a moment ago, all different. */
export async function findFreePorts(count: number): Promise<number[]> {
  // All listeners stay open until every port is known, so the same port is never handed out twice.
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function httpsGet(
  url: string,
  tls: { ca: string; cert: string; key: string },
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ...tls, agent: false, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}

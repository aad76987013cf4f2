/**
 * A real Kubernetes control plane (etcd + kube-apiserver) for integration tests, started the way envtest
 * does it: loopback only, free ports, a fresh temporary folder, TLS verified with a harness CA, the admin
 * authenticated by a client certificate in system:masters.
 *
 * Every run must survive the previous one having crashed: processes run in their own process groups,
 * their ids are recorded under $CSR_SIGNER_CACHE/run, and startControlPlane() kills the groups a dead
 * run left behind (only when their command line still names that run's folder) before starting anew.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeConfigForClientCertificate } from "../../src/kube/client.js";

const execFileAsync = promisify(execFile);

/** Prefix of every temporary folder; stale-run cleanup only ever deletes folders with this prefix. */
const TEMP_DIR_PREFIX = "csr-signer-control-plane-";
const PID_FILE_PREFIX = "control-plane-";
const REPOSITORY_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BUILD_SCRIPT = path.join(REPOSITORY_ROOT, "hack/testbin/build.sh");

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
  /** Stops kube-apiserver then etcd (SIGTERM, SIGKILL after a few seconds) and removes the folder. */
  stop(): Promise<void>;
}

/** Runs the openssl CLI and returns its standard output. */
export async function runOpenssl(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync("openssl", args, { cwd, encoding: "utf8" });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`openssl ${args.join(" ")} failed: ${stderr.trim() || String(error)}`, { cause: error });
  }
}

/** Starts etcd and kube-apiserver and waits until the API server is ready. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const startedAt = performance.now();
  cleanUpStaleRuns();
  const binaries = await resolveBinaries(options);
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

interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited; never rejects. */
  readonly exited: Promise<void>;
  exitDescription?: string;
}

interface RunRecord {
  ownerPid: number;
  ownerStartTime: string | undefined;
  dir: string;
  processes: { name: string; pid: number }[];
}

interface LiveRun {
  record: RunRecord;
  pidFile: string;
}

/** Control planes of this process, torn down synchronously if the process exits without stop(). */
const liveRuns = new Set<LiveRun>();

async function startOnce(
  options: ControlPlaneOptions,
  binaries: Binaries,
  startedAt: number,
): Promise<ControlPlane> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), TEMP_DIR_PREFIX));
  const runDirectory = ensureRunDirectory();
  const run: LiveRun = {
    record: { ownerPid: process.pid, ownerStartTime: processStartTime(process.pid), dir, processes: [] },
    pidFile: path.join(runDirectory, `${PID_FILE_PREFIX}${process.pid}-${path.basename(dir)}.json`),
  };
  registerRun(run);
  const processes: ManagedProcess[] = [];
  const launch = (name: string, binary: string, args: string[]): ManagedProcess => {
    const managed = spawnInOwnGroup(name, binary, args, path.join(dir, `${name}.log`));
    processes.push(managed);
    run.record.processes.push({ name, pid: managed.pid });
    writeRunRecord(run);
    return managed;
  };

  try {
    const pki = await createPki(path.join(dir, "pki"));
    const [etcdClientPort, etcdPeerPort, apiServerPort] = await findFreePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcd = launch("etcd", binaries.etcd, [
      "--name=default",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ]);
    await waitFor("etcd /health", 30_000, [etcd], async () => {
      const response = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      return response.ok;
    });

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
      "--feature-gates=ClusterTrustBundle=true,ClusterTrustBundleProjection=true",
      "--runtime-config=certificates.k8s.io/v1beta1/clustertrustbundles=true",
      "--allow-privileged=true",
      "--profiling=false",
      ...(options.extraApiServerArgs ?? []),
    ];
    let apiServer = launch("kube-apiserver", binaries.kubeApiServer, apiServerArgs);
    const adminTls = { ca: pki.servingCaPem, cert: pki.adminCertificatePem, key: pki.adminKeyPem };
    const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    const waitForApiServerReady = (): Promise<void> =>
      waitFor("kube-apiserver /readyz", readyTimeoutMs, [etcd, apiServer], async () => {
        const { status, body } = await httpsGet(`${server}/readyz`, adminTls, 5_000);
        return status === 200 && body.trim() === "ok";
      });
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
        const entry = run.record.processes.find((recorded) => recorded.name === "kube-apiserver");
        if (entry === undefined) run.record.processes.push({ name: "kube-apiserver", pid: managed.pid });
        else entry.pid = managed.pid;
        writeRunRecord(run);
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

    const adminKubeConfig = (): KubeConfig =>
      kubeConfigForClientCertificate({
        name: "csr-signer-test-admin",
        server,
        certificateAuthorityPem: pki.servingCaPem,
        clientCertificatePem: pki.adminCertificatePem,
        clientKeyPem: pki.adminKeyPem,
      });
    const kubeconfigPath = path.join(dir, "kubeconfig");
    await fsp.writeFile(kubeconfigPath, adminKubeConfig().exportConfig(), { mode: 0o600 });

    return {
      server,
      kubeconfigPath,
      dir,
      servingCaPem: pki.servingCaPem,
      clientCa: { certificatePath: pki.clientCaCertificatePath, keyPath: pki.clientCaKeyPath },
      startupMs: Math.round(performance.now() - startedAt),
      kubeConfig: adminKubeConfig,
      async clientCertificateKubeConfig(user: string, groups: string[]): Promise<KubeConfig> {
        const issued = await issueClientCertificate(pki, user, groups);
        return kubeConfigForClientCertificate({
          name: `client-certificate-${randomBytes(4).toString("hex")}`,
          server,
          certificateAuthorityPem: pki.servingCaPem,
          clientCertificatePem: issued.certificatePem,
          clientKeyPem: issued.keyPem,
        });
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
          await waitFor("kube-apiserver to stop (SIGSTOP)", 10_000, [apiServer], async () => {
            return processState(pid) === "T";
          });
        });
      },
      resumeApiServer(): Promise<void> {
        return exclusively("resume kube-apiserver", async () => {
          signalGroup(apiServer.pid, "SIGCONT");
          apiServerPaused = false;
          await waitForApiServerReady();
        });
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

async function resolveBinaries(options: ControlPlaneOptions): Promise<Binaries> {
  let kubeBinDir = options.kubeBinDir || process.env.KUBE_BIN_DIR || undefined;
  let etcdBinDir = options.etcdBinDir || process.env.ETCD_BIN_DIR || undefined;
  if (kubeBinDir === undefined || etcdBinDir === undefined) {
    // Only asks where the binaries live; building is `make testbin`'s job, never the harness's.
    const { stdout } = await execFileAsync(BUILD_SCRIPT, ["--print-dir"], { encoding: "utf8" });
    const printed = new Map(
      stdout
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()]),
    );
    kubeBinDir ??= printed.get("KUBE_BIN_DIR");
    etcdBinDir ??= printed.get("ETCD_BIN_DIR");
  }
  if (kubeBinDir === undefined || etcdBinDir === undefined) {
    throw new Error(`could not find the test binaries: ${BUILD_SCRIPT} --print-dir printed no folders`);
  }
  const binaries = {
    etcd: path.join(etcdBinDir, "etcd"),
    kubeApiServer: path.join(kubeBinDir, "kube-apiserver"),
  };
  for (const binary of Object.values(binaries)) {
    try {
      await fsp.access(binary, fs.constants.X_OK);
    } catch {
      throw new Error(`${binary} is missing: build the test binaries first with \`make testbin\``);
    }
  }
  return binaries;
}

interface Pki {
  servingCaPem: string;
  servingCertificatePath: string;
  servingKeyPath: string;
  clientCaCertificatePath: string;
  clientCaKeyPath: string;
  adminCertificatePem: string;
  adminKeyPem: string;
  serviceAccountKeyPath: string;
  dir: string;
}

async function createPki(dir: string): Promise<Pki> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = (name: string): string => path.join(dir, name);
  await Promise.all([
    createCa(file("serving-ca"), "csr-signer-test serving CA"),
    createCa(file("client-ca"), "csr-signer-test client CA"),
    // SEC1 ("EC PRIVATE KEY"): --service-account-key-file does not read PKCS#8 ("PRIVATE KEY").
    runOpenssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file("service-account.key")]),
  ]);
  await Promise.all([
    issueLeaf({
      path: file("serving"),
      subject: "/CN=kube-apiserver",
      caPath: file("serving-ca"),
      extensions: [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
    }),
    issueLeaf({
      path: file("admin"),
      subject: "/O=system:masters/CN=admin",
      caPath: file("client-ca"),
      extensions: clientExtensions,
    }),
  ]);
  const read = (name: string): Promise<string> => fsp.readFile(file(name), "utf8");
  return {
    servingCaPem: await read("serving-ca.crt"),
    servingCertificatePath: file("serving.crt"),
    servingKeyPath: file("serving.key"),
    clientCaCertificatePath: file("client-ca.crt"),
    clientCaKeyPath: file("client-ca.key"),
    adminCertificatePem: await read("admin.crt"),
    adminKeyPem: await read("admin.key"),
    serviceAccountKeyPath: file("service-account.key"),
    dir,
  };
}

const clientExtensions = [
  "basicConstraints=critical,CA:FALSE",
  "keyUsage=critical,digitalSignature",
  "extendedKeyUsage=clientAuth",
];

async function issueClientCertificate(
  pki: Pki,
  user: string,
  groups: string[],
): Promise<{ certificatePem: string; keyPem: string }> {
  const escape = (value: string): string => value.replace(/[/\\=+,]/g, (character) => `\\${character}`);
  const subject = [...groups.map((group) => `/O=${escape(group)}`), `/CN=${escape(user)}`].join("");
  const base = path.join(pki.dir, `client-${randomBytes(6).toString("hex")}`);
  await issueLeaf({
    path: base,
    subject,
    caPath: path.join(pki.dir, "client-ca"),
    extensions: clientExtensions,
  });
  const [certificatePem, keyPem] = await Promise.all([
    fsp.readFile(`${base}.crt`, "utf8"),
    fsp.readFile(`${base}.key`, "utf8"),
  ]);
  return { certificatePem, keyPem };
}

/** Self-signed EC P-256 CA at `<base>.crt` / `<base>.key`. */
async function createCa(base: string, commonName: string): Promise<void> {
  await runOpenssl([
    "req",
    "-x509",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${base}.key`,
    "-out",
    `${base}.crt`,
    "-subj",
    `/CN=${commonName}`,
    "-days",
    "7",
    "-sha256",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

/** EC P-256 key and certificate at `<path>.key` / `<path>.crt`, signed by the CA at `<caPath>.crt/.key`. */
async function issueLeaf(leaf: {
  path: string;
  subject: string;
  caPath: string;
  extensions: string[];
}): Promise<void> {
  await runOpenssl([
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${leaf.path}.key`,
    "-out",
    `${leaf.path}.csr`,
    "-subj",
    leaf.subject,
  ]);
  await fsp.writeFile(`${leaf.path}.ext`, leaf.extensions.join("\n") + "\n");
  await runOpenssl([
    "x509",
    "-req",
    "-in",
    `${leaf.path}.csr`,
    "-CA",
    `${leaf.caPath}.crt`,
    "-CAkey",
    `${leaf.caPath}.key`,
    "-set_serial",
    randomSerial(),
    "-days",
    "7",
    "-sha256",
    "-extfile",
    `${leaf.path}.ext`,
    "-out",
    `${leaf.path}.crt`,
  ]);
}

/** 128 random bits as a positive serial number. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString("hex")}`;
}

async function findFreePorts(count: number): Promise<number[]> {
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

function spawnInOwnGroup(name: string, binary: string, args: string[], logPath: string): ManagedProcess {
  const logFd = fs.openSync(logPath, "a");
  let child: ChildProcess;
  try {
    // detached: a new session and process group, so the whole group can be killed, and a Ctrl-C in the
    // terminal reaches only the test process, whose handlers then stop the control plane in order.
    child = spawn(binary, args, { detached: true, stdio: ["ignore", logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  // Not kept alive by the children: a run that forgets stop() still exits, and the exit hook kills them.
  child.unref();
  if (child.pid === undefined) {
    throw new Error(`could not start ${binary}`);
  }
  const managed: ManagedProcess = {
    name,
    pid: child.pid,
    logPath,
    exited: new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        managed.exitDescription = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve();
      });
      child.once("error", (error) => {
        managed.exitDescription = `spawn error: ${error.message}`;
        resolve();
      });
    }),
  };
  return managed;
}

/** SIGTERM to the process group, SIGKILL after a grace period; resolves once the leader has exited. */
async function terminate(managed: ManagedProcess, graceMs = 5_000): Promise<void> {
  if (managed.exitDescription === undefined) {
    signalGroup(managed.pid, "SIGTERM");
    if (!(await exitsWithin(managed, graceMs))) {
      signalGroup(managed.pid, "SIGKILL");
      await exitsWithin(managed, graceMs);
    }
  }
  // Anything the leader left behind in its group.
  signalGroup(managed.pid, "SIGKILL");
}

/** Whether the process exits within the time; the timer is cleared so it never holds the event loop. */
async function exitsWithin(managed: ManagedProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([managed.exited.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function signalGroup(processGroupId: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-processGroupId, signal);
  } catch (error) {
    // ESRCH: the group is already gone, which is the goal.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Polls check() until it returns true; fails early when one of the watched processes exits. */
async function waitFor(
  what: string,
  timeoutMs: number,
  watched: ManagedProcess[],
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastProblem = "no answer yet";
  for (;;) {
    const dead = watched.find((managed) => managed.exitDescription !== undefined);
    if (dead !== undefined) {
      throw new Error(`${dead.name} exited (${dead.exitDescription}) while waiting for ${what}`);
    }
    try {
      if (await check()) return;
      lastProblem = "not ready";
    } catch (error) {
      lastProblem = String(error);
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${lastProblem})`);
    }
    await delay(200);
  }
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

function describeLog(managed: ManagedProcess, lines = 40): string {
  let text: string;
  try {
    text = fs.readFileSync(managed.logPath, "utf8");
  } catch (error) {
    text = `(no log: ${String(error)})`;
  }
  const tail = text.trimEnd().split("\n").slice(-lines).join("\n");
  return `--- last ${lines} lines of ${managed.logPath} (${managed.exitDescription ?? "running"}) ---\n${tail}`;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The text of a file from a byte offset on ("" when it cannot be read). */
function readFrom(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
}

/** Field 3 of /proc/<pid>/stat: R running, S sleeping, T stopped, Z zombie...; undefined when gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------------
// Run records: what lets the next run clean up after a crashed one, and this process after itself.

function runDirectory(): string {
  const cache = process.env.CSR_SIGNER_CACHE || path.join(os.homedir(), ".cache", "csr-signer");
  return path.join(cache, "run");
}

function ensureRunDirectory(): string {
  const directory = runDirectory();
  fs.mkdirSync(directory, { recursive: true });
  return directory;
}

function writeRunRecord(run: LiveRun): void {
  const temporary = `${run.pidFile}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(run.record, null, 2));
  fs.renameSync(temporary, run.pidFile);
}

/** Field 22 of /proc/<pid>/stat: with the pid, it tells a live owner from a reused pid. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined; // No such process.
  }
}

function processCommandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return undefined; // No such process.
  }
}

/** Kills the process groups and removes the folders of runs whose owning process is gone. */
function cleanUpStaleRuns(): void {
  const directory = runDirectory();
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch {
    return; // No run directory yet: nothing ever ran here.
  }
  for (const name of names) {
    if (!name.startsWith(PID_FILE_PREFIX) || !name.endsWith(".json")) continue;
    const pidFile = path.join(directory, name);
    let record: RunRecord;
    try {
      record = JSON.parse(fs.readFileSync(pidFile, "utf8")) as RunRecord;
    } catch {
      // Half-written or removed meanwhile by its owner; a half-written one has no processes yet.
      continue;
    }
    const ownerAlive =
      record.ownerStartTime !== undefined && processStartTime(record.ownerPid) === record.ownerStartTime;
    if (ownerAlive) continue; // Another test run in progress, not ours to touch.
    for (const { name: processName, pid } of record.processes ?? []) {
      // Only a process still running with that run's folder on its command line; pids get reused.
      if (typeof pid === "number" && processCommandLine(pid)?.includes(record.dir)) {
        console.error(`control-plane: killing stale ${processName} (process group ${pid}) of a crashed run`);
        signalGroup(pid, "SIGKILL");
      }
    }
    if (isOurTemporaryFolder(record.dir)) fs.rmSync(record.dir, { recursive: true, force: true });
    fs.rmSync(pidFile, { force: true });
  }
}

function isOurTemporaryFolder(dir: unknown): dir is string {
  return (
    typeof dir === "string" &&
    path.dirname(dir) === path.resolve(os.tmpdir()) &&
    path.basename(dir).startsWith(TEMP_DIR_PREFIX)
  );
}

let exitHooksInstalled = false;

function registerRun(run: LiveRun): void {
  liveRuns.add(run);
  writeRunRecord(run);
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: no grace period, straight SIGKILL.
  process.on("exit", killLiveRunsSynchronously);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killLiveRunsSynchronously();
      process.removeListener(signal, onSignal);
      // Our listener replaced the default action (terminate): restore it unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function unregisterRun(run: LiveRun): void {
  liveRuns.delete(run);
  fs.rmSync(run.pidFile, { force: true });
}

function killLiveRunsSynchronously(): void {
  for (const run of liveRuns) {
    for (const { pid } of [...run.record.processes].reverse()) signalGroup(pid, "SIGKILL");
    try {
      fs.rmSync(run.record.dir, { recursive: true, force: true });
    } catch {
      // A process may still be writing into it for a moment; the next run's cleanup removes it.
      continue;
    }
    unregisterRun(run);
  }
}

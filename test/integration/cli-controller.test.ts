/**
 * `csr-signer controller` as a deployment runs it: the bundle the image runs (hack/bundle.mjs, built
 * here into a temporary folder) in its own process, flags parsed, a kubeconfig file, signing on the
 * real API server, a clean exit on SIGTERM, and csr_signer_build_info carrying the build --version
 * prints.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CoordinationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { makeTestCertificateAuthority, opensslVerify } from "../support/pki.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  submitApprovedServerCsr,
  waitForOutcome,
} from "../support/controller.js";
import { findFreePorts } from "../support/control-plane.js";
import { waitFor } from "../support/wait.js";
import { uniqueName } from "../support/identities.js";
import { controlPlane } from "./setup.js";

const repositoryRoot = join(import.meta.dirname, "..", "..");
const bundleFolder = mkdtempSync(join(tmpdir(), "csr-signer-bundle-"));
const bundle = join(bundleFolder, "csr-signer.mjs");

/** `csr-signer controller <flags>` on the test control plane, in its own process, output collected. */
function spawnController(flags: string[], onOutput: (text: string) => void): ChildProcess {
  const controllerProcess = spawn(
    process.execPath,
    [
      bundle,
      "controller",
      `--kubeconfig=${controlPlane().kubeconfigPath}`,
      `--namespace=${controllerNamespace}`,
      ...flags,
    ],
    { cwd: repositoryRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  controllerProcess.stdout!.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
  controllerProcess.stderr!.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
  return controllerProcess;
}

describe("csr-signer controller (the CLI, in its own process)", function () {
  this.timeout(60_000);
  const suffix = uniqueName("cli").slice(4);
  const signerName = `cli.csr-signer.test/foo-${suffix}`;
  const objectName = `cli-${suffix}`;
  let admin: KubeConfig;
  let child: ChildProcess | undefined;
  let output = "";
  let ca: Awaited<ReturnType<typeof makeTestCertificateAuthority>>;

  before(async () => {
    execFileSync(process.execPath, [join(repositoryRoot, "hack", "bundle.mjs"), `--outfile=${bundle}`]);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    ca = await makeTestCertificateAuthority({ name: `cli-${suffix}` });
    await createCaSecret(admin, `cli-cacerts-${suffix}`, ca.files);
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName: `cli-cacerts-${suffix}` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
  });

  after(async () => {
    child?.kill("SIGKILL");
    rmSync(bundleFolder, { recursive: true, force: true });
    await deleteSigner(admin, objectName);
  });

  it("signs with the flags a Deployment passes, and exits 0 on SIGTERM", async () => {
    child = spawnController(
      [
        "--leader-elect=true",
        `--lease-name=cli-${suffix}`,
        "--leader-elect-lease-duration=7s",
        "--leader-elect-renew-deadline=5s",
        "--leader-elect-retry-period=500ms",
        "--metrics-address=",
        "--probe-address=",
        "--workers=2",
        "--log-level=info",
        "--approve-kubelet-serving=true",
      ],
      (text) => (output += text),
    );
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));

    const name = uniqueName("csr-cli");
    await submitApprovedServerCsr(admin, name, signerName, "cli.example.test");
    const outcome = await waitForOutcome(admin, name, 45_000);
    expect(outcome.failed, output).to.equal(undefined);
    expect(opensslVerify(outcome.certificatePem!, ca.files["root-cert.pem"]!)).to.match(/: OK/);
    // The lease timing flags reach the elector: the Lease it holds carries --leader-elect-lease-duration.
    const lease = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: `cli-${suffix}`, namespace: controllerNamespace });
    expect(lease.spec?.leaseDurationSeconds).to.equal(7);
    // JSON log lines, one of them for this certificate, none with key material.
    await waitFor("the issued log line", async () => (output.includes(`"csr":"${name}"`) ? true : undefined));
    for (const line of output.trim().split("\n")) expect(() => JSON.parse(line), line).not.to.throw();
    expect(output).not.to.contain("PRIVATE KEY");
    // As the shipped Deployment runs it (approval on, no ranges yet): said once at start, not only per CSR.
    expect(output).to.match(/"level":"warn".*kubelet-serving approval is on but has no ranges or patterns/);

    child.kill("SIGTERM");
    expect(await exited, output.slice(-2000)).to.equal(0);
    child = undefined;
  });

  it("reports on /metrics the version and commit --version prints (csr_signer_build_info)", async () => {
    const versionLine = execFileSync(process.execPath, [bundle, "--version"], { encoding: "utf8" });
    const [, version, commit] = /^csr-signer (\S+) \(commit (\S+), Node /.exec(versionLine) ?? [];
    expect(commit, versionLine).to.be.a("string");
    const [metricsPort] = await findFreePorts(1);
    let metricsOutput = "";
    // Plain HTTP: the TokenReview/SubjectAccessReview gate is metrics-serving.test.ts' subject.
    child = spawnController(
      [
        "--leader-elect=false",
        `--metrics-address=127.0.0.1:${metricsPort}`,
        "--metrics-secure=false",
        "--probe-address=",
      ],
      (text) => (metricsOutput += text),
    );
    const running = child;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    const body = await waitFor(
      "the controller's /metrics",
      async () => {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => undefined);
        return response?.status === 200 ? response.text() : undefined;
      },
      20_000,
      {
        giveUpIf: () =>
          running.exitCode !== null ? `the controller exited: ${metricsOutput.slice(-2000)}` : undefined,
      },
    );
    expect(body.split("\n").filter((line) => line.startsWith("csr_signer_build_info{"))).to.deep.equal([
      `csr_signer_build_info{version="${version}",commit="${commit}",node_version="${process.version}"} 1`,
    ]);
    // The clean SIGTERM exit is the first test's subject (here start() may still be syncing).
    running.kill("SIGKILL");
    await exited;
    child = undefined;
  });

  it("a start that fails exits non-zero at once instead of lingering half-alive (probe address in use)", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    try {
      let failedOutput = "";
      // The metrics server binds first; before the fix it kept the process alive after start() failed.
      const failing = spawnController(
        ["--leader-elect=false", "--metrics-address=127.0.0.1:0", `--probe-address=127.0.0.1:${port}`],
        (text) => (failedOutput += text),
      );
      child = failing;
      const code = await new Promise<number | null>((resolve) => failing.once("exit", (c) => resolve(c)));
      child = undefined;
      expect(code, failedOutput).to.equal(1);
      expect(failedOutput).to.match(/csr-signer controller: .*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});

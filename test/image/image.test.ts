/**
 * The controller image (`make image`, tag $CSR_SIGNER_IMAGE, default localhost/csr-signer:dev, and the
 * release name manifests/base and the chart use, localhost/csr-signer:<version>) as a
 * cluster runs it: podman with hack/image/containers.conf, --read-only, as its own non-root uid, host
 * network to reach the test kube-apiserver, and a read-only kubeconfig of the csr-signer service
 * account (a client certificate for that identity; the RBAC is manifests/base's plus `sign` for this
 * test's signer). It must become ready and issue a certificate that openssl verifies. The image's
 * contents are checked too: no npm, no compiler, no shell, at most 150 MB.
 * `make test-image` builds the image first; run alone, build it with `make image`.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { KubeConfig } from "@kubernetes/client-node";
import { findFreePorts } from "../support/control-plane.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  submitApprovedServerCsr,
  waitForOutcome,
} from "../support/controller.js";
import {
  grantClusterRole,
  type Grant,
  serviceAccountIdentity,
  serviceAccountSubject,
  uniqueName,
} from "../support/identities.js";
import { makeTestCertificateAuthority, opensslVerify } from "../support/pki.js";
import { repositoryRoot } from "../support/testbin.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "../integration/setup.js";

const image = process.env.CSR_SIGNER_IMAGE || "localhost/csr-signer:dev";
const podmanEnvironment = {
  ...process.env,
  CONTAINERS_CONF: process.env.CONTAINERS_CONF || join(repositoryRoot, "hack", "image", "containers.conf"),
};
const maximumImageBytes = 150_000_000;

function podman(args: string[]): string {
  return execFileSync("podman", args, { encoding: "utf8", env: podmanEnvironment, maxBuffer: 64 << 20 });
}

describe("the controller image (podman, read-only, uid 65532)", function () {
  this.timeout(120_000);
  const suffix = uniqueName("img").slice(4);
  const signerName = `image.csr-signer.test/foo-${suffix}`;
  const objectName = `image-${suffix}`;
  const containerName = `csr-signer-image-test-${suffix}`;
  const folder = mkdtempSync(join(tmpdir(), "csr-signer-image-"));
  let admin: KubeConfig;
  let grant: Grant | undefined;
  let container: ChildProcess | undefined;
  let output = "";
  let ca: Awaited<ReturnType<typeof makeTestCertificateAuthority>>;

  before(async function () {
    try {
      podman(["image", "exists", image]);
    } catch {
      throw new Error(`no image ${image}: build it with \`make image\` (make test-image does)`);
    }
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    grant = await grantClusterRole(
      admin,
      serviceAccountSubject(controllerNamespace, "csr-signer"),
      [
        {
          apiGroups: ["certificates.k8s.io"],
          resources: ["signers"],
          resourceNames: [signerName],
          verbs: ["sign", "attest"],
        },
      ],
      "image-sign",
    );
    ca = await makeTestCertificateAuthority({ name: `image-${suffix}` });
    await createCaSecret(admin, `image-cacerts-${suffix}`, ca.files);
    await createSigner(admin, objectName, {
      signerName,
      certificateAuthority: { secretName: `image-cacerts-${suffix}` },
      policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    });
  });

  after(async () => {
    container?.kill("SIGKILL");
    try {
      podman(["rm", "--force", "--ignore", containerName]);
    } catch {
      // already gone, or podman itself failed: nothing else to clean up here
    }
    rmSync(folder, { recursive: true, force: true });
    if (admin) await deleteSigner(admin, objectName);
    await grant?.revoke();
  });

  it("holds the bundle and Node only: no npm, no compiler, no shell, root-owned files, at most 150 MB", () => {
    const config = JSON.parse(podman(["image", "inspect", image]))[0] as {
      Size: number;
      Config: { User?: string; Entrypoint?: string[] };
    };
    expect(config.Config.User).to.equal("65532:65532");
    expect(config.Config.Entrypoint).to.deep.equal([
      "node",
      "--max-semi-space-size=8",
      "--expose-gc",
      "--liftoff-only",
      "dist/csr-signer.mjs",
    ]);
    expect(config.Size, `${config.Size} bytes`).to.be.at.most(maximumImageBytes);
    const created = podman(["create", image]).trim();
    try {
      const listing = execFileSync("sh", ["-c", `podman export ${created} | tar --numeric-owner -tvf -`], {
        encoding: "utf8",
        env: podmanEnvironment,
        maxBuffer: 64 << 20,
      });
      const paths = listing.split("\n").map((line) => line.split(/\s+/).slice(5).join(" "));
      for (const forbidden of [
        /(^|\/)npm(-cli\.js)?$/,
        /(^|\/)node_modules\//,
        /(^|\/)(g\+\+|gcc|cc|make)$/,
        /(^|\/)(ba)?sh$/,
      ]) {
        expect(
          paths.filter((path) => forbidden.test(path.replace(/ -> .*$/, ""))),
          String(forbidden),
        ).to.deep.equal([]);
      }
      for (const shipped of ["app/dist/csr-signer.mjs", "app/dist/pkcs11.node"]) {
        const line = listing.split("\n").find((entry) => entry.endsWith(` ${shipped}`));
        // Owned by root, writable by nobody else: uid 65532 cannot change what it runs.
        expect(line, shipped).to.match(/^-r[w-][x-]r-[x-]r-[x-] 0\/0 /);
      }
    } finally {
      podman(["rm", created]);
    }
  });

  it("is also tagged with the release name manifests/base and the chart run (hack/image/release-image.sh)", () => {
    const releaseImage = execFileSync(join(repositoryRoot, "hack", "image", "release-image.sh"), {
      encoding: "utf8",
    }).trim();
    const deployment = readFileSync(join(repositoryRoot, "manifests", "base", "deployment.yaml"), "utf8");
    expect(deployment).to.match(new RegExp(`^\\s+image: ${releaseImage.replaceAll(".", "\\.")}$`, "m"));
    const id = (name: string): string => podman(["image", "inspect", "--format", "{{.Id}}", name]).trim();
    expect(id(releaseImage), `${releaseImage}: build it with \`make image\``).to.equal(id(image));
  });

  it("prints the version and commit it was built from", () => {
    const version = (
      JSON.parse(readFileSync(join(repositoryRoot, "package.json"), "utf8")) as { version: string }
    ).version;
    expect(podman(["run", "--rm", "--read-only", "--network=none", image, "--version"])).to.match(
      new RegExp(`^csr-signer ${version.replaceAll(".", "\\.")} \\(commit [0-9a-f]{7,40}, Node v24\\.`),
    );
  });

  it("runs a minor collection, and no full one, for the options src/kube/response-garbage.ts passes gc() (the image's own Node)", () => {
    // The options object is V8's gc extension's, not a Node API: checked on the Node the image ships.
    const script = `
      const { PerformanceObserver, constants } = require("node:perf_hooks");
      const kinds = [];
      new PerformanceObserver((list) => kinds.push(...list.getEntries().map((entry) => entry.detail.kind)))
        .observe({ entryTypes: ["gc"] });
      const count = (kind) => kinds.filter((seen) => seen === kind).length;
      setTimeout(() => {
        const before = count(constants.NODE_PERFORMANCE_GC_MINOR);
        gc({ type: "minor", execution: "async" });
        setTimeout(() => console.log(JSON.stringify({
          before, after: count(constants.NODE_PERFORMANCE_GC_MINOR), major: count(constants.NODE_PERFORMANCE_GC_MAJOR),
        })), 200);
      }, 200);
    `;
    const printed = podman([
      "run",
      "--rm",
      "--read-only",
      "--network=none",
      "--entrypoint=node",
      image,
      "--expose-gc",
      "--eval",
      script,
    ]);
    const { before, after, major } = JSON.parse(printed) as { before: number; after: number; major: number };
    expect(after, `minor collections: ${before} before, ${after} after`).to.be.greaterThan(before);
    expect(major, "full collections").to.equal(0);
  });

  it("becomes ready against the API server and issues a certificate that openssl verifies", async () => {
    const identity = serviceAccountIdentity(controllerNamespace, "csr-signer");
    const kubeconfig = join(folder, "kubeconfig");
    const serviceAccount = await controlPlane().clientCertificateKubeConfig(identity.user, identity.groups);
    writeFileSync(kubeconfig, serviceAccount.exportConfig(), { mode: 0o400 });
    // Readable by the container's uid only (rootful podman: host uid 65532 is the container's).
    if (process.getuid?.() === 0) chownSync(kubeconfig, 65532, 65532);
    const [metricsPort, probePort] = await findFreePorts(2);
    container = spawn(
      "podman",
      [
        "run",
        "--rm",
        `--name=${containerName}`,
        "--network=host",
        "--read-only",
        `--volume=${kubeconfig}:/etc/csr-signer/kubeconfig:ro`,
        image,
        "controller",
        "--kubeconfig=/etc/csr-signer/kubeconfig",
        `--namespace=${controllerNamespace}`,
        "--leader-elect=true",
        `--lease-name=image-${suffix}`,
        `--metrics-address=127.0.0.1:${metricsPort}`,
        `--probe-address=127.0.0.1:${probePort}`,
        "--log-level=info",
      ],
      { env: podmanEnvironment, stdio: ["ignore", "pipe", "pipe"] },
    );
    container.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    container.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => container!.once("exit", (code) => resolve(code)));

    await waitFor(
      "the containerised controller's /readyz",
      async () => {
        if (container?.exitCode !== null) throw new Error(`the container exited: ${output.slice(-2000)}`);
        const response = await fetch(`http://127.0.0.1:${probePort}/readyz`).catch(() => undefined);
        return response?.status === 200 ? true : undefined;
      },
      90_000,
    );
    const name = uniqueName("csr-image");
    await submitApprovedServerCsr(admin, name, signerName, "image.example.test");
    const outcome = await waitForOutcome(admin, name, 45_000);
    expect(outcome.failed, output).to.equal(undefined);
    expect(opensslVerify(outcome.certificatePem!, ca.files["root-cert.pem"]!)).to.match(/: OK/);
    // Its JSON log line for this certificate (through podman's pipe, so possibly a moment later).
    await waitFor("the issued log line", async () => (output.includes(`"csr":"${name}"`) ? true : undefined));
    expect(output).not.to.contain("PRIVATE KEY");
    // The entrypoint's --expose-gc reached the controller: it scavenges after response bytes.
    expect(output).to.match(/"msg":"controller started"[^\n]*"scavengesResponseBytes":true/);

    // podman forwards SIGTERM to node: a clean exit, as on a Deployment rollout.
    podman(["kill", "--signal=TERM", containerName]);
    expect(await exited, output.slice(-2000)).to.equal(0);
    container = undefined;
  });
});

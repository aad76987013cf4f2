import { expect } from "chai";
import { readFileSync } from "node:fs";
import { runCli } from "../../../src/cli/main.js";
import type { CommandIo } from "../../../src/cli/io.js";
import { systemIssuanceEnvironment } from "../../../src/pki/issuance.js";

async function controller(args: string[]): Promise<{ stderr: string; exitCode: number }> {
  const run = { stderr: "", exitCode: 0 };
  const io: CommandIo = {
    stdout: () => undefined,
    stderr: (text) => void (run.stderr += text),
    readStdin: async () => "",
    setExitCode: (code) => void (run.exitCode = code),
    environment: systemIssuanceEnvironment,
  };
  // Outside a cluster and without --kubeconfig, valid flags end at "not running in a cluster".
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  try {
    await runCli(["controller", ...args], io);
  } finally {
    if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved;
  }
  return run;
}

describe("csr-signer controller: kubelet-serving settings are validated at start", () => {
  const refusals: [string, string[], RegExp][] = [
    [
      "a DNS pattern that does not compile",
      ["--kubelet-serving-dns-pattern=n(["],
      /--kubelet-serving-dns-pattern: "n\(\["/,
    ],
    [
      "a malformed IP range",
      ["--kubelet-serving-ip-ranges=10.0.0.0/16,10.1.0.0/40"],
      /--kubelet-serving-ip-ranges: "10.1.0.0\/40"/,
    ],
    [
      "an extra DNS name without {node}",
      ["--kubelet-serving-extra-dns=shared.example.com"],
      /--kubelet-serving-extra-dns/,
    ],
    ["a cluster domain that is no DNS name", ["--cluster-domain=-bad-"], /--cluster-domain/],
    [
      "a malformed Service ClusterIP range",
      ["--service-cluster-ip-range=10.96.0.0/12,fd00::/129"],
      /--service-cluster-ip-range: "fd00::\/129"/,
    ],
    ["a malformed Pod range", ["--cluster-cidr=10.244.0.0"], /--cluster-cidr: "10.244.0.0"/],
    [
      "a DNS pattern the linear-time engine cannot run (backreference)",
      ["--kubelet-serving-dns-pattern=(n)\\1"],
      /--kubelet-serving-dns-pattern: "\(n\)\\1" is not a regular expression that runs in linear time/,
    ],
  ];
  for (const [what, flags, message] of refusals) {
    it(`refuses ${what}, naming the flag (exit code 2)`, async () => {
      const run = await controller(["--approve-kubelet-serving=true", ...flags]);
      expect(run.exitCode).to.equal(2);
      expect(run.stderr).to.match(message);
    });
  }

  it("accepts the settings manifests/base shows (its args plus the commented example flags)", async () => {
    const deployment = readFileSync("manifests/base/deployment.yaml", "utf8");
    const args = [
      ...deployment.matchAll(
        /^\s+(?:# )?- (--(?:approve-kubelet|kubelet-serving|cluster-domain|service-cluster-ip-range|cluster-cidr)\S*)$/gm,
      ),
    ].map((match) => match[1]!);
    expect(args).to.include.members([
      "--approve-kubelet-serving=true",
      "--kubelet-serving-ip-ranges=10.0.0.0/16",
      "--service-cluster-ip-range=10.96.0.0/12",
      "--cluster-cidr=10.244.0.0/16",
      "--kubelet-serving-dns-pattern=ip-[0-9-]+\\.([a-z0-9-]+\\.compute|ec2)\\.internal",
      "--kubelet-serving-on-refusal=leave-pending",
    ]);
    const run = await controller(args);
    expect(run.stderr).to.contain("not running in a cluster");
  });
});

describe("csr-signer controller: the client rate limit flags", () => {
  const refusals: [string, RegExp][] = [
    ["--kube-api-burst=2.5", /--kube-api-burst must be a whole number of at least 1/],
    ["--kube-api-burst=0", /--kube-api-burst must be a whole number of at least 1/],
    ["--kube-api-qps=0", /--kube-api-qps must be a positive number/],
    ["--kube-api-qps=fast", /--kube-api-qps must be a positive number/],
  ];
  for (const [flag, message] of refusals) {
    it(`refuses ${flag}, naming the flag (exit code 2)`, async () => {
      const run = await controller([flag]);
      expect(run.exitCode).to.equal(2);
      expect(run.stderr).to.match(message);
    });
  }

  it("accepts a fractional QPS and a whole burst", async () => {
    const run = await controller(["--kube-api-qps=0.5", "--kube-api-burst=3"]);
    expect(run.stderr).to.contain("not running in a cluster");
  });
});

describe("csr-signer controller: --istio-mesh-config", () => {
  for (const value of ["istio", "istio-system/", "/istio", "Istio-System/istio", "a/b/c"]) {
    it(`refuses --istio-mesh-config=${value}, naming the shape (exit code 2)`, async () => {
      const run = await controller([`--istio-mesh-config=${value}`]);
      expect(run.exitCode).to.equal(2);
      expect(run.stderr).to.contain("--istio-mesh-config must be <namespace>/<configmap>");
    });
  }

  it("accepts one per revision", async () => {
    const run = await controller([
      "--istio-mesh-config=istio-system/istio",
      "--istio-mesh-config=istio-system/istio-canary",
    ]);
    expect(run.stderr).to.contain("not running in a cluster");
  });
});

describe("csr-signer controller: the leader election timing flags (kube-controller-manager's)", () => {
  const refusals: [string[], RegExp][] = [
    [["--leader-elect-lease-duration=fast"], /--leader-elect-lease-duration must be a positive duration/],
    [["--leader-elect-retry-period=0s"], /--leader-elect-retry-period must be a positive duration/],
    [["--leader-elect-renew-deadline=1.5s"], /--leader-elect-renew-deadline must be a positive duration/],
    [
      ["--leader-elect-lease-duration=10s"],
      /the lease duration must be greater than the renew deadline \(--leader-elect-lease-duration > /,
    ],
    [
      ["--leader-elect-lease-duration=600h"],
      /the lease duration must be at most 1h .*\(--leader-elect-lease-duration > /,
    ],
    [["--leader-elect-retry-period=50ms"], /the retry period must be at least 100ms/],
    [
      ["--leader-elect-renew-deadline=2400ms"],
      /the renew deadline must be greater than the retry period times 1.2/,
    ],
    [
      [
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=3s",
      ],
      /the renew deadline must be greater than the retry period times 1.2/,
    ],
  ];
  for (const [flags, message] of refusals) {
    it(`refuses ${flags.join(" ")}, naming the rule (exit code 2)`, async () => {
      const run = await controller(flags);
      expect(run.exitCode).to.equal(2);
      expect(run.stderr).to.match(message);
    });
  }

  it("accepts client-go's defaults spelled out, and sub-second timings that keep the order", async () => {
    for (const flags of [
      [
        "--leader-elect-lease-duration=15s",
        "--leader-elect-renew-deadline=10s",
        "--leader-elect-retry-period=2s",
      ],
      [
        "--leader-elect-lease-duration=3s",
        "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=500ms",
      ],
      ["--leader-elect-renew-deadline=2401ms"],
      ["--leader-elect-lease-duration=1h", "--leader-elect-retry-period=100ms"],
    ]) {
      const run = await controller(flags);
      expect(run.stderr, flags.join(" ")).to.contain("not running in a cluster");
    }
  });

  it("lists them in --help with their defaults", async () => {
    const { controllerHelp } = await import("../../../src/cli/controller-command.js");
    expect(controllerHelp).to.match(/--leader-elect-lease-duration D .*\(default 15s\)/s);
    expect(controllerHelp).to.match(/--leader-elect-renew-deadline D .*\(default 10s;/s);
    expect(controllerHelp).to.match(/--leader-elect-retry-period D .*\(default 2s;/s);
  });
});

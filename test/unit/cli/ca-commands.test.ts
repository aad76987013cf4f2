import { X509Certificate } from "node:crypto";
import { expect } from "chai";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCliInProcess } from "../../support/cli.js";
import { opensslRequest, opensslText, opensslVerify } from "../../support/pki.js";

const cli = runCliInProcess;

describe("csr-signer CLI: offline CA toolkit", function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
  });

  it("root -> intermediate -> sign: the cacerts files load, the chain verifies with openssl, keys are 0600", async () => {
    const root = await cli([
      "ca",
      "root",
      "--out",
      join(dir, "root"),
      "--subject",
      "O=Example,CN=Example Root",
      "--lifetime",
      "30y",
    ]);
    expect(root.exitCode, root.stderr).to.equal(0);
    expect(statSync(join(dir, "root", "root-key.pem")).mode & 0o777).to.equal(0o600);
    expect(opensslText(readFileSync(join(dir, "root", "root-cert.pem"), "utf8"))).to.match(
      /Not After : .* 205\d GMT/,
    );

    const intermediate = await cli([
      "ca",
      "intermediate",
      "--root",
      join(dir, "root"),
      "--out",
      join(dir, "c1"),
      "--subject",
      "O=Example,CN=cluster-1",
      "--lifetime",
      "2y",
    ]);
    expect(intermediate.exitCode, intermediate.stderr).to.equal(0);
    expect(readdirSync(join(dir, "c1")).sort()).to.deep.equal([
      "ca-cert.pem",
      "ca-key.pem",
      "cert-chain.pem",
      "root-cert.pem",
    ]);
    expect(statSync(join(dir, "c1", "ca-key.pem")).mode & 0o777).to.equal(0o600);
    const chain = readFileSync(join(dir, "c1", "cert-chain.pem"), "utf8");
    expect(chain.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
    expect(opensslVerify(chain, readFileSync(join(dir, "c1", "root-cert.pem"), "utf8"))).to.match(/: OK/);
    expect(opensslText(readFileSync(join(dir, "c1", "ca-cert.pem"), "utf8"))).to.match(/CA:TRUE, pathlen:0/);

    const { csrPem } = opensslRequest("ec", "/CN=web", [
      "subjectAltName=DNS:web.example.com",
      "basicConstraints=critical,CA:TRUE",
    ]);
    const signed = await cli(
      ["sign", "--ca", join(dir, "c1"), "--usages", "digital signature,server auth", "--duration", "48h"],
      csrPem,
    );
    expect(signed.exitCode, signed.stderr).to.equal(0);
    expect(signed.stdout.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
    expect(
      opensslVerify(signed.stdout, readFileSync(join(dir, "c1", "root-cert.pem"), "utf8"), [
        "-purpose",
        "sslserver",
      ]),
    ).to.match(/: OK/);
    const text = opensslText(signed.stdout);
    expect(text).to.match(/CA:FALSE/); // the requested CA:TRUE is dropped
    expect(text).to.contain("DNS:web.example.com");
    expect(text).not.to.contain("TLS Web Client Authentication");
    // --duration 48h, NotBefore backdated 5 minutes.
    const leaf = new X509Certificate(signed.stdout);
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).to.equal((48 * 3600 + 300) * 1000);

    const inspect = await cli(["ca", "inspect", join(dir, "c1")]);
    expect(inspect.exitCode).to.equal(0);
    expect(inspect.stdout).to.contain("CN=cluster-1").and.to.contain("no warnings").and.to.contain("sha256:");
  });

  it("inspect warns about a chain in the wrong order and a certificate expiring soon, exit 1", async () => {
    await cli(["ca", "root", "--out", join(dir, "root"), "--lifetime", "20d"]);
    await cli(["ca", "intermediate", "--root", join(dir, "root"), "--out", join(dir, "c1")]);
    const chain = readFileSync(join(dir, "c1", "cert-chain.pem"), "utf8").match(
      /-----BEGIN[\s\S]+?-----END CERTIFICATE-----\n/g,
    )!;
    writeFileSync(join(dir, "reversed.pem"), chain[1]! + chain[0]!);
    const inspect = await cli(["ca", "inspect", join(dir, "reversed.pem")]);
    expect(inspect.exitCode).to.equal(1);
    expect(inspect.stdout).to.contain("did not issue [0] (a chain must go leaf to root)");
    expect(inspect.stdout).to.match(/"O=csr-signer, CN=csr-signer root CA" expires in 19 days/);
  });

  it("inspect accepts several roots in root-cert.pem (a rotation made with --also-trust): no order warning", async () => {
    await cli(["ca", "root", "--out", join(dir, "rootA"), "--subject", "CN=root A"]);
    await cli(["ca", "root", "--out", join(dir, "rootB"), "--subject", "CN=root B"]);
    const made = await cli([
      "ca",
      "intermediate",
      "--root",
      join(dir, "rootA"),
      "--also-trust",
      join(dir, "rootB", "root-cert.pem"),
      "--out",
      join(dir, "rotating"),
    ]);
    expect(made.exitCode, made.stderr).to.equal(0);
    expect(
      readFileSync(join(dir, "rotating", "root-cert.pem"), "utf8").match(/BEGIN CERTIFICATE/g),
    ).to.have.length(2);
    const inspect = await cli(["ca", "inspect", join(dir, "rotating")]);
    expect(inspect.stdout).to.contain("CN=root A").and.to.contain("CN=root B");
    expect(inspect.stdout).to.contain("no warnings");
    expect(inspect.exitCode).to.equal(0);
  });

  it("inspect reports a key that does not match", async () => {
    await cli(["ca", "root", "--out", join(dir, "root")]);
    await cli(["ca", "intermediate", "--root", join(dir, "root"), "--out", join(dir, "a")]);
    await cli(["ca", "intermediate", "--root", join(dir, "root"), "--out", join(dir, "b")]);
    writeFileSync(join(dir, "a", "ca-key.pem"), readFileSync(join(dir, "b", "ca-key.pem")));
    const inspect = await cli(["ca", "inspect", join(dir, "a")]);
    expect(inspect.exitCode).to.equal(1);
    expect(inspect.stdout).to.contain("KeyMismatch: ca-key.pem does not match");
  });

  const badInputs: [string, (dir: string) => string[], string, RegExp, number][] = [
    ["a missing --out", () => ["ca", "root"], "", /--out is required/, 2],
    ["an unknown flag", () => ["ca", "root", "--out", "x", "--colour", "blue"], "", /Unknown option/, 2],
    [
      "a bad duration",
      (d) => ["ca", "root", "--out", join(d, "r"), "--lifetime", "ten years"],
      "",
      /cannot read duration/,
      1,
    ],
    [
      "a bad subject",
      (d) => ["ca", "root", "--out", join(d, "r"), "--subject", "Common Name"],
      "",
      /cannot read name part/,
      1,
    ],
    [
      "a bad key type",
      (d) => ["ca", "root", "--out", join(d, "r"), "--key-type", "dsa"],
      "",
      /--key-type must be one of/,
      2,
    ],
    ["a CA folder without CA files", (d) => ["sign", "--ca", d], "", /no CA files found/, 1],
    [
      "a root that would be dead on arrival (--lifetime 1s)",
      (d) => ["ca", "root", "--out", join(d, "r"), "--lifetime", "1s"],
      "",
      /--lifetime 1s is shorter than a CA can usefully live/,
      2,
    ],
    ["an unknown command", () => ["frobnicate"], "", /unknown command "frobnicate"/, 2],
    [
      "controller outside a cluster without --kubeconfig (never a localhost fallback)",
      () => ["controller"],
      "",
      /not running in a cluster: pass --kubeconfig/,
      2,
    ],
    [
      "controller with a bad --log-level",
      () => ["controller", "--log-level", "loud"],
      "",
      /--log-level must be/,
      2,
    ],
  ];
  for (const [name, args, stdin, message, code] of badInputs) {
    it(`refuses ${name} with one line and exit ${code}, writing nothing`, async () => {
      const before = readdirSync(dir);
      const run = await cli(args(dir), stdin);
      expect(run.exitCode).to.equal(code);
      expect(run.stderr).to.match(message);
      expect(run.stderr.trim().split("\n")[0]).to.match(message);
      expect(run.stderr).not.to.match(/\n\s+at /); // no stack trace
      expect(readdirSync(dir)).to.deep.equal(before);
    });
  }

  it("refuses a truncated CSR with one line naming the request, exit 1, printing no certificate", async () => {
    await cli(["ca", "root", "--out", join(dir, "root")]);
    await cli(["ca", "intermediate", "--root", join(dir, "root"), "--out", join(dir, "c1")]);
    const { csrPem } = opensslRequest("ec", "/CN=web", ["subjectAltName=DNS:web.example.com"]);
    const lines = csrPem.trim().split("\n");
    const truncated = [...lines.slice(0, 3), lines.at(-1)!].join("\n") + "\n";
    const run = await cli(["sign", "--ca", join(dir, "c1")], truncated);
    expect(run.exitCode).to.equal(1);
    expect(run.stdout).to.equal("");
    expect(run.stderr.trim().split("\n")).to.have.length(1);
    expect(run.stderr).to.match(/^csr-signer sign: .*(request|DER|PEM)/i);
  });

  it('prints the command list for "ca --help" and "istio --help"', async () => {
    for (const group of ["ca", "istio"]) {
      const run = await cli([group, "--help"]);
      expect(run.exitCode, group).to.equal(0);
      expect(run.stdout, group).to.contain("ca intermediate").and.to.contain("istio mesh-config");
    }
  });

  it("never overwrites an existing CA without --force", async () => {
    await cli(["ca", "root", "--out", join(dir, "root")]);
    const first = readFileSync(join(dir, "root", "root-key.pem"), "utf8");
    const again = await cli(["ca", "root", "--out", join(dir, "root")]);
    expect(again.exitCode).to.equal(1);
    expect(again.stderr).to.contain("already exist (use --force to replace)");
    expect(readFileSync(join(dir, "root", "root-key.pem"), "utf8")).to.equal(first);
    expect(readdirSync(join(dir, "root")).sort()).to.deep.equal(["root-cert.pem", "root-key.pem"]);
  });

  it("runs as a real process: --help, and a one-line error with a non-zero exit", () => {
    const main = join(process.cwd(), "src", "cli", "main.ts");
    const help = spawnSync(process.execPath, ["--import", "tsx", main, "sign", "--help"], {
      encoding: "utf8",
    });
    expect(help.status).to.equal(0);
    expect(help.stdout).to.contain("Usage: csr-signer sign");
    const failing = spawnSync(
      process.execPath,
      ["--import", "tsx", main, "sign", "--ca", join(dir, "nope")],
      { encoding: "utf8", input: "" },
    );
    expect(failing.status).to.equal(1);
    expect(failing.stderr.trim().split("\n")).to.have.length(1);
    expect(existsSync(join(dir, "nope"))).to.equal(false);
  });

  it("refuses a CSR that is not PEM, and one with a forged signature, naming the check", async () => {
    await cli(["ca", "root", "--out", join(dir, "root")]);
    await cli(["ca", "intermediate", "--root", join(dir, "root"), "--out", join(dir, "c1")]);
    const notPem = await cli(["sign", "--ca", join(dir, "c1")], "not a csr");
    expect(notPem.exitCode).to.equal(1);
    expect(notPem.stderr).to.equal("csr-signer sign: request PEM: unexpected text outside PEM blocks\n");
    const { csrPem } = opensslRequest("ec", "/CN=x");
    const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\n/g, ""), "base64");
    der[der.length - 2]! ^= 0xff; // inside the signature
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    const run = await cli(["sign", "--ca", join(dir, "c1")], forged);
    expect(run.exitCode).to.equal(1);
    expect(run.stdout).to.equal("");
    expect(run.stderr).to.match(/^csr-signer sign: (proof of possession failed|request DER)/);
  });
});

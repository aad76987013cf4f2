import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCliInProcess as cli } from "../../support/cli.js";
import { addRoots, RootSetError } from "../../../src/pki/root-set.js";
import { decodeCertificatesPem } from "../../../src/pki/pem.js";
import { parseCertificate } from "../../../src/pki/certificate.js";

const fingerprints = (pem: string): string[] =>
  decodeCertificatesPem(pem, "test").map((der) => parseCertificate(der).fingerprintSha256);

describe("csr-signer ca add-root (root rotation, step A)", function () {
  this.timeout(30_000);
  let dir: string;
  let oldRoot: string;
  let newRoot: string;
  beforeEach(async () => {
    dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    expect(
      (await cli(["ca", "root", "--out", join(dir, "old"), "--subject", "CN=Old Root"])).exitCode,
    ).to.equal(0);
    expect(
      (await cli(["ca", "root", "--out", join(dir, "new"), "--subject", "CN=New Root"])).exitCode,
    ).to.equal(0);
    expect(
      (await cli(["ca", "intermediate", "--root", join(dir, "old"), "--out", join(dir, "cacerts")])).exitCode,
    ).to.equal(0);
    oldRoot = readFileSync(join(dir, "old", "root-cert.pem"), "utf8");
    newRoot = readFileSync(join(dir, "new", "root-cert.pem"), "utf8");
  });

  it("--folder appends the new root after the old one; running it again changes nothing; ca inspect has no warnings", async () => {
    const args = [
      "ca",
      "add-root",
      "--folder",
      join(dir, "cacerts"),
      "--root",
      join(dir, "new", "root-cert.pem"),
    ];
    const run = await cli(args);
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^added "CN=New Root" \(sha256 [0-9A-F:]+\) to .*root-cert\.pem\n$/i);
    const roots = readFileSync(join(dir, "cacerts", "root-cert.pem"), "utf8");
    expect(roots).to.equal(oldRoot + newRoot);
    const again = await cli(args);
    expect(again.exitCode).to.equal(0);
    expect(again.stdout).to.contain("is already in");
    expect(readFileSync(join(dir, "cacerts", "root-cert.pem"), "utf8")).to.equal(roots);
    const inspect = await cli(["ca", "inspect", join(dir, "cacerts")]);
    expect(inspect.exitCode, inspect.stdout).to.equal(0);
    expect(inspect.stdout).to.contain("CN=New Root");
  });

  it("--secret - prints the Secret with root-cert.pem extended (base64), keeps resourceVersion, drops managedFields", async () => {
    const data = Object.fromEntries(
      ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"].map((name) => [
        name,
        readFileSync(join(dir, "cacerts", name)).toString("base64"),
      ]),
    );
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "foo-cacerts", namespace: "csr-signer", resourceVersion: "42", managedFields: [{}] },
      type: "Opaque",
      data,
    };
    const run = await cli(
      ["ca", "add-root", "--secret", "-", "--root", join(dir, "new", "root-cert.pem")],
      JSON.stringify(secret),
    );
    expect(run.exitCode, run.stderr).to.equal(0);
    const patched = JSON.parse(run.stdout) as typeof secret;
    expect(patched.metadata).to.deep.equal({
      name: "foo-cacerts",
      namespace: "csr-signer",
      resourceVersion: "42",
    });
    expect(Buffer.from(patched.data["root-cert.pem"]!, "base64").toString()).to.equal(oldRoot + newRoot);
    expect(patched.data["ca-key.pem"]).to.equal(data["ca-key.pem"]);
    expect(run.stderr).to.contain('added "CN=New Root"');
  });

  it("refuses an intermediate, a non-certificate, and a Secret that is not JSON, writing nothing", async () => {
    const before = readFileSync(join(dir, "cacerts", "root-cert.pem"), "utf8");
    const intermediate = await cli([
      "ca",
      "add-root",
      "--folder",
      join(dir, "cacerts"),
      "--root",
      join(dir, "cacerts", "ca-cert.pem"),
    ]);
    expect(intermediate.exitCode).to.equal(2);
    expect(intermediate.stderr).to.contain("is not a self-signed root");
    writeFileSync(join(dir, "junk.pem"), "not pem");
    const junk = await cli([
      "ca",
      "add-root",
      "--folder",
      join(dir, "cacerts"),
      "--root",
      join(dir, "junk.pem"),
    ]);
    expect(junk.exitCode).to.equal(2);
    expect(readFileSync(join(dir, "cacerts", "root-cert.pem"), "utf8")).to.equal(before);
    const notJson = await cli(
      ["ca", "add-root", "--secret", "-", "--root", join(dir, "new", "root-cert.pem")],
      "kind: Secret",
    );
    expect(notJson.exitCode).to.equal(2);
    expect(notJson.stderr).to.contain("not JSON");
    const both = await cli([
      "ca",
      "add-root",
      "--secret",
      "-",
      "--folder",
      dir,
      "--root",
      join(dir, "new", "root-cert.pem"),
    ]);
    expect(both.exitCode).to.equal(2);
  });

  it("addRoots (pure): de-duplicates within the input too, refuses an expired root", () => {
    const change = addRoots(oldRoot, newRoot + newRoot + oldRoot, new Date());
    expect(fingerprints(change.pem)).to.have.length(2);
    expect(change.added).to.have.length(1);
    expect(change.alreadyPresent).to.have.length(2);
    expect(() => addRoots(oldRoot, newRoot, new Date(Date.now() + 20 * 365 * 86_400_000)))
      .to.throw(RootSetError)
      .with.property("message")
      .that.contains("expired at");
    expect(() => addRoots(oldRoot, "", new Date())).to.throw(RootSetError, "no certificate");
  });
});

/**
 * `make run` (hack/run-demo.ts) end to end, as a developer runs it, with the port it used to take
 * (18080) already busy: it picks free ports, prints subjects, SANs and verify results instead of
 * PEM, and leaves the chains and the controller log in a folder it names.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { expect } from "chai";

describe("make run (hack/run-demo.ts)", function () {
  this.timeout(300_000);
  let busy: Server | undefined;

  before(async () => {
    busy = createServer();
    // 18080 may be taken by something else already: then it is busy anyway, which is the point.
    await new Promise<void>((resolve) => {
      busy!.once("error", () => resolve());
      busy!.listen(18080, "127.0.0.1", resolve);
    });
  });
  after(() => busy?.close());

  it("issues with 18080 busy, prints no PEM, writes the chains and keeps the log where it says", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "hack/run-demo.ts"], {
      env: { ...process.env, CSR_SIGNER_DEMO_EXIT: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code, output).to.equal(0);
    expect(output).not.to.contain("BEGIN CERTIFICATE");
    expect(output.match(/verify against the offline root: OK/g), output).to.have.length(5);
    expect(output).to.match(/REFUSED NamespaceNotTenant/);
    const folder = /issued chains \(PEM\): (\S+)\/csr-\*\.pem/.exec(output)?.[1];
    expect(folder, output).to.be.a("string");
    expect(readFileSync(join(folder!, "csr-self-foo-web.pem"), "utf8")).to.contain("BEGIN CERTIFICATE");
    expect(existsSync(join(folder!, "csr-signer.log"))).to.equal(true);
    expect(output).not.to.contain("127.0.0.1:18080");
  });
});

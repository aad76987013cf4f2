import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { brokenPipeTolerantWriter, type WritableOutput } from "../../../src/cli/io.js";

/** A stream whose reader can go away: write then throws, or reports EPIPE as an 'error' event. */
class FakeOutput extends EventEmitter implements WritableOutput {
  written: string[] = [];
  throwOnWrite: NodeJS.ErrnoException | undefined;
  write(text: string): boolean {
    if (this.throwOnWrite) throw this.throwOnWrite;
    this.written.push(text);
    return true;
  }
}

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`write ${code}`), { code });

describe("brokenPipeTolerantWriter (csr-signer ... | head -1)", () => {
  it("writes until an EPIPE 'error' event, then drops the rest without throwing", () => {
    const stream = new FakeOutput();
    const write = brokenPipeTolerantWriter(stream);
    write("one\n");
    stream.emit("error", errno("EPIPE"));
    write("two\n");
    expect(stream.written).to.deep.equal(["one\n"]);
  });

  it("takes a synchronous EPIPE from write the same way", () => {
    const stream = new FakeOutput();
    const write = brokenPipeTolerantWriter(stream);
    stream.throwOnWrite = errno("EPIPE");
    expect(() => write("lost\n")).not.to.throw();
    stream.throwOnWrite = undefined;
    write("after\n");
    expect(stream.written).to.deep.equal([]);
  });

  it("still throws any other stream error (a full disk is not a reader going away)", () => {
    const stream = new FakeOutput();
    brokenPipeTolerantWriter(stream);
    expect(() => stream.emit("error", errno("ENOSPC"))).to.throw("ENOSPC");
    const throwing = new FakeOutput();
    const write = brokenPipeTolerantWriter(throwing);
    throwing.throwOnWrite = errno("EIO");
    expect(() => write("x")).to.throw("EIO");
  });

  it("as a real process whose stdout reader closed at once: exit 0, nothing on stderr, files written", async function () {
    this.timeout(30_000);
    const out = join(mkdtempSync(join(tmpdir(), "csr-signer-epipe-")), "root");
    const main = join(process.cwd(), "src", "cli", "main.ts");
    const child = spawn(process.execPath, ["--import", "tsx", main, "ca", "root", "--out", out], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stderr).to.equal("");
    expect(code).to.equal(0);
    expect(readdirSync(out).sort()).to.deep.equal(["root-cert.pem", "root-key.pem"]);
  });
});

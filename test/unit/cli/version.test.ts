import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runCliInProcess } from "../../support/cli.js";

const repositoryRoot = join(import.meta.dirname, "..", "..", "..");
const packageVersion = (
  JSON.parse(readFileSync(join(repositoryRoot, "package.json"), "utf8")) as { version: string }
).version;

describe("csr-signer --version", function () {
  this.timeout(60_000);

  it("prints the package.json version, the git commit of the checkout and the Node version (from src/)", async () => {
    const head = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: repositoryRoot,
      encoding: "utf8",
    });
    for (const flag of ["--version", "version"]) {
      const run = await runCliInProcess([flag]);
      expect(run.exitCode).to.equal(0);
      expect(run.stdout).to.equal(
        `csr-signer ${packageVersion} (commit ${head.trim()}, Node ${process.version})\n`,
      );
    }
  });

  it('says commit "unknown" under tsx when git is not there', () => {
    // PATH with only Node's folder: no git to ask.
    const output = execFileSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "--version"], {
      cwd: repositoryRoot,
      encoding: "utf8",
      env: { ...process.env, PATH: dirname(process.execPath) },
    });
    expect(output).to.equal(`csr-signer ${packageVersion} (commit unknown, Node ${process.version})\n`);
  });

  it("carries the version and the commit given at bundle time (CSR_SIGNER_COMMIT, as the image build passes it)", () => {
    const folder = mkdtempSync(join(tmpdir(), "csr-signer-version-"));
    try {
      const bundle = join(folder, "csr-signer.mjs");
      execFileSync(process.execPath, [join(repositoryRoot, "hack", "bundle.mjs"), `--outfile=${bundle}`], {
        env: { ...process.env, CSR_SIGNER_COMMIT: "0123456789ab" },
      });
      // Run from elsewhere, without git on PATH: the values are in the bundle, not looked up.
      const output = execFileSync(process.execPath, [bundle, "--version"], {
        cwd: folder,
        encoding: "utf8",
        env: { ...process.env, PATH: dirname(process.execPath) },
      });
      expect(output).to.equal(
        `csr-signer ${packageVersion} (commit 0123456789ab, Node ${process.version})\n`,
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

// Replaced by string literals when hack/bundle.mjs builds dist/csr-signer.mjs (esbuild `define`);
// undeclared under tsx, where `typeof` tells so without throwing.
declare const CSR_SIGNER_BUILD_VERSION: string;
declare const CSR_SIGNER_BUILD_COMMIT: string;

export type BuildInfo = { version: string; commit: string; node: string };

/**
 * What `csr-signer --version` prints: the package version, the git commit it was built from and the
 * Node running it. The bundle (and so the image) carries the values of its build; from src/ under tsx
 * they are read from package.json and `git rev-parse`, and the commit is "unknown" outside a git
 * checkout.
 */
export function buildInfo(): BuildInfo {
  return {
    version: typeof CSR_SIGNER_BUILD_VERSION === "string" ? CSR_SIGNER_BUILD_VERSION : sourceVersion(),
    commit: typeof CSR_SIGNER_BUILD_COMMIT === "string" ? CSR_SIGNER_BUILD_COMMIT : sourceCommit(),
    node: process.version,
  };
}

export function versionText(info: BuildInfo = buildInfo()): string {
  return `csr-signer ${info.version} (commit ${info.commit}, Node ${info.node})\n`;
}

const repositoryRoot = join(import.meta.dirname, "..", "..");

function sourceVersion(): string {
  const manifest = JSON.parse(readFileSync(join(repositoryRoot, "package.json"), "utf8")) as {
    version?: unknown;
  };
  return typeof manifest.version === "string" ? manifest.version : "unknown";
}

function sourceCommit(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: repositoryRoot,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown"; // no git, or not a checkout (a copied source tree): the version still prints
  }
}

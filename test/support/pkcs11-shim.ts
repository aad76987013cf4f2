/**
 * The test PKCS#11 shim module (test/fixtures/pkcs11-shim/shim.c): SoftHSM2 behind a module that
 * can be made slow or hung, and that logs login and initialisation calls. Compiled with the C
 * compiler pkcs11js's own build needs, once per source version, into $CSR_SIGNER_CACHE.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { softHsmBinaries } from "./softhsm.js";
import { repositoryRoot } from "./testbin.js";

let built: string | undefined;

/** The shim's path, built if needed; it forwards to this process's SoftHSM2 module. */
export function pkcs11ShimModule(): string {
  if (built) return built;
  const source = path.join(repositoryRoot, "test", "fixtures", "pkcs11-shim", "shim.c");
  const includes = path.join(repositoryRoot, "node_modules", "pkcs11js", "includes", "pkcs11");
  const version = createHash("sha256")
    .update(readFileSync(source))
    .update(readFileSync(path.join(includes, "pkcs11.h")))
    .digest("hex")
    .slice(0, 12);
  const cache = process.env.CSR_SIGNER_CACHE ?? path.join(homedir(), ".cache", "csr-signer");
  const folder = path.join(cache, `pkcs11-shim-${version}`);
  const library = path.join(folder, "libcsr-signer-pkcs11-shim.so");
  if (!existsSync(library)) {
    mkdirSync(folder, { recursive: true });
    const temporary = `${library}.${process.pid}.tmp`;
    execFileSync(
      process.env.CC ?? "cc",
      ["-shared", "-fPIC", "-O2", "-I", includes, "-o", temporary, source, "-ldl"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    renameSync(temporary, library);
  }
  process.env.CSR_SIGNER_SHIM_MODULE = softHsmBinaries().modulePath;
  built = library;
  return library;
}

/** Sets the shim's delays (read by the module at each call, from the process environment). */
export function setShimDelays(delays: { signInitMs?: number; signMs?: number }): void {
  process.env.CSR_SIGNER_SHIM_SIGN_INIT_MS = String(delays.signInitMs ?? 0);
  process.env.CSR_SIGNER_SHIM_SIGN_MS = String(delays.signMs ?? 0);
}

/** Starts logging calls to a new file; `counts()` reads how many of each so far. */
export function logShimCalls(file: string): { counts(): Record<string, number> } {
  writeFileSync(file, "");
  process.env.CSR_SIGNER_SHIM_LOG = file;
  return {
    counts() {
      const counts: Record<string, number> = {};
      for (const name of readFileSync(file, "utf8").split("\n").filter(Boolean))
        counts[name] = (counts[name] ?? 0) + 1;
      return counts;
    },
  };
}

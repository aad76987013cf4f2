#!/usr/bin/env node
/**
 * `make build`: the CLI (src/cli/main.ts) and everything it imports, npm dependencies included, as
 * one ES module, dist/csr-signer.mjs. That file is what the image runs (`node --max-semi-space-size=8
 * --expose-gc --liftoff-only dist/csr-signer.mjs controller ...`): no node_modules at run time, and only the code reachable from the CLI is
 * loaded (plus, for PKCS#11 CA keys only, dist/pkcs11-worker.mjs, the script of the worker thread
 * that makes the PKCS#11 calls, and dist/pkcs11.node, the binding's native module, beside it). Whitespace and syntax are minified, identifiers are not: the 7 MB of source V8 keeps in
 * memory shrinks by half (8 MiB less RSS, measured) and stack traces keep their function names;
 * dist/csr-signer.mjs.map maps them back to src/ under `node --enable-source-maps` (not loaded
 * otherwise). dist/csr-signer.meta.json is esbuild's metafile; `node hack/bundle.mjs --analyze` prints
 * what each input adds to the bundle; `--outfile PATH` writes elsewhere (the CLI integration test
 * builds its own). Plain JavaScript, so it runs before (and without) tsx.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { analyzeMetafile, build } from "esbuild";

const repositoryRoot = join(import.meta.dirname, "..");
const { values } = parseArgs({ options: { analyze: { type: "boolean" }, outfile: { type: "string" } } });
const outfile = values.outfile ? resolve(values.outfile) : join(repositoryRoot, "dist", "csr-signer.mjs");

// `csr-signer --version` (src/cli/version.ts): the package version and the commit, fixed at build time.
// CSR_SIGNER_COMMIT when set (the image build has no .git), else git's, else "unknown".
const { version } = JSON.parse(readFileSync(join(repositoryRoot, "package.json"), "utf8"));
const commit = process.env.CSR_SIGNER_COMMIT || gitCommit() || "unknown";
function gitCommit() {
  try {
    const head = ["rev-parse", "--short=12", "HEAD"];
    return execFileSync("git", head, {
      cwd: repositoryRoot,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return undefined; // not a git checkout, or no git: the caller says "unknown"
  }
}

const common = {
  absWorkingDir: repositoryRoot,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22.19",
  // undici, ws and the other CommonJS dependencies call require() for Node's built-in modules,
  // which an ES module has no binding for: give the bundle one.
  banner: {
    js: 'import { createRequire as __csrSignerCreateRequire } from "node:module"; const require = __csrSignerCreateRequire(import.meta.url);',
  },
  // pkcs11js's native module (build/Release/pkcs11.node, compiled by `npm ci`) cannot be inlined:
  // it is copied beside the bundle as dist/pkcs11.node and its require() rewritten to that file,
  // which the bundle's createRequire resolves next to itself. Loaded only when a PKCS#11 key is used.
  loader: { ".node": "copy" },
  assetNames: "[name]",
  define: {
    CSR_SIGNER_BUILD_VERSION: JSON.stringify(version),
    CSR_SIGNER_BUILD_COMMIT: JSON.stringify(commit),
  },
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning",
};
const result = await build({ ...common, entryPoints: ["src/cli/main.ts"], outfile });
// The PKCS#11 worker thread's script (src/pki/pkcs11/module-worker.ts starts it from beside the
// bundle): its own small file, so each module's worker loads pkcs11js and the PKCS#11 code only.
await build({
  ...common,
  entryPoints: ["src/pki/pkcs11/worker-entry.ts"],
  outfile: join(dirname(outfile), "pkcs11-worker.mjs"),
  metafile: false,
});
mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(outfile.replace(/\.mjs$/, ".meta.json"), JSON.stringify(result.metafile));
if (values.analyze) process.stdout.write(await analyzeMetafile(result.metafile));

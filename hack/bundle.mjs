#!/usr/bin/env node
/**
 * `make build`: the CLI (src/cli/main.ts) and everything it imports, npm dependencies included, as
 * one ES module, dist/csr-signer.mjs. That file is what the image runs (`node dist/csr-signer.mjs
 * controller ...`): no node_modules at run time, and only the code reachable from the CLI is
 * loaded. Names are kept (no minification), so stack traces stay readable without source maps.
 * dist/csr-signer.meta.json is esbuild's metafile; `node hack/bundle.mjs --analyze` prints what
 * each input adds to the bundle. Plain JavaScript, so it runs before (and without) tsx.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { analyzeMetafile, build } from "esbuild";

const repositoryRoot = join(import.meta.dirname, "..");
const outfile = join(repositoryRoot, "dist", "csr-signer.mjs");

const result = await build({
  absWorkingDir: repositoryRoot,
  entryPoints: ["src/cli/main.ts"],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22.19",
  // undici, ws and the other CommonJS dependencies call require() for Node's built-in modules,
  // which an ES module has no binding for: give the bundle one.
  banner: {
    js: 'import { createRequire as __csrSignerCreateRequire } from "node:module"; const require = __csrSignerCreateRequire(import.meta.url);',
  },
  metafile: true,
  logLevel: "warning",
});
mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(join(repositoryRoot, "dist", "csr-signer.meta.json"), JSON.stringify(result.metafile));
if (process.argv.includes("--analyze")) process.stdout.write(await analyzeMetafile(result.metafile));

/**
 * The Node floor (node-floor.ts) bundled as csr-signer is (hack/bundle.mjs: esbuild, one ES module,
 * whitespace and syntax minified) and run with csr-signer's node flags (the Dockerfile's, then
 * BENCH_NODE_FLAGS), so that it is compared on the same footing: dist/bench-node-floor.mjs, built
 * once per benchmark process. Always the bundle, also under BENCH_CONTROLLER_RUNTIME=tsx.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { controllerNodeFlags } from "../rss-child.js";
import { repositoryRoot } from "../../test/support/testbin.js";

const floorBundle = join(repositoryRoot, "dist", "bench-node-floor.mjs");
let built = false;

/** node's arguments for the Node floor with `cliArgs`. */
export function nodeFloorNodeArgs(cliArgs: string[]): string[] {
  if (!built) {
    buildSync({
      absWorkingDir: repositoryRoot,
      entryPoints: [join("bench", "controller", "node-floor.ts")],
      outfile: floorBundle,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22.19",
      // As hack/bundle.mjs: the CommonJS dependencies call require(), which an ES module lacks.
      banner: {
        js: 'import { createRequire as __floorCreateRequire } from "node:module"; const require = __floorCreateRequire(import.meta.url);',
      },
      loader: { ".node": "copy" },
      assetNames: "[name]",
      minifyWhitespace: true,
      minifySyntax: true,
      logLevel: "warning",
    });
    if (!existsSync(floorBundle)) throw new Error(`esbuild did not write ${floorBundle}`);
    built = true;
  }
  return [...controllerNodeFlags(), floorBundle, ...cliArgs];
}

/**
 * Mocha root hook plugin for the integration tests: one control plane (etcd + kube-apiserver) for the
 * whole run, started before the first test and stopped after the last.
 * Loaded with `mocha --require test/integration/setup.ts` (see the test:integration npm script).
 */
import type { Context } from "mocha";
import { startControlPlane, type ControlPlane } from "../support/control-plane.js";

// Kept on globalThis, not in a module variable: should this module ever be loaded twice (once by
// --require, once by a test's import under another URL), both copies still see the same control plane.
const CONTROL_PLANE_KEY = Symbol.for("csr-signer.test.integration.controlPlane");
type GlobalWithControlPlane = typeof globalThis & { [CONTROL_PLANE_KEY]?: ControlPlane };
const shared = globalThis as GlobalWithControlPlane;

/** The control plane of this run; throws when the root hooks did not run. */
export function controlPlane(): ControlPlane {
  const current = shared[CONTROL_PLANE_KEY];
  if (current === undefined) {
    throw new Error("no control plane: run the integration tests with `--require test/integration/setup.ts`");
  }
  return current;
}

export const mochaHooks = {
  async beforeAll(this: Context): Promise<void> {
    this.timeout(120_000);
    const started = await startControlPlane();
    shared[CONTROL_PLANE_KEY] = started;
    console.log(
      `  control plane ready in ${(started.startupMs / 1000).toFixed(1)} s at ${started.server} (${started.dir})`,
    );
  },
  async afterAll(this: Context): Promise<void> {
    this.timeout(30_000);
    const current = shared[CONTROL_PLANE_KEY];
    delete shared[CONTROL_PLANE_KEY];
    await current?.stop();
  },
};

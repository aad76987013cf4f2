/**
 * The PKCS#11 worker thread: owns one module (library) and runs every call to it, synchronously,
 * one request at a time (module-worker.ts sends the next only after this one's reply). A token
 * that takes seconds, or hangs, holds this thread only: the main thread's event loop and libuv's
 * thread pool never wait for an HSM.
 *
 * Started by module-worker.ts: from the sources as this file, from the bundle as
 * dist/pkcs11-worker.mjs (hack/bundle.mjs). Does nothing unless it runs as that worker.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type * as Pkcs11Binding from "pkcs11js";
import { describeCause, Pkcs11Error } from "./errors.js";
import { describeKey, type Pkcs11KeyLocation } from "./key-location.js";
import { Pkcs11Module, type Pkcs11Binding as Binding } from "./module.js";
import { generateInToken } from "./token-objects.js";
import { TokenKeySession } from "./token-session.js";
import type {
  OpenedKey,
  WorkerCall,
  WorkerReady,
  WorkerReply,
  WorkerSettings,
  WorkerStart,
} from "./worker-protocol.js";

/** Failures that a token removed or re-initialised since the library was initialised would explain. */
const staleLibrarySymptoms = new Set(["Pkcs11TokenNotFound", "Pkcs11TokenUnavailable"]);

class ModuleHost {
  readonly #keys = new Map<number, TokenKeySession>();
  #nextKey = 1;

  constructor(readonly module: Pkcs11Module) {}

  handle(call: WorkerCall): OpenedKey | Uint8Array | undefined {
    switch (call.op) {
      case "open":
        return this.#open(call.location, call.pin, call.settings);
      case "generate": {
        const what = describeKey(call.location);
        this.#retryStale(
          () => generateInToken(this.module, call.location, call.pin, call.keyType, what),
          call.location,
          0,
        );
        return this.#open(call.location, call.pin, call.settings);
      }
      case "sign": {
        const session = this.#keys.get(call.key);
        if (session === undefined) throw new Pkcs11Error("Pkcs11TokenUnavailable", "the key was closed");
        // A copy of just the signature's bytes: posting a view clones its whole ArrayBuffer.
        return new Uint8Array(session.sign(call.data));
      }
      case "close": {
        const session = this.#keys.get(call.key);
        if (session === undefined) return undefined;
        this.#keys.delete(call.key);
        const lastOnToken = ![...this.#keys.values()].some((other) => other.slotKey === session.slotKey);
        session.close(lastOnToken);
        return undefined;
      }
    }
  }

  #open(location: Pkcs11KeyLocation, pin: string, settings: WorkerSettings): OpenedKey {
    const what = describeKey(location);
    const session = this.#retryStale(
      () => TokenKeySession.open(this.module, location, pin, what),
      location,
      settings.reinitializeIntervalMs,
    );
    const key = this.#nextKey++;
    this.#keys.set(key, session);
    return {
      key,
      publicKeyDer: new Uint8Array(session.objects.publicKey.export({ format: "der", type: "spki" })),
      protection: session.objects.protection,
    };
  }

  /**
   * Runs `attempt`; when it fails as a token replaced since the library was initialised would,
   * re-initialises the library (rate-limited, see Pkcs11Module.mayReinitialize: every key of the
   * module must log in again afterwards) and tries once more. A mistyped key label never
   * re-initialises. Generation (an operator's one-off command) passes interval 0.
   */
  #retryStale<T>(attempt: () => T, location: Pkcs11KeyLocation, intervalMs: number): T {
    try {
      return attempt();
    } catch (error) {
      if (!(error instanceof Pkcs11Error) || !staleLibrarySymptoms.has(error.reason)) throw error;
      if (!this.module.mayReinitialize(location, intervalMs)) throw error;
      this.module.reinitialize(location);
      return attempt();
    }
  }
}

function reply(message: WorkerReply): void {
  parentPort!.postMessage(message);
}

async function serve(start: WorkerStart): Promise<void> {
  let host: ModuleHost | Pkcs11Error;
  try {
    const imported = (await import("pkcs11js")) as { default?: typeof Pkcs11Binding };
    const binding = (imported.default ?? imported) as Binding;
    host = new ModuleHost(Pkcs11Module.load(start.modulePath, binding));
  } catch (error) {
    host =
      error instanceof Pkcs11Error
        ? error
        : new Pkcs11Error(
            "Pkcs11ModuleLoadFailed",
            `the PKCS#11 binding (pkcs11js) could not be loaded for module ${start.modulePath}: ${describeCause(error)}`,
          );
  }
  parentPort!.postMessage({ ready: true } satisfies WorkerReady);
  parentPort!.on("message", (call: WorkerCall) => {
    if (host instanceof Pkcs11Error) {
      reply({ id: call.id, generation: 0, ok: false, reason: host.reason, message: host.message });
      return;
    }
    try {
      const value = host.handle(call);
      reply({ id: call.id, generation: host.module.generation, ok: true, value });
    } catch (error) {
      const failure =
        error instanceof Pkcs11Error
          ? error
          : new Pkcs11Error(
              "Pkcs11TokenUnavailable",
              // Not a Pkcs11Error (a binding or argument error): its CKR_ name or first line, never a PIN.
              `the PKCS#11 worker failed: ${describeCause(error, "pin" in call ? call.pin : undefined)}`,
            );
      reply({
        id: call.id,
        generation: host.module.generation,
        ok: false,
        reason: failure.reason,
        message: failure.message,
      });
    }
  });
}

const start = workerData as Partial<WorkerStart> | undefined;
if (!isMainThread && start?.csrSignerPkcs11Worker === true && parentPort !== null) {
  void serve(start as WorkerStart);
}

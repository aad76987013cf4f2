/**
 * The main thread's side of a PKCS#11 module: a worker thread (worker-entry.ts) that owns the
 * library and makes every call to it, and the queue of calls for it. One worker per module path,
 * so a hung or slow token holds its own module's worker only: never the event loop, never libuv's
 * thread pool (no PKCS#11 call uses it), never another module.
 *
 * One call is with the worker at a time; each has a time limit. A call past its limit fails with
 * Pkcs11Timeout and the worker is terminated and replaced (`epoch` bumps): calls queued behind it
 * go to the new worker, and keys opened in the old one open again there (token-signing-key.ts).
 * A native call that never returns keeps its terminated thread until it does, and the sessions the
 * old worker had stay open in the library until its next re-initialisation.
 */
import { Worker } from "node:worker_threads";
import { Pkcs11Error } from "./errors.js";
import type { WorkerCall, WorkerReady, WorkerReply, WorkerRequest, WorkerStart } from "./worker-protocol.js";

/**
 * How long a new worker may take to start (load Node's worker, pkcs11js and the module, and
 * C_Initialize). Not counted in the first call's own limit: a call's limit is the token's time.
 */
const workerStartTimeoutMs = 30_000;

/**
 * The worker's script: this folder's worker-entry.ts when running from the sources (tsx, whose
 * loader the worker inherits through execArgv), the bundle's second file, pkcs11-worker.mjs beside
 * it, when running from dist/ (hack/bundle.mjs).
 */
function workerScript(): URL {
  return import.meta.url.endsWith(".ts")
    ? new URL("./worker-entry.ts", import.meta.url)
    : new URL("./pkcs11-worker.mjs", import.meta.url);
}

/**
 * Terminated workers still stuck in a native call, at most, per module: a token that hangs for good
 * would otherwise leave one thread behind per retry. Past this, calls fail at once until one returns.
 */
const maxStuckWorkers = 3;

/** A call that reached a worker other than the one its key was opened in: open the key again. */
export class StaleWorkerError extends Error {}

export interface CallOptions {
  timeoutMs: number;
  /** Names the key or module in a timeout's message. */
  what: string;
  /** The worker the call's key was opened in: a call that would reach another is refused. */
  epoch?: number;
  /** Checked when the call's turn comes: false refuses it unsent (its key was closed). */
  stillWanted?: () => boolean;
}

interface Pending {
  request: WorkerRequest;
  options: CallOptions;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class ModuleWorker {
  readonly path: string;
  #worker: Worker | undefined;
  #ready = false;
  /** The limit on the current worker's start, until it is ready. */
  #starting: NodeJS.Timeout | undefined;
  #epoch = 0;
  #nextId = 1;
  readonly #queue: Pending[] = [];
  #inFlight: (Pending & { id: number; timer: NodeJS.Timeout | undefined }) | undefined;
  /** Re-initialisations of the library by earlier workers, and by the current one. */
  #earlierGenerations = 0;
  #generation = 0;
  /** Replaced workers whose threads have not ended yet (stuck in a call that has not returned). */
  readonly #ending = new Set<Worker>();

  constructor(path: string) {
    this.path = path;
  }

  /** Which worker is current: bumps whenever one is replaced. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Replaced workers whose threads are still stuck in a call. */
  get stuckWorkers(): number {
    return this.#ending.size;
  }

  /** C_Finalize + C_Initialize runs of this module so far (all workers). */
  get generation(): number {
    return this.#earlierGenerations + this.#generation;
  }

  call<T>(request: WorkerRequest, options: CallOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ request, options, resolve: resolve as (value: unknown) => void, reject });
      this.#next();
    });
  }

  #next(): void {
    while (this.#inFlight === undefined) {
      const pending = this.#queue.shift();
      if (pending === undefined) return;
      if (pending.options.stillWanted?.() === false) {
        pending.reject(
          new Pkcs11Error("Pkcs11TokenUnavailable", `${pending.options.what}: the key was closed`),
        );
        continue;
      }
      if (pending.options.epoch !== undefined && pending.options.epoch !== this.#epoch) {
        pending.reject(new StaleWorkerError(`${pending.options.what}: opened in a replaced worker`));
        continue;
      }
      if (this.#worker === undefined && this.#ending.size >= maxStuckWorkers) {
        pending.reject(
          new Pkcs11Error(
            "Pkcs11Timeout",
            `${pending.options.what}: ${this.#ending.size} workers of PKCS#11 module ${this.path} are still stuck in calls that never returned; no new one starts until one does`,
          ),
        );
        continue;
      }
      const worker = this.#ensureWorker();
      const id = this.#nextId++;
      this.#inFlight = { ...pending, id, timer: undefined };
      worker.postMessage({ ...pending.request, id } satisfies WorkerCall);
      // The call's clock starts once the worker runs it: a starting worker has its own limit.
      if (this.#ready) this.#startClock();
    }
  }

  #startClock(): void {
    const call = this.#inFlight;
    if (call === undefined || call.timer !== undefined) return;
    call.timer = setTimeout(() => this.#timedOut(call.id, call.options.timeoutMs), call.options.timeoutMs);
  }

  #ensureWorker(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const start: WorkerStart = { csrSignerPkcs11Worker: true, modulePath: this.path };
    const worker = new Worker(workerScript(), { workerData: start });
    this.#ready = false;
    this.#starting = setTimeout(() => {
      if (worker !== this.#worker || this.#ready) return;
      this.#failInFlight(
        new Pkcs11Error(
          "Pkcs11Timeout",
          `PKCS#11 module ${this.path} did not load and initialise within ${workerStartTimeoutMs / 1000} s; its worker was restarted`,
        ),
      );
    }, workerStartTimeoutMs);
    worker.on("message", (message: WorkerReply | WorkerReady) => {
      if (worker !== this.#worker) return;
      if ("ready" in message) {
        clearTimeout(this.#starting);
        this.#ready = true;
        this.#startClock();
        return;
      }
      this.#settle(message);
    });
    worker.on("error", (error) => {
      if (worker !== this.#worker) return; // a replaced worker's end is no news
      this.#failInFlight(
        new Pkcs11Error(
          "Pkcs11TokenUnavailable",
          `the PKCS#11 worker for module ${this.path} failed: ${error.message.split("\n")[0]}`,
        ),
      );
    });
    worker.on("exit", () => {
      this.#ending.delete(worker);
      if (worker !== this.#worker) return;
      this.#failInFlight(
        new Pkcs11Error("Pkcs11TokenUnavailable", `the PKCS#11 worker for module ${this.path} exited`),
      );
    });
    // Never keeps the process alive itself: a call's timer (or the start timer) does while one runs.
    // After the listeners: adding a "message" listener refs the worker's port again.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #settle(reply: WorkerReply): void {
    const call = this.#inFlight;
    if (call === undefined || call.id !== reply.id) return; // the answer to a call given up on
    clearTimeout(call.timer);
    this.#inFlight = undefined;
    this.#generation = reply.generation;
    if (reply.ok) {
      call.resolve(reply.value);
    } else {
      call.reject(new Pkcs11Error(reply.reason, reply.message));
      // A module that failed to load is loaded afresh by the next call (perhaps it is installed by then).
      if (reply.reason === "Pkcs11ModuleLoadFailed") this.#replaceWorker();
    }
    this.#next();
  }

  #timedOut(id: number, timeoutMs: number): void {
    const call = this.#inFlight;
    if (call === undefined || call.id !== id) return;
    const seconds = timeoutMs / 1000;
    this.#failInFlight(
      new Pkcs11Error(
        "Pkcs11Timeout",
        `${call.options.what}: the PKCS#11 module did not answer within ${seconds} s (${call.request.op}); its worker was restarted`,
      ),
    );
  }

  /** Fails the call with the worker and replaces the worker; the queue moves on to a new one. */
  #failInFlight(error: Pkcs11Error): void {
    const call = this.#inFlight;
    this.#replaceWorker();
    if (call !== undefined) {
      clearTimeout(call.timer);
      this.#inFlight = undefined;
      call.reject(error);
    }
    this.#next();
  }

  #replaceWorker(): void {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#worker = undefined;
    clearTimeout(this.#starting);
    this.#ready = false;
    this.#epoch++;
    this.#earlierGenerations += this.#generation;
    this.#generation = 0;
    this.#ending.add(worker);
    // Ends once any native call it is stuck in returns ("exit" then forgets it); nothing waits for that.
    void worker.terminate().catch(() => undefined);
  }
}

const workers = new Map<string, ModuleWorker>();

/** The worker of the module at `path` (one per path in this process). */
export function moduleWorker(path: string): ModuleWorker {
  let worker = workers.get(path);
  if (worker === undefined) {
    worker = new ModuleWorker(path);
    workers.set(path, worker);
  }
  return worker;
}

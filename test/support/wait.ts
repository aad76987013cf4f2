/** Polling, for tests that wait on a real API server, a controller or a process to reach a state. */

export interface WaitOptions {
  /** Time between probes (default 50 ms). */
  intervalMs?: number;
  /** Asked before every probe: a reason to give up at once (a process the wait depends on exited). */
  giveUpIf?: () => string | undefined;
}

/**
 * Polls `probe` until it returns something other than undefined, and returns that. A probe that
 * throws is asked again; the last error is in the timeout's message.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  { intervalMs = 50, giveUpIf }: WaitOptions = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const reason = giveUpIf?.();
    if (reason !== undefined) throw new Error(`${reason} while waiting for ${what}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`,
      );
    }
    await delay(intervalMs);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `promise` has settled once everything already runnable has run (20 turns of the event loop). */
export async function settledNow(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

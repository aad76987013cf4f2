/**
 * The one time source: everything that reads the time or waits takes a Clock, so tests drive time
 * by hand (test/support/manual-clock.ts) instead of sleeping. It lives in src/api, the layer with no
 * dependencies, because src/pki and src/policy need it too and must not import src/kube.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch, as Date.now(). */
  now(): number;
  /** Runs `callback` once after `milliseconds`; a pending timer never keeps the process alive. */
  setTimeout(callback: () => void, milliseconds: number): { cancel(): void };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, milliseconds) => {
    const timer = setTimeout(callback, milliseconds);
    timer.unref?.();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** The clock's time as a Date, for what writes timestamps (conditions, certificates, records). */
export function currentDate(clock: Pick<Clock, "now">): Date {
  return new Date(clock.now());
}

/**
 * The error of class `type` that `run` throws. Fails when `run` returns; any other error propagates,
 * so a bug never passes for the refusal a test expects.
 */
export function thrownBy<E extends Error>(type: abstract new (...args: never[]) => E, run: () => unknown): E {
  try {
    run();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name}, but nothing was thrown`);
}

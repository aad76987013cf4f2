/**
 * A startup question to the API server (discovery) asked until it answers, backing off from 0.5 s
 * to 30 s, as the caches list until they can.
 */
import { describeError } from "../kube/client.js";
import type { Logger } from "../logger.js";

export async function askUntilAnswered(
  what: string,
  question: () => Promise<boolean>,
  context: { logger: Logger; stopped: () => boolean },
): Promise<boolean> {
  for (let delay = 500; ; delay = Math.min(delay * 2, 30_000)) {
    try {
      return await question();
    } catch (error) {
      if (context.stopped()) throw error;
      context.logger.warn(`${what} failed; retrying`, { error: describeError(error) });
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
  }
}

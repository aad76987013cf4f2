import type { Logger } from "../../src/logger.js";

/** A Logger that drops every entry, for tests that do not read the log. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  flush: () => undefined,
};

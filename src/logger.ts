/**
 * Structured JSON logs, one object per line on stderr. Callers pass names, reasons and
 * fingerprints, never key material or whole requests: nothing here redacts after the fact.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function jsonLogger(options: { level?: LogLevel; write?: (line: string) => void } = {}): Logger {
  const minimum = levelOrder[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const log =
    (level: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      if (levelOrder[level] < minimum) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields }) + "\n");
    };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
}

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
      write(logLine(new Date().toISOString(), level, message, fields));
    };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
}

/**
 * `{"time":...,"level":...,"msg":...,<fields>}` and a newline: the fields serialized as they are and
 * joined to the head as text, not copied into a new object first (two lines per certificate). A field
 * named like a head key replaces it, as it would in a spread.
 */
export function logLine(
  time: string,
  level: LogLevel,
  message: string,
  fields: Record<string, unknown>,
): string {
  if ("time" in fields || "level" in fields || "msg" in fields)
    return JSON.stringify({ time, level, msg: message, ...fields }) + "\n";
  const head = `{"time":${JSON.stringify(time)},"level":"${level}","msg":${JSON.stringify(message)}`;
  const rest = JSON.stringify(fields);
  return rest.length > 2 ? `${head},${rest.slice(1)}\n` : `${head}}\n`;
}

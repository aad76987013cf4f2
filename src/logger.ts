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
  /** Writes out at once what the logger holds back (see jsonLogger's `holdInfo`): before an action its line must precede. */
  flush(): void;
}

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Held debug and info lines are written out at once past this many characters. */
const maximumHeldCharacters = 64 * 1024;

/**
 * With `holdInfo`, debug and info lines are held and written together: at the end of the event
 * loop's turn, on `flush()`, or before the next warn or error line, which is never held. One write
 * (a system call: stderr to a file or pipe is synchronous) per turn instead of one per line; the
 * controller logs two lines per certificate and flushes the first before the certificate is written.
 */
export function jsonLogger(
  options: { level?: LogLevel; write?: (text: string) => void; holdInfo?: boolean } = {},
): Logger {
  const minimum = levelOrder[options.level ?? "info"];
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  let held = "";
  let flushScheduled = false;
  const flush = (): void => {
    if (held === "") return;
    const text = held;
    held = "";
    write(text);
  };
  const flushAtTurnEnd = (): void => {
    flushScheduled = false;
    flush();
  };
  const log =
    (level: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      if (levelOrder[level] < minimum) return;
      const line = logLine(new Date().toISOString(), level, message, fields);
      if (!options.holdInfo || levelOrder[level] >= levelOrder.warn) {
        flush(); // in order: what was held before this line
        write(line);
        return;
      }
      held += line;
      if (held.length > maximumHeldCharacters) flush();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAtTurnEnd);
      }
    };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    flush,
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

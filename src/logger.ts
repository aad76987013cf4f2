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
  /** Writes out at once what the logger holds back (see jsonLogger's `holdInfoMs`): before an action its line must precede. */
  flush(): void;
}

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Held debug and info lines are written out at once when more than this many characters are held. */
const maximumHeldCharacters = 64 * 1024;

/**
 * With `holdInfoMs`, debug and info lines are held and written together: on `flush()`, before the
 * next warn or error line (never held), once more than 64 KiB is held, or at most `holdInfoMs` after one is held. The
 * controller logs two lines per certificate and flushes the first before the certificate is written:
 * the second goes out with the next certificate's first, one write (a system call: stderr to a file
 * or pipe is synchronous) per certificate instead of two while they come faster than one per holdInfoMs. (klog, which
 * kube-controller-manager logs through, holds lines for up to 5 s only when it writes to a file; to
 * stderr it writes each at once, but logs no line per certificate at the default verbosity.)
 */
export function jsonLogger(
  options: { level?: LogLevel; write?: (text: string) => void; holdInfoMs?: number } = {},
): Logger {
  const minimum = levelOrder[options.level ?? "info"];
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const holdMs = options.holdInfoMs ?? 0;
  let held = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = (): void => {
    if (held === "") return;
    const text = held;
    held = "";
    write(text);
  };
  // A flush leaves the timer running: a line held after it goes out with the timer's end, sooner
  // than holdInfoMs, and the certificate after a flush costs no timer of its own.
  const flushOnTime = (): void => {
    timer = undefined;
    flush();
  };
  const log =
    (level: LogLevel) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      if (levelOrder[level] < minimum) return;
      const line = logLine(new Date().toISOString(), level, message, fields);
      if (holdMs <= 0 || levelOrder[level] >= levelOrder.warn) {
        flush(); // in order: what was held before this line
        write(line);
        return;
      }
      held += line;
      if (held.length > maximumHeldCharacters) flush();
      // Unreferenced: held lines never keep the process alive (the CLI flushes on exit).
      else if (timer === undefined) timer = setTimeout(flushOnTime, holdMs).unref();
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

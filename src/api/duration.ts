/**
 * The two duration grammars csr-signer reads. They differ on purpose: Signer specs and the
 * controller's flags use Go's notation, as Kubernetes objects and kube-controller-manager flags do;
 * the offline CA commands also take days and years, the units certificate lifetimes are thought in.
 */

/** A duration that does not follow its grammar; the message shows what would have been accepted. */
export class DurationSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DurationSyntaxError";
  }
}

/**
 * Go durations as Kubernetes writes them, whole hours, minutes and seconds in that order:
 * "24h", "90m", "1h30m", "3600s". Returns seconds. Used by Signer specs and `csr-signer controller` flags.
 */
export function parseGoDuration(text: unknown): number {
  const parts = typeof text === "string" ? /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text) : null;
  if (!parts || text === "") {
    throw new DurationSyntaxError(
      `must be a duration such as "24h", "90m" or "1h30m", got ${JSON.stringify(text)}`,
    );
  }
  const [, h, m, s] = parts;
  return Number(h ?? 0) * 3600 + Number(m ?? 0) * 60 + Number(s ?? 0);
}

/**
 * Go durations down to milliseconds, for timings shorter than a second: "15s", "1m30s", "500ms",
 * "1s500ms" (whole numbers, units in decreasing order). Returns milliseconds. Used by the leader
 * election flags, which kube-controller-manager also takes as Go durations.
 */
export function parseGoDurationMilliseconds(text: unknown): number {
  const parts =
    typeof text === "string" ? /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text) : null;
  if (!parts || text === "") {
    throw new DurationSyntaxError(
      `must be a duration such as "15s", "1m30s" or "500ms", got ${JSON.stringify(text)}`,
    );
  }
  const [, h, m, s, ms] = parts;
  return ((Number(h ?? 0) * 60 + Number(m ?? 0)) * 60 + Number(s ?? 0)) * 1000 + Number(ms ?? 0);
}

const longDurationUnitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 };

/**
 * Durations with days and years, as the offline CA commands (`ca root`, `ca intermediate`, `ca
 * inspect`, `sign`) take them: "600s", "90m", "24h", "30d", "10y" (365 days), or sums like "1h30m",
 * surrounding spaces ignored. Returns seconds.
 */
export function parseLongDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+[smhdy])+$/.test(trimmed)) {
    throw new DurationSyntaxError(
      `cannot read duration "${text}": use a number with s, m, h, d or y, e.g. 24h or 90d`,
    );
  }
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhdy])/g))
    seconds += Number(amount) * longDurationUnitSeconds[unit!]!;
  return seconds;
}

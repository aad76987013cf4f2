/** Durations as operators write them: "600s", "90m", "24h", "30d", "10y", or sums like "1h30m". */
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 };

export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+[smhdy])+$/.test(trimmed)) {
    throw new Error(`cannot read duration "${text}": use a number with s, m, h, d or y, e.g. 24h or 90d`);
  }
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhdy])/g))
    seconds += Number(amount) * unitSeconds[unit!]!;
  return seconds;
}

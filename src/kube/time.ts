/** A time as the Kubernetes API writes it (RFC 3339, whole seconds, UTC): 2026-11-23T12:00:00Z. */
export function kubernetesTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

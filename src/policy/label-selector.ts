import type { LabelSelector } from "../api/signer.js";

/** Whether `labels` satisfy a metav1.LabelSelector (matchLabels and matchExpressions, ANDed). */
export function labelSelectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, expression.key);
    const value = labels[expression.key];
    const values = expression.values ?? [];
    if (expression.operator === "In" && !(present && values.includes(value!))) return false;
    if (expression.operator === "NotIn" && present && values.includes(value!)) return false;
    if (expression.operator === "Exists" && !present) return false;
    if (expression.operator === "DoesNotExist" && present) return false;
  }
  return true;
}

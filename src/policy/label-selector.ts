import type { LabelSelector } from "../api/signer.js";
import { SignerSpecError } from "./signer-spec-error.js";
import { object, stringList } from "./spec-fields.js";

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

/** A metav1.LabelSelector from untyped JSON at `field`; throws SignerSpecError naming the field. */
export function parseLabelSelector(raw: unknown, field: string): LabelSelector {
  const selector = object(raw, field);
  const matchLabels =
    selector.matchLabels === undefined ? undefined : object(selector.matchLabels, `${field}.matchLabels`);
  for (const [key, value] of Object.entries(matchLabels ?? {})) {
    if (typeof value !== "string")
      throw new SignerSpecError(`${field}.matchLabels.${key}`, "must be a string");
  }
  const expressions = selector.matchExpressions === undefined ? [] : selector.matchExpressions;
  if (!Array.isArray(expressions)) throw new SignerSpecError(`${field}.matchExpressions`, "must be a list");
  const matchExpressions = expressions.map((expression, index) => {
    const e = object(expression, `${field}.matchExpressions[${index}]`);
    if (
      typeof e.key !== "string" ||
      !["In", "NotIn", "Exists", "DoesNotExist"].includes(e.operator as string)
    ) {
      throw new SignerSpecError(
        `${field}.matchExpressions[${index}]`,
        "needs a key and an operator In, NotIn, Exists or DoesNotExist",
      );
    }
    return {
      key: e.key,
      operator: e.operator as "In",
      values: stringList(e.values, `${field}.matchExpressions[${index}].values`),
    };
  });
  return {
    ...(matchLabels ? { matchLabels: matchLabels as Record<string, string> } : {}),
    ...(matchExpressions.length ? { matchExpressions } : {}),
  };
}

/**
 * Kubernetes objects as YAML for `kubectl create -f -` (or `apply`). Only what JSON has (objects, arrays,
 * strings, numbers, booleans, null); every string is double-quoted with JSON escapes, which YAML
 * reads the same, so no value can be mistaken for another type or break the document.
 */
export function toYaml(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]\n";
    return value.map((item) => `${indent}- ${toYaml(item, `${indent}  `).trimStart()}`).join("");
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return "{}\n";
    return entries
      .map(([key, item]) => {
        const nested = typeof item === "object" && item !== null && Object.keys(item).length > 0;
        return nested
          ? `${indent}${yamlKey(key)}:\n${toYaml(item, `${indent}  `)}`
          : `${indent}${yamlKey(key)}: ${toYaml(item, indent)}`;
      })
      .join("");
  }
  return `${JSON.stringify(value ?? null)}\n`;
}

/** A key as written: plain when YAML 1.1 cannot read it as anything but that string. */
function yamlKey(key: string): string {
  const plain = /^[A-Za-z][A-Za-z0-9_./-]*$/.test(key) && !/^(y|n|yes|no|true|false|on|off|null)$/i.test(key);
  return plain ? key : JSON.stringify(key);
}

/** Several objects as one multi-document YAML stream. */
export function toYamlDocuments(objects: readonly unknown[]): string {
  return objects.map((object) => `---\n${toYaml(object)}`).join("");
}

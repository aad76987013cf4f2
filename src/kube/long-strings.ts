/**
 * Cuts long string values out of JSON bytes before they are parsed. A CSR's spec.request may carry
 * ~1.5 MB that kube-apiserver stored; parsing it makes JS strings of that size (several per object:
 * the decoded text, the parsed value) that the garbage collector frees late. Cutting at the byte
 * level means such a value never becomes a string at all: it is replaced by a placeholder that
 * records its length. Linear in the input.
 */

const quote = 0x22;
const backslash = 0x5c;
const placeholderPrefix = "\u0000omitted:";

/** The length in bytes of the string value a placeholder stands for; undefined for any other value. */
export function omittedStringBytes(value: unknown): number | undefined {
  if (typeof value !== "string" || !value.startsWith(placeholderPrefix)) return undefined;
  return Number(value.slice(placeholderPrefix.length));
}

/** `json` with every string value (or key) longer than `maxStringBytes` replaced by a placeholder. */
export function cutLongStrings(json: Buffer, maxStringBytes: number): Buffer {
  const parts: Buffer[] = [];
  let copiedUpTo = 0;
  let index = 0;
  while (index < json.length) {
    if (json[index] !== quote) {
      index++;
      continue;
    }
    const start = index;
    index++;
    while (index < json.length && json[index] !== quote) index += json[index] === backslash ? 2 : 1;
    const length = index - start - 1; // bytes between the quotes
    index++; // past the closing quote
    if (length > maxStringBytes) {
      parts.push(json.subarray(copiedUpTo, start));
      // JSON.stringify escapes the NUL: the placeholder parses back to the string above.
      parts.push(Buffer.from(JSON.stringify(`${placeholderPrefix}${length}`)));
      copiedUpTo = Math.min(index, json.length);
    }
  }
  if (parts.length === 0) return json;
  parts.push(json.subarray(copiedUpTo));
  return Buffer.concat(parts);
}

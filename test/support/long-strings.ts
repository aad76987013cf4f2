import { LongStringCutter } from "../../src/kube/long-strings.js";

/** `json` with every string value (or key) longer than `maxStringBytes` replaced by a placeholder. */
export function cutLongStrings(json: Buffer, maxStringBytes: number): Buffer {
  const cutter = new LongStringCutter(maxStringBytes);
  cutter.push(json);
  return Buffer.concat(cutter.take());
}

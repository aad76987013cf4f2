import { DerError, TagClass, UniversalTag, type DerNode } from "../../src/pki/der-reader.js";

/** Reads UTCTime or GeneralizedTime in the Zulu, whole-second forms RFC 5280 requires. */
export function readTime(node: DerNode | undefined, what: string): Date {
  if (!node || node.tagClass !== TagClass.universal) throw new DerError(`${what}: expected a time`);
  const text = String.fromCharCode(...node.value);
  let match: RegExpExecArray | null;
  let year: number;
  if (
    node.tagNumber === UniversalTag.utcTime &&
    (match = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))
  ) {
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (
    node.tagNumber === UniversalTag.generalizedTime &&
    (match = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))
  ) {
    year = Number(match[1]);
  } else {
    throw new DerError(`${what}: malformed time ${JSON.stringify(text.slice(0, 20))}`);
  }
  const [, , month, day, hour, minute, second] = match.map(Number) as number[];
  return new Date(Date.UTC(year, month! - 1, day, hour, minute, second));
}

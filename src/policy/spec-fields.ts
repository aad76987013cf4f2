/**
 * Readers of untyped JSON fields for the Signer spec's validation (signer-spec.ts,
 * certificate-authority-spec.ts, label-selector.ts): each checks one field's type and range and
 * throws a SignerSpecError naming the field.
 */
import { DurationSyntaxError, parseGoDuration } from "../api/duration.js";
import { SignerSpecError } from "./signer-spec-error.js";

/** A Go duration (see parseGoDuration) in seconds; a SignerSpecError naming the field otherwise. */
export function duration(text: unknown, field: string): number {
  try {
    return parseGoDuration(text);
  } catch (error) {
    if (error instanceof DurationSyntaxError) throw new SignerSpecError(field, error.message);
    throw error;
  }
}

type Json = Record<string, unknown>;

export function object(value: unknown, field: string, optional = false): Json {
  if (value === undefined && optional) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new SignerSpecError(field, "must be an object");
  return value as Json;
}

export function stringList(
  value: unknown,
  field: string,
  check?: (item: string, field: string) => void,
): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new SignerSpecError(field, "must be a list of strings");
  return value.map((item, index) => {
    if (typeof item !== "string" || item === "")
      throw new SignerSpecError(`${field}[${index}]`, "must be a non-empty string");
    check?.(item, `${field}[${index}]`);
    return item;
  });
}

export function boolean(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new SignerSpecError(field, "must be true or false");
  return value;
}

export function integer(
  value: unknown,
  field: string,
  fallback: number,
  minimum: number,
  maximum: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < minimum || value > maximum) {
    throw new SignerSpecError(field, `must be an integer from ${minimum} to ${maximum}`);
  }
  return value;
}

// Type and range checks of a stored model config, field by field (browser-safe). A checkpoint's config is input: a
// hand-edited or corrupted `labelSmoothing: -1` or `maxVocab: 1.5` must be an error naming the field, not a model
// that trains or predicts nonsense. The model classes check their own architecture; these rules add the task knobs
// and upper bounds that keep a hostile config from allocating an absurd model.
import type { ModelConfig } from "./task.js";

export class ConfigError extends RangeError {
  /** The config field at fault. */
  readonly field: string;
  constructor(message: string, field: string) {
    super(message);
    this.name = "ConfigError";
    this.field = field;
  }
}

export type FieldRule =
  | { type: "int"; min: number; max: number; optional?: boolean }
  | { type: "number"; min: number; max: number; maxExclusive?: boolean; minExclusive?: boolean; optional?: boolean; nullable?: boolean }
  | { type: "bool"; optional?: boolean }
  | { type: "enum"; values: readonly string[]; optional?: boolean }
  | { type: "string"; optional?: boolean }
  | { type: "strings"; minItems: number; optional?: boolean }
  | { type: "ints"; min: number; max: number; optional?: boolean }
  | { type: "object"; optional?: boolean }
  | { type: "numbers"; nullable?: boolean; optional?: boolean }
  | { type: "list"; optional?: boolean };

/** Shared upper bounds: far above any model here, far below what would exhaust memory while building one. */
export const LIMITS = { width: 65536, layers: 1024, vocab: 10_000_000, length: 1_000_000 } as const;

const int = (min: number, max: number, optional = false): FieldRule => ({ type: "int", min, max, optional });
export const rules = {
  int,
  width: (optional = false): FieldRule => int(1, LIMITS.width, optional),
  layers: (min = 1, optional = false): FieldRule => int(min, LIMITS.layers, optional),
  vocab: (min = 2, optional = false): FieldRule => int(min, LIMITS.vocab, optional),
  length: (min = 1, optional = false): FieldRule => int(min, LIMITS.length, optional),
  /** A probability-like fraction in [0, 1). */
  fraction: (optional = false): FieldRule => ({ type: "number", min: 0, max: 1, maxExclusive: true, optional }),
  number: (min: number, max: number, optional = false): FieldRule => ({ type: "number", min, max, optional }),
  bool: (optional = false): FieldRule => ({ type: "bool", optional }),
  oneOf: (values: readonly string[], optional = false): FieldRule => ({ type: "enum", values, optional }),
  string: (optional = false): FieldRule => ({ type: "string", optional }),
  strings: (minItems = 1, optional = false): FieldRule => ({ type: "strings", minItems, optional }),
  ints: (min: number, max: number, optional = false): FieldRule => ({ type: "ints", min, max, optional }),
  object: (optional = false): FieldRule => ({ type: "object", optional }),
  /** An object mapping names to finite numbers (null allowed when `nullable`: JSON's spelling of NaN). */
  numbers: (nullable = false, optional = false): FieldRule => ({ type: "numbers", nullable, optional }),
  list: (optional = false): FieldRule => ({ type: "list", optional }),
};

function show(v: unknown): string {
  if (v === undefined) return "nothing (field missing)";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function expected(r: FieldRule): string {
  switch (r.type) {
    case "int": return `an integer in [${r.min}, ${r.max}]`;
    case "number": return `a number in ${r.minExclusive ? "(" : "["}${r.min}, ${r.max}${r.maxExclusive ? ")" : "]"}${r.nullable ? " (or null)" : ""}`;
    case "bool": return "true or false";
    case "enum": return `one of ${r.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "string": return "a string";
    case "strings": return `a list of at least ${r.minItems} strings`;
    case "ints": return `a list of integers in [${r.min}, ${r.max}]`;
    case "object": return "an object";
    case "numbers": return `an object of numbers${r.nullable ? " (or null)" : ""}`;
    case "list": return "a list";
  }
}

function ok(r: FieldRule, v: unknown): boolean {
  const inInt = (x: unknown, min: number, max: number) => typeof x === "number" && Number.isInteger(x) && x >= min && x <= max;
  switch (r.type) {
    case "int": return inInt(v, r.min, r.max);
    case "number":
      if (v === null && r.nullable) return true;
      return typeof v === "number" && Number.isFinite(v) && (r.minExclusive ? v > r.min : v >= r.min) && (r.maxExclusive ? v < r.max : v <= r.max);
    case "bool": return typeof v === "boolean";
    case "enum": return typeof v === "string" && r.values.includes(v);
    case "string": return typeof v === "string";
    case "strings": return Array.isArray(v) && v.length >= r.minItems && v.every((x) => typeof x === "string");
    case "ints": return Array.isArray(v) && v.every((x) => inInt(x, r.min, r.max));
    case "object": return typeof v === "object" && v !== null && !Array.isArray(v);
    case "numbers":
      return typeof v === "object" && v !== null && !Array.isArray(v) &&
        Object.values(v).every((x) => (typeof x === "number" && Number.isFinite(x)) || (r.nullable === true && x === null));
    case "list": return Array.isArray(v);
  }
}

/**
 * Throws a ConfigError naming the first field of `config` that breaks its rule (missing fields break non-optional
 * rules). `what` names the kind of field in the message ("config field", "trainer state field").
 */
export function checkConfigFields(task: string, config: ModelConfig, fieldRules: Record<string, FieldRule>, what = "config field"): void {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ConfigError(`${task}: ${what.replace(/ field$/, "")} must be an object, got ${show(config)}`, "config");
  }
  for (const [field, r] of Object.entries(fieldRules)) {
    const has = Object.prototype.hasOwnProperty.call(config, field);
    const v = has ? config[field] : undefined;
    if (v === undefined && r.optional) continue;
    if (!ok(r, v)) throw new ConfigError(`${task}: ${what} "${field}" must be ${expected(r)}, got ${show(v)}`, field);
  }
}

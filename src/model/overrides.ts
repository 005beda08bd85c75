// A run's configuration is a flat record of known keys: defaults, then a JSON config file,
// then `--set key=value` overrides. Every key is checked against a schema, so a typo fails
// loudly (with the nearest known key) instead of silently training the wrong model.
//
// yargs-parser splits the `key=value` words (last one wins, `=` inside the value kept); the
// values stay strings there and are converted here by the schema, because yargs-parser's own
// coercion would turn `causal=maybe` into false and `n_layer=0x10` into 16.
import { readFile } from 'node:fs/promises';
import yargsParser from 'yargs-parser';
import { HlmError } from '../errors.js';

export type FieldType = 'int' | 'number' | 'boolean' | 'string' | 'enum';

export interface FieldSpec {
  type: FieldType;
  /** The allowed strings of an 'enum'. */
  values?: readonly string[];
  /** Whether null is a legal value (`--set key=null`). */
  nullable?: boolean;
  /** Bounds of an 'int' or 'number': min and max inclusive, exclusiveMin exclusive. */
  min?: number;
  exclusiveMin?: number;
  max?: number;
}

export type ConfigSchema = Readonly<Record<string, FieldSpec>>;
export type ConfigValue = number | boolean | string | null;
export type ConfigRecord = Record<string, ConfigValue>;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known name nearest to `key`, when it is near enough to be a typo of it. */
export function nearestName(key: string, known: readonly string[]): string | undefined {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function unknownKey(key: string, schema: ConfigSchema, where: string): HlmError {
  const known = Object.keys(schema).sort();
  const best = nearestName(key, known);
  const hint = best ? ` (did you mean ${best}?)` : '';
  return new HlmError(`${where}: unknown key '${key}'${hint}; known keys: ${known.join(', ')}`);
}

/** The field's type in words ("an integer", "one of a|b"), without its range. */
function describeType(spec: FieldSpec): string {
  const base =
    spec.type === 'enum'
      ? `one of ${(spec.values ?? []).join('|')}`
      : spec.type === 'int'
        ? 'an integer'
        : `a ${spec.type}`;
  return spec.nullable ? `${base} or null` : base;
}

/** The field's type and range in words: "a positive integer", "a number ≥ 0", "a number in [0, 1]". */
export function describeField(spec: FieldSpec): string {
  const { min, exclusiveMin: xmin, max } = spec;
  if ((spec.type !== 'int' && spec.type !== 'number') || (min === undefined && xmin === undefined && max === undefined))
    return describeType(spec);
  const int = spec.type === 'int';
  let base: string;
  if (max === undefined && int && min === 1) base = 'a positive integer';
  else if (max === undefined && int && min === 0) base = 'a non-negative integer';
  else if (max === undefined && !int && xmin === 0 && min === undefined) base = 'a positive number';
  else {
    const what = int ? 'an integer' : 'a number';
    const low = min !== undefined ? `[${min}` : xmin !== undefined ? `(${xmin}` : undefined;
    if (low !== undefined && max !== undefined) base = `${what} in ${low}, ${max}]`;
    else if (max !== undefined) base = `${what} ≤ ${max}`;
    else base = min !== undefined ? `${what} ≥ ${min}` : `${what} > ${xmin}`;
  }
  return spec.nullable ? `${base} or null` : base;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The finite number a text spells in decimal notation (no hex, no Infinity, blanks around allowed), or undefined. */
export function numberFromText(text: string): number | undefined {
  const v = Number(text);
  return NUMBER.test(text.trim()) && Number.isFinite(v) ? v : undefined;
}

/**
 * What is wrong with a value for a field, or undefined when nothing is: the field's type in words when the value has
 * the wrong type, its type and range when it is out of range.
 */
export function fieldProblem(value: unknown, spec: FieldSpec): string | undefined {
  if (value === null) return spec.nullable ? undefined : describeType(spec);
  switch (spec.type) {
    case 'int':
    case 'number': {
      const typed =
        typeof value === 'number' && (spec.type === 'int' ? Number.isSafeInteger(value) : Number.isFinite(value));
      if (!typed) return describeType(spec);
      const ok =
        (spec.min === undefined || value >= spec.min) &&
        (spec.exclusiveMin === undefined || value > spec.exclusiveMin) &&
        (spec.max === undefined || value <= spec.max);
      return ok ? undefined : describeField(spec);
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : describeType(spec);
    case 'string':
      return typeof value === 'string' ? undefined : describeType(spec);
    case 'enum':
      return typeof value === 'string' && (spec.values ?? []).includes(value) ? undefined : describeType(spec);
  }
}

/** The typed value a text stands for under a field (a number, a boolean, null), or the text itself. */
export function valueFromText(text: string, spec: FieldSpec): unknown {
  if (spec.nullable && text === 'null') return null;
  if (spec.type === 'int' || spec.type === 'number') return numberFromText(text) ?? text;
  if (spec.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  return text;
}

/** Convert the text of an override to the schema's type, checking it. */
function fromText(key: string, text: string, spec: FieldSpec, where: string): ConfigValue {
  const value = valueFromText(text, spec);
  const problem = fieldProblem(value, spec);
  if (problem) throw new HlmError(`${where} ${key}=${text}: ${key} must be ${problem}`);
  return value as ConfigValue;
}

/** Check one value (from JSON or converted text) against its field's type and range. */
export function checkValue(key: string, value: unknown, spec: FieldSpec, where: string): ConfigValue {
  const problem = fieldProblem(value, spec);
  if (problem) throw new HlmError(`${where}: ${key} must be ${problem}, got ${JSON.stringify(value)}`);
  return value as ConfigValue;
}

function specOf(key: string, schema: ConfigSchema, where: string): FieldSpec {
  if (!Object.prototype.hasOwnProperty.call(schema, key)) throw unknownKey(key, schema, where);
  return schema[key];
}

/** Check a whole object (e.g. a parsed config file): every key known, every value typed. */
export function checkRecord(obj: unknown, schema: ConfigSchema, where: string): ConfigRecord {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new HlmError(`${where}: expected a JSON object of settings`);
  const out: ConfigRecord = {};
  for (const [key, value] of Object.entries(obj)) out[key] = checkValue(key, value, specOf(key, schema, where), where);
  return out;
}

/** Parse `key=value` words (the values of repeated `--set` flags) into typed settings. */
export function parseOverrides(sets: readonly string[], schema: ConfigSchema, where = '--set'): ConfigRecord {
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new HlmError(`${where}: expected key=value, got '${s}'`);
    const key = s.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(key))
      throw new HlmError(`${where}: '${key}' is not a setting name (in '${s}')`);
    specOf(key, schema, where);
  }
  const parsed = yargsParser(
    sets.map((s) => `--${s}`),
    {
      string: Object.keys(schema),
      configuration: {
        'camel-case-expansion': false,
        'dot-notation': false,
        'parse-numbers': false,
        'parse-positional-numbers': false,
        'boolean-negation': false,
        'duplicate-arguments-array': false,
        'short-option-groups': false,
      },
    },
  );
  const out: ConfigRecord = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key === '_' || key === '--') continue;
    out[key] = fromText(key, String(value), specOf(key, schema, where), where);
  }
  return out;
}

/** A copy of `base` with the `key=value` overrides applied; unknown keys and bad values are refused. */
export function applyOverrides<T extends object>(
  base: T,
  sets: readonly string[],
  schema: ConfigSchema,
  where = '--set',
): T {
  return { ...base, ...parseOverrides(sets, schema, where) };
}

/** Read a JSON config file whose keys must all be in the schema. */
export async function readConfigFile(path: string, schema: ConfigSchema): Promise<ConfigRecord> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new HlmError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HlmError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return checkRecord(json, schema, `config file ${path}`);
}

/** defaults ← config file ← overrides, each layer checked against the schema. */
export async function resolveSettings<T extends object>(
  defaults: T,
  schema: ConfigSchema,
  file?: string,
  sets: readonly string[] = [],
): Promise<T> {
  const fromFile = file ? await readConfigFile(file, schema) : {};
  return applyOverrides({ ...defaults, ...fromFile }, sets, schema);
}

// A validator for the small part of JSON Schema that hlm.bench.schema.json uses: type (a name
// or a list of names, "integer" and "null" included), enum, required, properties,
// additionalProperties (false or a schema), items and minimum. Any other keyword is refused
// when the schema is loaded, so the schema cannot silently say more than is checked.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HlmError } from '../errors.js';

export interface Schema {
  type?: string | string[];
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minimum?: number;
}

const CHECKED = new Set(['type', 'enum', 'required', 'properties', 'additionalProperties', 'items', 'minimum']);
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description']);
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

/** Refuse keywords this validator does not implement, anywhere in the schema. */
export function assertSupported(schema: Schema, path = '#'): void {
  for (const [k, v] of Object.entries(schema)) {
    if (ANNOTATIONS.has(k)) continue;
    if (!CHECKED.has(k)) throw new HlmError(`schema ${path}: keyword "${k}" is not supported by src/bench/schema.ts`);
    if (k === 'type')
      for (const t of ([] as string[]).concat(v as string | string[]))
        if (!TYPES.has(t)) throw new HlmError(`schema ${path}: unknown type "${t}"`);
  }
  for (const [k, sub] of Object.entries(schema.properties ?? {})) assertSupported(sub, `${path}/properties/${k}`);
  if (typeof schema.additionalProperties === 'object')
    assertSupported(schema.additionalProperties, `${path}/additionalProperties`);
  if (schema.items) assertSupported(schema.items, `${path}/items`);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function matchesType(v: unknown, t: string): boolean {
  if (t === 'integer') return typeof v === 'number' && Number.isInteger(v);
  if (t === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeOf(v) === t;
}

/** Every violation, as "path: message" (empty when the value is valid). */
export function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type);
    if (!types.some((t) => matchesType(value, t)))
      return [
        `${path}: expected ${types.join(' or ')}, got ${typeOf(value) === 'number' ? String(value) : typeOf(value)}`,
      ];
  }
  if (schema.enum && !schema.enum.some((e) => e === value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (schema.minimum !== undefined && typeof value === 'number' && !(value >= schema.minimum))
    errors.push(`${path}: ${value} is below the minimum ${schema.minimum}`);
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in obj)) errors.push(`${path}: missing required "${k}"`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = schema.properties?.[k];
      if (sub) errors.push(...validate(sub, v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property "${k}"`);
      else if (typeof schema.additionalProperties === 'object')
        errors.push(...validate(schema.additionalProperties, v, `${path}.${k}`));
    }
  }
  if (Array.isArray(value) && schema.items)
    value.forEach((v, i) => errors.push(...validate(schema.items!, v, `${path}[${i}]`)));
  return errors;
}

const loaded = new Map<string, Schema>();

/** A schema file (a URL, e.g. beside the calling module), read and checked once. */
export function loadSchema(url: URL): Schema {
  let schema = loaded.get(url.href);
  if (!schema) {
    schema = JSON.parse(readFileSync(fileURLToPath(url), 'utf8')) as Schema;
    assertSupported(schema);
    loaded.set(url.href, schema);
  }
  return schema;
}

/** hlm.bench/1, from the JSON file beside this module (copied into the build by scripts/build.mjs). */
export function benchSchema(): Schema {
  return loadSchema(new URL('./hlm.bench.schema.json', import.meta.url));
}

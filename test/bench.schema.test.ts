// The validator for hlm.bench.schema.json's subset of JSON Schema, and the schema itself.
import { assertSupported, benchSchema, validate, type Schema } from '../src/bench/schema.js';
import { syntheticRecord } from './helpers/bench-records.js';

test('type: a name or a list of names, integer and null included; NaN is not a number', () => {
  expect(validate({ type: 'string' }, 'x')).toEqual([]);
  expect(validate({ type: 'string' }, 3)).toEqual(['$: expected string, got 3']);
  expect(validate({ type: ['number', 'null'] }, null)).toEqual([]);
  expect(validate({ type: ['number', 'null'] }, 2.5)).toEqual([]);
  expect(validate({ type: ['number', 'null'] }, 'a')).toHaveLength(1);
  expect(validate({ type: 'number' }, NaN)).toHaveLength(1);
  expect(validate({ type: 'integer' }, 3)).toEqual([]);
  expect(validate({ type: 'integer' }, 3.5)).toHaveLength(1);
  expect(validate({ type: 'array' }, [])).toEqual([]);
  expect(validate({ type: 'object' }, [])).toHaveLength(1);
  expect(validate({ type: 'object' }, null)).toHaveLength(1);
});

test('required, properties, additionalProperties (false or a schema), enum, items, minimum', () => {
  const s: Schema = {
    type: 'object',
    required: ['a', 'b'],
    additionalProperties: false,
    properties: {
      a: { enum: ['x', null] },
      b: { type: 'array', items: { type: 'integer', minimum: 0 } },
      c: { type: 'object', additionalProperties: { type: 'boolean' } },
    },
  };
  expect(validate(s, { a: 'x', b: [0, 2], c: { k: true } })).toEqual([]);
  expect(validate(s, { a: null, b: [] })).toEqual([]);
  expect(validate(s, { b: [] })).toEqual(['$: missing required "a"']);
  expect(validate(s, { a: 'y', b: [] })).toEqual(['$.a: "y" is not one of ["x",null]']);
  expect(validate(s, { a: 'x', b: [1, -1, 2.5] })).toEqual([
    '$.b[1]: -1 is below the minimum 0',
    '$.b[2]: expected integer, got 2.5',
  ]);
  expect(validate(s, { a: 'x', b: [], d: 1 })).toEqual(['$: unexpected property "d"']);
  expect(validate(s, { a: 'x', b: [], c: { k: 1 } })).toEqual(['$.c.k: expected boolean, got 1']);
  // minimum ignores non-numbers (with a type list, null passes)
  expect(validate({ type: ['number', 'null'], minimum: 0 }, null)).toEqual([]);
});

test('a schema using a keyword the validator does not implement is refused', () => {
  expect(() =>
    assertSupported({ type: 'object', properties: { a: { type: 'string', pattern: '^x' } as Schema } }),
  ).toThrow(/#\/properties\/a: keyword "pattern" is not supported/);
  expect(() => assertSupported({ type: 'strnig' })).toThrow(/unknown type "strnig"/);
  expect(() => assertSupported({ title: 't', description: 'd', type: 'string' } as Schema)).not.toThrow();
});

test('hlm.bench.schema.json loads, accepts a complete record and an error record, and names what is wrong', () => {
  const schema = benchSchema();
  expect(validate(schema, syntheticRecord())).toEqual([]);
  const failed = {
    ...syntheticRecord(),
    status: 'error',
    error: 'GPU out of memory',
    latency_ms: null,
    gpu_ms: null,
    throughput: null,
    check: null,
  };
  expect(validate(schema, failed)).toEqual([]);
  const { gpu: _gpu, ...missing } = syntheticRecord();
  expect(validate(schema, missing)).toContain('$: missing required "gpu"');
  expect(validate(schema, { ...syntheticRecord(), suite: 'disk' })).toEqual([
    '$.suite: "disk" is not one of ["kernel","train","infer"]',
  ]);
  const bad = syntheticRecord();
  (bad.latency_ms as { n: number }).n = 0;
  expect(validate(schema, bad)).toEqual(['$.latency_ms.n: 0 is below the minimum 1']);
});

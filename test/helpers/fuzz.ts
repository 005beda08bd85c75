// Property-based fuzzing of hlm's file readers (fast-check). Every generated input is written into a
// fresh directory and read; the outcome must be a success or an HlmError whose message names the
// input, within a time limit, and afterwards the directory must hold the inputs and nothing else.
// Runs: HLM_FUZZ_RUNS (default 1,000 per reader). A failure prints fast-check's seed and path;
// replay it with HLM_FUZZ_SEED=<seed> HLM_FUZZ_PATH=<path>.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { HlmError } from '../../src/errors.js';

export { fc };

export const FUZZ_RUNS = Number(process.env.HLM_FUZZ_RUNS ?? 1000);

/** jest's limit for one reader's property: generous per run (a loaded 2-core machine), never below two minutes. */
export const FUZZ_TIMEOUT_MS = Math.max(120_000, FUZZ_RUNS * 100);

/** A reader that does not finish in this long on a small input hangs. */
const TIME_LIMIT_MS = 10_000;

/** fast-check's settings for one reader's property. */
export function fuzzParameters<T>(): fc.Parameters<T> {
  const seed = process.env.HLM_FUZZ_SEED;
  const path = process.env.HLM_FUZZ_PATH;
  return {
    numRuns: FUZZ_RUNS,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {}),
    endOnFailure: true,
    // fast-check's own report prints every byte of a counterexample; seed and path replay it exactly.
    reporter: (run) => {
      if (!run.failed) return;
      const example = fc.stringify(run.counterexample);
      throw new Error(
        `Property failed after ${run.numRuns} tests: replay with HLM_FUZZ_SEED=${run.seed} ` +
          `HLM_FUZZ_PATH=${run.counterexamplePath}\nCounterexample (${example.length} characters): ` +
          `${example.slice(0, 1500)}${example.length > 1500 ? ' …' : ''}\nGot error: ${String(run.errorInstance)}`,
        { cause: run.errorInstance },
      );
    },
  };
}

/** Files of one case: path (relative to the case's directory, '/' for subfolders) → contents. */
export type Files = Record<string, string | Uint8Array>;

/** How a case ended; tallied to show the suite exercised both outcomes. */
export type Outcome = 'ok' | 'error';

/**
 * Writes `files` into a fresh directory, runs `read(dir)` and checks the outcome: success, or an HlmError whose
 * message contains `mention(dir)` (the file or directory it read). Anything else, a time-out, or a file left behind
 * that is not an input fails.
 */
export async function readCase(
  root: string,
  files: Files,
  read: (dir: string) => unknown,
  mention: (dir: string) => string,
): Promise<Outcome> {
  const dir = mkdtempSync(join(root, 'case-'));
  try {
    for (const [name, data] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), data);
    }
    const before = listing(dir);
    let outcome: Outcome = 'ok';
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(() => read(dir)),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result after ${TIME_LIMIT_MS} ms (a hang?)`)), TIME_LIMIT_MS);
        }),
      ]);
    } catch (err) {
      if (!(err instanceof HlmError)) throw err;
      const want = mention(dir);
      if (!err.message.includes(want))
        throw new Error(`HlmError does not name ${want}: ${err.message}`, { cause: err });
      outcome = 'error';
    } finally {
      clearTimeout(timer);
    }
    const after = listing(dir);
    if (after.join('\n') !== before.join('\n'))
      throw new Error(`the reader left files behind: ${after.filter((f) => !before.includes(f)).join(', ')}`);
    return outcome;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every file and folder under `dir`, relative, sorted. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      out.push(relative(dir, join(d, e.name)) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(join(d, e.name));
    }
  };
  walk(dir);
  return out.sort();
}

/** A scratch root for one fuzz file's cases. */
export function fuzzRoot(name: string): { root: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), `hlm-fuzz-${name}-`));
  return { root, done: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * Counts of a reader's outcomes. check() asserts both occurred (else the generators exercise one path only);
 * HLM_FUZZ_VERBOSE=1 prints them.
 */
export class Tally {
  ok = 0;
  error = 0;

  constructor(readonly reader: string) {}

  add(outcome: Outcome): void {
    this[outcome]++;
  }

  check(): void {
    if (process.env.HLM_FUZZ_VERBOSE) process.stderr.write(`${this.reader}: ${this.ok} read, ${this.error} refused\n`);
    expect(this.ok).toBeGreaterThan(0);
    expect(this.error).toBeGreaterThan(0);
  }
}

// ---- Generators --------------------------------------------------------------------------------------------------

/** Texts that break numbers, counts and fields: huge, negative, not finite, not numbers, separators, odd Unicode. */
export const badToken = fc.constantFrom(
  'NaN',
  'Infinity',
  '-inf',
  '1e999',
  '-1e999',
  '',
  ' ',
  '0x10',
  '１',
  '\u0000',
  '\ufeff',
  '-',
  '.',
  '1.2.3',
  '99999999999999999999999',
  '9007199254740993',
  '-1',
  '0',
  '-0',
  '4294967296',
  '2147483648',
  '2147483647',
  'null',
  'true',
  '"x"',
  '[]',
  '{}',
  '\\',
  '\r',
  '\n',
  '\t',
  '\t\t',
  '\u2028',
  '😀',
  '\ud800',
);

/** Byte sequences that are not UTF-8: a lone continuation, a cut sequence, an overlong, a surrogate, 0xff. */
export const badUtf8 = fc.constantFrom(
  Uint8Array.of(0x80),
  Uint8Array.of(0xc3),
  Uint8Array.of(0xc3, 0x28),
  Uint8Array.of(0xc0, 0x80),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xf0, 0x9f, 0x98),
  Uint8Array.of(0xff),
  Uint8Array.of(0xf5, 0x80, 0x80, 0x80),
);

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'token'; at: number; token: string }
  | { kind: 'line'; at: number; op: 'duplicate' | 'drop' | 'swap' }
  | { kind: 'utf8'; at: number; bytes: Uint8Array };

const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at }),
  fc.record({ kind: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at, len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('token' as const), at, token: badToken }),
  fc.record({
    kind: fc.constant('line' as const),
    at,
    op: fc.constantFrom<('duplicate' | 'drop' | 'swap')[]>('duplicate', 'drop', 'swap'),
  }),
  fc.record({ kind: fc.constant('utf8' as const), at, bytes: badUtf8 }),
);

function bytesOf(x: string | Uint8Array): Buffer {
  return typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x);
}

/** Start and end of the line around byte i. */
function lineAround(b: Buffer, i: number): [number, number] {
  const s = b.lastIndexOf(10, i - 1) + 1;
  const e = b.indexOf(10, i);
  return [s, e < 0 ? b.length : e + 1];
}

/** Start and end of the field (run of bytes without blank, tab, newline, comma, quote or colon) around byte i. */
function fieldAround(b: Buffer, i: number): [number, number] {
  const sep = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 44 || c === 34 || c === 58;
  let s = i;
  while (s > 0 && !sep(b[s - 1])) s--;
  let e = i;
  while (e < b.length && !sep(b[e])) e++;
  return [s, e];
}

function apply(b: Buffer, m: Mutation): Buffer {
  const i = Math.floor(m.at * (b.length + 1));
  switch (m.kind) {
    case 'truncate':
      return b.subarray(0, i);
    case 'flip': {
      if (b.length === 0) return b;
      const c = Buffer.from(b);
      c[Math.min(i, c.length - 1)] ^= 1 << m.bit;
      return c;
    }
    case 'insert':
    case 'utf8':
      return Buffer.concat([b.subarray(0, i), m.bytes, b.subarray(i)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, i), b.subarray(i + m.len)]);
    case 'token': {
      const [s, e] = fieldAround(b, Math.min(i, b.length));
      return Buffer.concat([b.subarray(0, s), Buffer.from(m.token, 'utf8'), b.subarray(e)]);
    }
    case 'line': {
      if (b.length === 0) return b;
      const [s, e] = lineAround(b, Math.min(i, b.length - 1));
      const line = b.subarray(s, e);
      if (m.op === 'duplicate') return Buffer.concat([b.subarray(0, e), line, b.subarray(e)]);
      if (m.op === 'drop') return Buffer.concat([b.subarray(0, s), b.subarray(e)]);
      if (e >= b.length) return b;
      const [s2, e2] = lineAround(b, e);
      return Buffer.concat([b.subarray(0, s), b.subarray(s2, e2), line, b.subarray(e2)]);
    }
  }
}

/** A valid file from `valid`, with 0 to 4 mutations (truncations, bit flips, bad numbers and UTF-8, lines moved). */
export function mutated(valid: fc.Arbitrary<string | Uint8Array>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.oneof(fc.constant([]), fc.array(mutation, { minLength: 1, maxLength: 4 })))
    .map(([v, ms]) => ms.reduce((b, m) => apply(b, m), bytesOf(v)));
}

/** Raw bytes: random, or random text (a reader must reject them cleanly). */
export const rawBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'binary', maxLength: 512 }).map((s) => Buffer.from(s, 'utf8')),
);

/**
 * The file as stored: plain most often, or gzip-compressed, possibly cut short or with a flipped byte (for readers
 * that accept .gz).
 */
export function maybeGzip(content: fc.Arbitrary<Buffer>): fc.Arbitrary<{ bytes: Buffer; gz: boolean }> {
  return fc.tuple(content, fc.nat(9), at).map(([b, how, where]) => {
    if (how < 6) return { bytes: b, gz: false };
    const z = gzipSync(b);
    const i = Math.floor(where * z.length);
    if (how === 6) return { bytes: z.subarray(0, i), gz: true };
    if (how === 7 && z.length > 0) {
      const c = Buffer.from(z);
      c[i] ^= 0x20;
      return { bytes: c, gz: true };
    }
    return { bytes: z, gz: true };
  });
}

/** A word: ASCII letters mostly, sometimes any Unicode (no blanks or newlines). */
export const word = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-z][a-z0-9'.-]{0,8}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }).filter((s) => !/\s/.test(s)) },
);

/** A float32 value written as text, as embedding files hold them. */
export const floatText = fc
  .float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 })
  .map((v) => String(Math.fround(v)));

/** JSON values that break a field: wrong types, huge, negative, fractional, empty. */
export const badJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, '', 'x', -1, 0, 1.5, 1e308, -1e308, 2 ** 53, [], {}, [-1, 2 ** 40], '1e999'),
  fc.constantFrom(2 ** 16, 2 ** 20, 2 ** 24, 2 ** 30, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 1e9, 1e12, 3, 7, 64),
  fc.integer({ min: -2, max: 2 ** 31 }),
  fc.jsonValue({ maxDepth: 2 }),
);

type JsonOp = { path: number[]; op: 'set' | 'delete' | 'add'; value: unknown; key: string };

/** The container and key at a path of fractions (each picks one child), or undefined past a leaf. */
function walk(
  doc: unknown,
  path: number[],
): { parent: Record<string, unknown> | unknown[]; key: string | number } | undefined {
  let parent: unknown = undefined;
  let key: string | number = '';
  let node = doc;
  for (const f of path) {
    if (node === null || typeof node !== 'object') break;
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (!keys.length) break;
    parent = node;
    key = keys[Math.floor(f * keys.length)];
    node = (node as Record<string | number, unknown>)[key];
  }
  return parent === undefined ? undefined : { parent: parent as Record<string, unknown>, key };
}

function applyJson(doc: unknown, m: JsonOp): unknown {
  // A copy: fast-check hands out one instance of a constant ([] or {}) to every case that draws it.
  const value = structuredClone(m.value);
  const at = walk(doc, m.path);
  if (!at) return m.op === 'set' ? value : doc;
  const { parent, key } = at;
  if (m.op === 'set') (parent as Record<string | number, unknown>)[key] = value;
  else if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
  } else if (!Array.isArray(parent)) parent[m.key] = value;
  else parent.push(value);
  return doc;
}

const jsonOp: fc.Arbitrary<JsonOp> = fc.record({
  path: fc.array(at, { minLength: 1, maxLength: 4 }),
  op: fc.constantFrom<JsonOp['op'][]>('set', 'set', 'delete', 'add'),
  value: badJson,
  key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', ''), fc.string({ maxLength: 8 })),
});

/** A valid JSON document with 0 to 3 structural changes (a value replaced, a key removed, one added). */
export function jsonMutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(valid, fc.oneof(fc.constant([]), fc.array(jsonOp, { minLength: 1, maxLength: 3 })))
    .map(([v, ops]) => ops.reduce((d, op) => applyJson(d, op), structuredClone(v)));
}

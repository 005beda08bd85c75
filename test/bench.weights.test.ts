// `hlm bench --suite infer --weights`: the tests repeated per weight format (packed ones named in their params,
// f32 ones unchanged so that PyTorch's records still match them), a packed test's record with its weights and
// its float64 check, the flag's errors, and bench/torch_bench.py skipping the formats it cannot run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchSchema, validate } from '../src/bench/schema.js';
import type { BenchRecord } from '../src/bench/record.js';
import { preset } from '../src/model/config.js';
import { paramLayout } from '../src/model/params.js';
import { weightBytes, weightBytesPerPass } from '../src/model/quantize.js';
import { hlm, repoRoot } from './helpers/cli.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-bench-weights-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('--list: the infer tests once per format, packed ones with weights in their params', () => {
  const r = hlm(['bench', '--suite', 'infer', '--quick', '--list', '--weights', 'f32,q4']);
  expect(r.status).toBe(0);
  const tests = lines(r.stdout);
  expect(tests).toHaveLength(8);
  expect(tests.slice(0, 4).every((t) => t.params.weights === undefined)).toBe(true);
  expect(tests.slice(4).map((t) => t.params.weights)).toEqual(['q4', 'q4', 'q4', 'q4']);
  expect(tests[4]).toEqual({ ...tests[0], params: { ...tests[0].params, weights: 'q4' } });
});

test('--weights refuses an unknown format, and a run without the infer suite', () => {
  const bad = hlm(['bench', '--suite', 'infer', '--quick', '--list', '--weights', 'f32,q5']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/--weights: unknown format "q5"; formats: f32, f16, int8, q4/);
  const kernel = hlm(['bench', '--suite', 'kernel', '--quick', '--list', '--weights', 'int8']);
  expect(kernel.status).toBe(1);
  expect(kernel.stderr).toMatch(/--weights int8 applies to the infer suite/);
});

test('an int8 prefill: the record carries the format and bytes, and passes its float64 check', () => {
  const run = (weights: string) => {
    const r = hlm(
      ['bench', '--suite', 'infer', '--quick', '--filter', 'prefill', '--reps', '1', '--warmup', '0'].concat([
        '--weights',
        weights,
      ]),
      {},
      600_000,
    );
    expect(r.status).toBe(0);
    const [rec] = lines(r.stdout) as BenchRecord[];
    expect(validate(benchSchema(), rec)).toEqual([]);
    return rec;
  };
  const rec = run('int8');
  expect(rec.params.weights).toBe('int8');
  expect(rec.check?.ok).toBe(true);
  expect(rec.check?.reference).toMatch(/int8 weights dequantized/);
  const w = rec.weights!;
  expect(w.format).toBe('int8');
  // The tiny preset: 3.2 M embedding weights dominate; int8 takes a little over a byte each, f32 four.
  expect(w.bytes).toBeGreaterThan(3.2e6);
  expect(w.bytes).toBeLessThan(4e6);
  const layout = paramLayout(preset('tiny'));
  expect(w.bytes).toBe(weightBytes(layout, 'int8'));
  expect(w.bytes_per_token).toBe(weightBytesPerPass(layout, 'int8', 64) / 64);
}, 600_000);

test('bench/torch_bench.py skips the packed formats, naming each test', () => {
  const list = hlm(['bench', '--suite', 'infer', '--quick', '--list', '--weights', 'int8']);
  const tests = join(dir, 'tests.jsonl');
  writeFileSync(tests, list.stdout);
  const r = spawnSync(
    '/usr/bin/python3',
    [join(repoRoot(), 'bench/torch_bench.py'), '--tests', tests, '--device', 'cpu'],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  expect(r.status).toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/infer\/infer-tiny decode 64: skipped: int8 weights \(f32 only\)/);
  expect(r.stderr.match(/skipped: int8 weights/g)).toHaveLength(4);
});

// `hlm bench` as scripts use it: --list and --filter, the md/csv/json formats and --compare on
// synthetic records (no timing noise), and the real --quick kernel suite on this device.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchSchema, validate } from '../src/bench/schema.js';
import type { BenchRecord } from '../src/bench/record.js';
import { hlm } from './helpers/cli.js';
import { syntheticRun } from './helpers/bench-records.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-bench-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jsonl(name: string, records: unknown[]): string {
  const file = join(dir, name);
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

test('--list names the tests without running them; --filter narrows them', () => {
  const all = hlm(['bench', '--suite', 'kernel,train', '--quick', '--list']);
  expect(all.status).toBe(0);
  const tests = all.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const ids = tests.map((t) => `${t.suite}/${t.name}/${t.test}`);
  expect(ids.slice(0, 2)).toEqual(['kernel/peak/fma 16384x1024', 'kernel/peak/copy 16 MiB']);
  for (const t of ['NN', 'NT', 'TN', 'TT']) expect(ids).toContain(`kernel/matmul/square 256x256x256 ${t}`);
  for (const id of [
    'kernel/loss-head/ce 128x50257x64',
    'kernel/loss-head/ce forward 128x50257x64',
    'kernel/loss-head/cwt 128x128x64',
    'kernel/covariance/4096x64',
    'kernel/adamw/1048576',
    'train/train-tiny/ce step 4x64',
    'train/train-tiny/cwt step 4x64',
  ])
    expect(ids).toContain(id);
  expect(ids.some((i) => i.startsWith('train/train-small'))).toBe(false); // --quick: tiny only

  const some = hlm([
    'bench',
    '--suite',
    'kernel,train',
    '--quick',
    '--list',
    '--filter',
    'loss-head|TRAIN-tiny/cwt',
    '--format',
    'md',
  ]);
  expect(some.status).toBe(0);
  const rows = some.stdout.trim().split('\n').slice(2);
  expect(rows).toEqual([
    '| kernel | loss-head | ce 128x50257x64 | head=ce rows=128 V=50257 d=64 |',
    '| kernel | loss-head | ce forward 128x50257x64 | head=ce forward rows=128 V=50257 d=64 |',
    '| kernel | loss-head | cwt 128x128x64 | head=cwt rows=128 V=128 d=64 |',
    '| train | train-tiny | cwt step 4x64 | preset=tiny objective=cwt batch=4 seq=64 optimizer=adamw |',
  ]);
  const full = hlm(['bench', '--suite', 'train', '--list', '--format', 'json']);
  expect(JSON.parse(full.stdout).map((t: { name: string }) => t.name)).toEqual([
    'train-tiny',
    'train-tiny',
    'train-small',
    'train-small',
    'train-base',
    'train-base',
  ]);

  const bad = hlm(['bench', '--list', '--filter', '(']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/--filter: not a regular expression/);
  expect(hlm(['bench', '--list', '--suite', 'kernel,disk']).stderr).toMatch(/unknown suite "disk"/);
});

test('--format md, csv and json render the records', () => {
  const records = syntheticRun();
  const file = jsonl('run.jsonl', records);
  const md = hlm(['bench', '--from', file, '--format', 'md']);
  expect(md.status).toBe(0);
  const lines = md.stdout.trim().split('\n');
  expect(lines[0]).toBe('hlm 0.1.0 (abc1234) on opengl: llvmpipe, node v20');
  expect(lines[2]).toBe('| name | test | params | throughput | p50 ms | % peak | error |');
  expect(lines[4]).toBe(
    '| kernel/matmul | square 256x256x256 NN | M=256 N=256 K=256 transA=false transB=false | 100 ± 2.5% GFLOP/s | ' +
      '7.9 | 25.0% | 3.00e-7 |',
  );
  expect(lines[7]).toMatch(
    /^\| train\/train-tiny \| ce step 4x64 \| .* \| 2000 ± 2.5% tokens\/s \| 7.9 \| — \| loss 10.8 \|$/,
  );

  const csv = hlm(['bench', '--from', file, '--format', 'csv']);
  expect(csv.status).toBe(0);
  const rows = csv.stdout.trim().split('\n');
  expect(rows).toHaveLength(5);
  expect(rows[0]).toMatch(/^suite,name,test,status,params,unit,throughput,rme_pct,mean_ms,p50_ms,/);
  expect(rows[1]).toMatch(
    /^kernel,matmul,square 256x256x256 NN,ok,M=256 N=256 K=256 transA=false transB=false,GFLOP\/s,100,2.5,8,7.9,/,
  );
  expect(rows[4]).toContain('"preset=tiny objective=ce note=a, ""b"""');

  const json = hlm(['bench', '--from', file, '--format', 'json']);
  expect(JSON.parse(json.stdout)).toEqual(records);

  const out = join(dir, 'out.md');
  expect(hlm(['bench', '--from', file, '--format', 'md', '--out', out]).stdout).toBe('');
});

test('--compare flags a planted 20% regression, passes an unchanged run, and names a bad baseline line', () => {
  const baseline = jsonl('baseline.jsonl', syntheticRun());
  const same = jsonl('same.jsonl', syntheticRun());
  const ok = hlm(['bench', '--from', same, '--compare', baseline, '--threshold', '10%', '--format', 'md']);
  expect(ok.status).toBe(0);
  expect(ok.stdout).toMatch(/\| kernel\/matmul \| square 256x256x256 NN \| .* \| 100 \| 100 GFLOP\/s \| 1.000x \| +\|/);
  expect(ok.stdout).toContain('4 compared, 0 regressed by more than 10%, 0 not in the baseline');

  const slower = syntheticRun();
  slower[1].throughput!.value *= 0.8; // square NT: 90 → 72
  slower[3].throughput!.value *= 0.95; // within the threshold
  const regressed = hlm([
    'bench',
    '--from',
    jsonl('slower.jsonl', slower),
    '--compare',
    baseline,
    '--threshold',
    '10%',
  ]);
  expect(regressed.status).toBe(1);
  expect(regressed.stderr).toMatch(
    /\| kernel\/matmul \| square 256x256x256 NT \| .* \| 90.00 \| 72.00 GFLOP\/s \| 0.800x \| REGRESSION/,
  );
  expect(regressed.stderr).toMatch(/0.950x \| +\|/);
  expect(regressed.stderr).toMatch(/1 test\(s\) lost more than 10% of their throughput against .*baseline.jsonl/);
  expect(
    hlm(['bench', '--from', jsonl('slower2.jsonl', slower), '--compare', baseline, '--threshold', '25%']).status,
  ).toBe(0);

  const json = hlm(['bench', '--from', same, '--compare', baseline, '--json']);
  expect(JSON.parse(json.stdout).comparison).toMatchObject({ threshold: 0.1, regressions: 0, unmatched: 0 });

  const broken = join(dir, 'broken.jsonl');
  writeFileSync(broken, JSON.stringify(syntheticRun()[0]) + '\n{"suite": "kernel",\n');
  const bad = hlm(['bench', '--from', same, '--compare', broken]);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/broken\.jsonl:2: not JSON/);
  const invalid = jsonl('invalid.jsonl', [{ ...syntheticRun()[0], status: 'fine' }]);
  expect(hlm(['bench', '--from', same, '--compare', invalid]).stderr).toMatch(
    /invalid\.jsonl:1: not an hlm.bench\/1 record: \$.status/,
  );
  expect(hlm(['bench', '--from', same, '--compare', baseline, '--threshold', 'ten']).stderr).toMatch(
    /--threshold: expected a percentage/,
  );
});

test('several runs a side: each test from its median run, its range beside it; a failure in any run shows', () => {
  // Runs scaled 1.0, 0.5 and 1.2 (current) against 0.9, 1.1, 1.0 and 0.6 (baseline): medians 1.0 and the lower
  // middle of four, 0.9.
  const current = [1, 0.5, 1.2].map((x, i) => jsonl(`cur${i}.jsonl`, syntheticRun(x)));
  const baseline = [0.9, 1.1, 1, 0.6].map((x, i) => jsonl(`base${i}.jsonl`, syntheticRun(x)));
  const r = hlm(['bench', '--from', current.join(','), '--compare', baseline.join(','), '--threshold', '100%']);
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(
    /\| kernel\/matmul \| square 256x256x256 NN \| .* \| 90.00 \(60.00–110\) \| 100 \(50.00–120\) GFLOP\/s \| 1.111x \|/,
  );
  expect(r.stderr).toContain('figures are medians over runs (current 3, baseline 4)');
  // The median run's own record, unchanged: its latency goes with its throughput.
  const medians = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BenchRecord);
  expect(medians.map((m) => m.throughput!.value)).toEqual(syntheticRun(1).map((m) => m.throughput!.value));
  const json = JSON.parse(hlm(['bench', '--from', current.join(','), '--compare', baseline[0], '--json']).stdout);
  expect(json.comparison.rows[0]).toMatchObject({ currentSpread: { runs: 3, min: 50, max: 120 }, ratio: 100 / 90 });
  expect(json.comparison.rows[0].baselineSpread).toBeUndefined();

  const broken = syntheticRun(2);
  broken[1] = { ...broken[1], status: 'error', error: 'device lost', throughput: null };
  const failed = hlm(['bench', '--from', `${current[0]},${jsonl('failed.jsonl', broken)}`, '--compare', baseline[0]]);
  expect(failed.status).toBe(1);
  expect(failed.stderr).toMatch(/square 256x256x256 NT .* \| — GFLOP\/s \| — \| REGRESSION/);
  const failedJson = hlm([
    'bench',
    '--from',
    `${current[0]},${join(dir, 'failed.jsonl')}`,
    '--compare',
    baseline[0],
    '--json',
  ]);
  // One JSON document: what was compared, and the error.
  const doc = JSON.parse(failedJson.stdout);
  expect(doc.comparison.rows[1]).toMatchObject({ note: 'error now: device lost' });
  expect(doc.error.message).toMatch(/1 test\(s\) lost more than 10%/);
  expect(hlm(['bench', '--from', `${current[0]},`]).stderr).toMatch(/an empty file name in the list/);
  expect(hlm(['bench', '--from', `${current[0]},${join(dir, 'absent.jsonl')}`]).stderr).toMatch(
    /cannot read .*absent\.jsonl: ENOENT/,
  );
});

test('the --quick kernel suite runs through the CLI and every record validates against hlm.bench/1', () => {
  const t0 = performance.now();
  const r = hlm(
    ['bench', '--suite', 'kernel', '--quick', '--format', 'jsonl', '--device', 'cpu', '--top', '3'],
    {},
    110_000,
  );
  const seconds = (performance.now() - t0) / 1e3;
  console.log(`hlm bench --suite kernel --quick: ${seconds.toFixed(1)} s`);
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/--top: .* has no timestamp-query, so no GPU time per dispatch/); // llvmpipe has none
  const records = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BenchRecord);
  expect(records.length).toBe(28);
  for (const rec of records) {
    expect(validate(benchSchema(), rec)).toEqual([]);
    expect(rec.status).toBe('ok');
    if (!rec.check?.ok) throw new Error(`${rec.name} ${rec.test}: check ${JSON.stringify(rec.check)}`);
  }
  const matmul = records.find((x) => x.name === 'matmul')!;
  expect(matmul.throughput!.peak_fraction).toBeGreaterThan(0);
  // The same square product on packed-f16 operands, beside it.
  const f16 = records.find((x) => x.name === 'matmul-f16')!;
  expect([f16.test, f16.params.operands, f16.work.flops]).toEqual([matmul.test, 'f16', matmul.work.flops]);
  // float64 on a smaller case
  expect(records.find((x) => x.test.startsWith('ce '))!.check!.shape).toBe('ce 32x1021x64');
  expect(records.find((x) => x.test.startsWith('cwt '))!.check!.shape).toBe('same');
}, 120_000);

test('the infer suite: prefill, decode, time to first token and per token, checked against float64', () => {
  const list = hlm(['bench', '--suite', 'infer', '--quick', '--list']);
  expect(
    list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).test),
  ).toEqual(['prefill 64', 'decode 64', 'first-token 64', 'token at 64']);
  const r = hlm(
    ['bench', '--suite', 'infer', '--quick', '--reps', '2', '--filter', 'prefill|token at', '--device', 'cpu'],
    {},
    110_000,
  );
  expect(r.status).toBe(0);
  const records = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BenchRecord);
  expect(records.map((x) => x.test)).toEqual(['prefill 64', 'token at 64']);
  for (const rec of records) {
    expect(validate(benchSchema(), rec)).toEqual([]);
    expect(rec.status).toBe('ok');
    expect(rec.throughput!.unit).toBe('tokens/s');
    expect(rec.params).toEqual({ preset: 'tiny', prompt: 64, steps: 64 });
  }
  expect(records[0].check).toMatchObject({ ok: true, shape: 'tiny, 8-token prompt + 4 cached steps' });
  expect(records[0].work.tokens).toBe(64);
  expect(records[1].latency_ms!.p99).toBeGreaterThanOrEqual(records[1].latency_ms!.p50);
}, 120_000);

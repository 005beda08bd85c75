// lm-evaluation-harness's result files from eval-lambada: CPython's random (the bootstrap's
// seeds and draws), the harness's stderr formulas, Python's float and JSON spellings (sample
// records and their hashes), and the files the command writes. The expected numbers were
// computed with CPython 3.11 running the harness's own functions (lm_eval/api/metrics.py:
// mean, sample_stddev, mean_stderr, perplexity, bootstrap_stderr with _bootstrap_internal).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { PyRandom } from '../src/eval/python-random.js';
import {
  bootstrapStderr,
  harnessDate,
  harnessMetrics,
  hashString,
  meanStderr,
  perplexity,
  pyFloat,
  pyJsonDumps,
  sanitizeModelName,
} from '../src/eval/harness.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams } from '../src/model/params.js';

const LAMBADA = '/work/shared/data/lambada/lambada_test_sample200.jsonl';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'hlm-harness-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("CPython's Mersenne Twister: random() and choices() draw what Python draws", () => {
  const cases: [number, number, number, number[]][] = [
    [0, 0.8444218515250481, 0.7579544029403025, [30, 20, 30, 30, 40, 20]],
    [1, 0.13436424411240122, 0.8474337369372327, [40, 20, 30, 30, 40, 40]],
    [42, 0.6394267984578837, 0.025010755222666936, [20, 20, 40, 40, 50, 10]],
    [99, 0.40397807494366633, 0.20007544457494542, [10, 20, 40, 20, 20, 40]],
    [2 ** 40 + 7, 0.6137037779936511, 0.8149162973309487, [50, 30, 30, 50, 10, 20]],
  ];
  for (const [seed, a, b, picks] of cases) {
    const r = new PyRandom(seed);
    expect([r.random(), r.random()]).toEqual([a, b]);
    expect(Array.from(r.choices([10, 20, 30, 40, 50], 6))).toEqual(picks);
  }
  expect(() => new PyRandom(-1)).toThrow(/seed must be/);
});

test("the harness's stderrs: analytic for acc, seeded bootstrap for perplexity, bit for bit", () => {
  const lls = [-1.5, -3.25, -0.25, -7, -2, -0.5, -4.75];
  const acc = [1, 0, 1, 1, 0, 0, 1];
  expect(perplexity(lls)).toBe(15.642631884188171);
  expect(meanStderr(acc)).toBe(0.20203050891044214);
  // iters 3000: three chunks of 1000 (seeds 0, 1, 2); 150: one chunk of 150; 2500: two chunks of 1000.
  expect(bootstrapStderr(perplexity, lls, 3000)).toBe(26.238144647501862);
  expect(bootstrapStderr(perplexity, lls, 150)).toBe(24.68604770701591);
  expect(bootstrapStderr(perplexity, lls, 2500)).toBe(26.961843097015187);
  const samples = lls.map((ll, i) => ({
    index: i,
    doc: { text: `t ${i}` },
    context: 't',
    target: ` ${i}`,
    logLikelihood: ll,
    correct: acc[i] === 1,
  }));
  expect(harnessMetrics(samples, 3000)).toEqual({
    'acc,none': 4 / 7,
    'acc_stderr,none': 0.20203050891044214,
    'perplexity,none': 15.642631884188171,
    'perplexity_stderr,none': 26.238144647501862,
  });
  expect(harnessMetrics(samples, 0)).toMatchObject({ 'acc_stderr,none': 'N/A', 'perplexity_stderr,none': 'N/A' });
  expect(harnessMetrics(samples.slice(0, 1), 100)).toMatchObject({ 'acc_stderr,none': 'N/A' });
});

test("Python's float repr and json.dumps(indent=2, ensure_ascii=False), and the hashes", () => {
  const xs = [
    -2.123456789, 1e-5, 1.5e-7, 123, 1e16, 1.2345e17, -0.0001, 0.1, 2.5, -13.623113632202148, 1e22, 100, 3e-5,
  ];
  const py =
    '-2.123456789 | 1e-05 | 1.5e-07 | 123.0 | 1e+16 | 1.2345e+17 | -0.0001 | 0.1 | 2.5 | -13.623113632202148 | ' +
    '1e+22 | 100.0 | 3e-05';
  expect(xs.map(pyFloat).join(' | ')).toBe(py);
  expect([NaN, Infinity, -Infinity, 0, -0].map(pyFloat)).toEqual(['nan', 'inf', '-inf', '0.0', '-0.0']);
  const doc = { text: 'a "b"\n ünï \t\u0001 / \\ 😀' };
  expect(pyJsonDumps(doc)).toBe('{\n  "text": "a \\"b\\"\\n ünï \\t\\u0001 / \\\\ 😀"\n}');
  expect(hashString(pyJsonDumps(doc))).toBe('518e4055c93b554b56c99eceb771a7d08e39fbd3cb012ee023aa745dfbf47ee7');
  expect(pyJsonDumps({ text: 'x', id: 3, f: 1.5, l: [1, 'a'], e: {}, z: [] })).toBe(
    '{\n  "text": "x",\n  "id": 3,\n  "f": 1.5,\n  "l": [\n    1,\n    "a"\n  ],\n  "e": {},\n  "z": []\n}',
  );
  expect(sanitizeModelName('/runs/a:b/ck')).toBe('__runs__a__b__ck');
  expect(harnessDate(new Date(2024, 4, 3, 7, 8, 9, 45))).toBe('2024-05-03T07-08-09.045000');
});

test('eval-lambada --output-path --log-samples writes the harness layout', async () => {
  const config: ModelConfig = {
    ...preset('tiny'),
    n_layer: 1,
    n_embd: 16,
    n_head: 2,
    n_positions: 128,
    eos_token_id: 50256,
  };
  const ck = join(dir, 'ck');
  await saveCheckpoint(ck, { config, params: initParams(config, 4) });
  const out = join(dir, 'out');
  const preds = join(dir, 'preds.jsonl');
  const args = ['eval-lambada', '--model', ck, '--data', LAMBADA, '--limit', '6', '--output-path', out];
  const r = hlm([...args, '--log-samples', '--predictions', preds, '--bootstrap-iters', '2000', '--json']);
  if (r.status !== 0) throw new Error(r.stderr);
  const summary = JSON.parse(r.stdout);
  const folder = join(out, sanitizeModelName(ck));
  expect(readdirSync(out)).toEqual([sanitizeModelName(ck)]);
  const files = readdirSync(folder).sort();
  expect(files).toHaveLength(2);
  expect(files[0]).toMatch(/^results_\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{6}\.json$/);
  expect(files[1]).toBe(files[0].replace('results_', 'samples_lambada_openai_').replace('.json', '.jsonl'));
  expect(summary.harnessFiles).toEqual({ results: join(folder, files[0]), samples: join(folder, files[1]) });
  const res = JSON.parse(readFileSync(join(folder, files[0]), 'utf8'));
  expect(Object.keys(res.results.lambada_openai).sort()).toEqual([
    'acc,none',
    'acc_stderr,none',
    'alias',
    'perplexity,none',
    'perplexity_stderr,none',
  ]);
  expect(res.versions).toEqual({ lambada_openai: 1 });
  expect(res['n-samples']).toEqual({ lambada_openai: { original: 200, effective: 6 } });
  expect(res.configs.lambada_openai).toMatchObject({
    task: 'lambada_openai',
    output_type: 'loglikelihood',
    metric_list: [
      { metric: 'perplexity', aggregation: 'perplexity', higher_is_better: false },
      { metric: 'acc', aggregation: 'mean', higher_is_better: true },
    ],
  });
  expect(res.config).toMatchObject({ model: 'hlm', model_args: `model=${ck}`, limit: 6, bootstrap_iters: 2000 });
  const predictions = readFileSync(preds, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const samples = readFileSync(join(folder, files[1]), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(samples).toHaveLength(6);
  const doc0 = JSON.parse(readFileSync(LAMBADA, 'utf8').split('\n')[0]);
  expect(samples[0]).toMatchObject({
    doc_id: 0,
    doc: doc0,
    target: ' signs',
    filter: 'none',
    metrics: ['perplexity', 'acc'],
    doc_hash: hashString(pyJsonDumps(doc0)),
    target_hash: hashString(' signs'),
  });
  samples.forEach((s, i) => {
    const p = predictions[i];
    expect(Object.keys(s)).toEqual([
      'doc_id',
      'doc',
      'target',
      'arguments',
      'resps',
      'filtered_resps',
      'filter',
      'metrics',
      'doc_hash',
      'prompt_hash',
      'target_hash',
      'perplexity',
      'acc',
    ]);
    expect(s.perplexity).toBe(p.logLikelihood);
    expect(s.acc).toBe(p.correct ? 1 : 0);
    expect(s.arguments.gen_args_0.arg_0 + s.arguments.gen_args_0.arg_1).toBe(s.doc.text);
    expect(s.prompt_hash).toBe(hashString(s.arguments.gen_args_0.arg_0));
    expect(s.resps).toEqual([[[pyFloat(p.logLikelihood), p.correct ? 'True' : 'False']]]);
    expect(s.filtered_resps).toEqual(s.resps[0]);
  });
  // The metrics are the harness's formulas over these samples.
  const again = harnessMetrics(
    samples.map((s) => ({ ...s, index: s.doc_id, context: '', logLikelihood: s.perplexity, correct: s.acc === 1 })),
    2000,
  );
  expect(res.results.lambada_openai).toEqual({ alias: 'lambada_openai', ...again });
  expect(res.results.lambada_openai['perplexity,none']).toBeCloseTo(summary.perplexity, 9);

  const noPath = hlm(['eval-lambada', '--model', ck, '--data', LAMBADA, '--limit', '2', '--log-samples']);
  expect(noPath.status).not.toBe(0);
  expect(noPath.stderr).toMatch(/--log-samples writes beside the results: give --output-path/);
  const na = hlm([...args, '--bootstrap-iters', '0', '--json']);
  expect(JSON.parse(na.stdout).harnessFiles.samples).toBeUndefined();
  const naRes = JSON.parse(readFileSync(JSON.parse(na.stdout).harnessFiles.results, 'utf8'));
  expect(naRes.results.lambada_openai['perplexity_stderr,none']).toBe('N/A');
}, 180_000);

// finetune-glue end to end on a tiny synthetic task in SST-2's layout (the label says which of
// two marker words a sentence holds, at a random place): the tiny model must reach perfect dev
// accuracy, `--task all` must run the task present, skip the rest and print the table, the
// saved checkpoint must predict test.tsv, and bad inputs must fail with one clear message.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams } from '../src/model/params.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { joinPair } from '../src/glue/encode.js';
import { readGlueInputs } from '../src/glue/data.js';
import { classWeights, predictionsFromLogits } from '../src/glue/run.js';

let dir: string;
const FILLER = ['the', 'film', 'was', 'very', 'a', 'story', 'of', 'and', 'it', 'is', 'quite', 'long', 'plot', 'this'];
let seed = 7;
const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;

function sentence(label: number): string {
  const words = Array.from({ length: 2 + Math.floor(next() * 5) }, () => FILLER[Math.floor(next() * FILLER.length)]);
  words.splice(Math.floor(next() * (words.length + 1)), 0, label ? 'wonderful' : 'terrible');
  return words.join(' ');
}

function split(n: number): { text: string; labels: number[] } {
  const labels = Array.from({ length: n }, (_, i) => i % 2);
  return { text: 'sentence\tlabel\n' + labels.map((y) => `${sentence(y)}\t${y}`).join('\n') + '\n', labels };
}

let testLabels: number[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-glue-'));
  mkdirSync(join(dir, 'glue', 'SST-2'), { recursive: true });
  writeFileSync(join(dir, 'glue', 'SST-2', 'train.tsv'), split(96).text);
  writeFileSync(join(dir, 'glue', 'SST-2', 'dev.tsv'), split(24).text);
  testLabels = Array.from({ length: 10 }, () => (next() < 0.5 ? 1 : 0));
  writeFileSync(
    join(dir, 'test.tsv'),
    'index\tsentence\n' + testLabels.map((y, i) => `${i}\t${sentence(y)}`).join('\n') + '\n',
  );
  const config: ModelConfig = {
    ...preset('tiny'),
    n_positions: 32,
    n_embd: 32,
    n_layer: 1,
    n_head: 2,
    eos_token_id: 50256,
  };
  await saveCheckpoint(join(dir, 'base'), { config, params: initParams(config, 3) });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test(
  'a tiny decoder learns the synthetic task perfectly; --task all skips the missing tasks ' + 'and prints the table',
  () => {
    const out = join(dir, 'runs');
    const r = hlm(
      [
        'finetune-glue',
        '--model',
        join(dir, 'base'),
        '--task',
        'all',
        '--data',
        join(dir, 'glue'),
        '--epochs',
        '8',
        '--lr',
        '2e-3',
        '--batch-size',
        '8',
        '--seeds',
        '1,2',
        '--out',
        out,
        '--device',
        'cpu',
      ],
      {},
      300_000,
    );
    if (r.status !== 0) throw new Error(r.stderr);
    expect(r.stdout).toMatch(/\| SST-2 +\| accuracy +\| 100\.0 ± 0\.0/);
    expect(r.stdout).toMatch(/GLUE average/);
    expect(r.stderr).toMatch(/skipped CoLA: CoLA: no data files; looked for .*CoLA\/train\.tsv/);
    const result = JSON.parse(readFileSync(join(out, 'sst2', 'result.json'), 'utf8'));
    expect(result.pooling).toBe('last');
    expect(result.seeds.map((s: { seed: number }) => s.seed)).toEqual([1, 2]);
    for (const s of result.seeds) {
      expect(s.epochs).toHaveLength(8);
      expect(s.best.metrics.accuracy).toBe(1);
    }
    expect(result.summary.score).toEqual({ mean: 1, std: 0, n: 2 });
    expect(result.majority.metrics.accuracy).toBe(0.5);
    const config = JSON.parse(readFileSync(join(out, 'sst2', 'checkpoint', 'config.json'), 'utf8'));
    expect(config.architectures).toEqual(['GPT2ForSequenceClassification']);
    expect(config.hlm.glue).toMatchObject({ task: 'sst2', pooling: 'last', max_seq_len: 32 });

    // The fine-tuned checkpoint predicts GLUE's test layout: one label a line on stdout (no --data needed).
    const p = hlm([
      'finetune-glue',
      '--model',
      join(out, 'sst2', 'checkpoint'),
      '--task',
      'sst2',
      '--predict',
      join(dir, 'test.tsv'),
      '--device',
      'cpu',
    ]);
    if (p.status !== 0) throw new Error(p.stderr);
    expect(p.stdout.trim().split('\n')).toEqual(testLabels.map(String));
  },
);

test('one task: progress on stderr every --log-every steps and per epoch, the result on stdout', () => {
  const args = ['finetune-glue', '--model', join(dir, 'base'), '--task', 'sst2', '--data', join(dir, 'glue')];
  const run = [...args, '--epochs', '2', '--batch-size', '8', '--seeds', '1', '--log-every', '5', '--device', 'cpu'];
  const r = hlm([...run, '--out', join(dir, 'one')], { HLM_LOG_LEVEL: 'info' }, 300_000);
  if (r.status !== 0) throw new Error(r.stderr);
  expect(r.stdout).toMatch(/^\| task +\| metric/);
  expect(r.stdout).toMatch(/\| SST-2 +\| accuracy +\| \d+\.\d ± 0\.0/);
  const logs = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; step?: number });
  const steps = logs.filter((l) => /examples\/s {2}ETA/.test(l.msg)).map((l) => l.step);
  expect(steps).toEqual([5, 10, 15, 20]); // 12 steps an epoch, 2 epochs
  expect(logs.filter((l) => /^SST-2 seed 1 epoch [12]\/2: train loss \d\.\d+, dev accuracy/.test(l.msg))).toHaveLength(
    2,
  );
  // --json: the same result as JSON on stdout, the progress still on stderr.
  const j = hlm([...run, '--out', join(dir, 'one-json'), '--json'], { HLM_LOG_LEVEL: 'info' }, 300_000);
  if (j.status !== 0) throw new Error(j.stderr);
  expect(JSON.parse(j.stdout).tasks[0].summary.score.n).toBe(1);
  expect(j.stderr).toMatch(/examples\/s/);

  // An --out that cannot take the results is refused before training.
  writeFileSync(join(dir, 'a-file'), 'x');
  const bad = hlm([...run, '--out', join(dir, 'a-file', 'runs')], { HLM_LOG_LEVEL: 'info' });
  expect(bad.status).toBe(1);
  expect(bad.stderr.trim().split('\n').at(-1)).toMatch(
    /^hlm: cannot write GLUE results .*a-file\/runs\/sst2: .*a-file is not a directory$/,
  );
  expect(bad.stderr).not.toMatch(/epoch|examples\/s/);
});

test('bad inputs fail with one clear message', () => {
  const base = join(dir, 'base');
  const missing = hlm([
    'finetune-glue',
    '--model',
    base,
    '--task',
    'rte',
    '--data',
    join(dir, 'glue'),
    '--device',
    'cpu',
  ]);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/hlm: RTE: no data files; looked for .*RTE\/train\.tsv, .*RTE\/dev\.tsv/);

  const bad = join(dir, 'bad', 'SST-2');
  mkdirSync(bad, { recursive: true });
  writeFileSync(join(bad, 'train.tsv'), 'sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n');
  writeFileSync(join(bad, 'dev.tsv'), 'sentence\tlabel\ngood\t2\n');
  const cols = hlm(['finetune-glue', '--model', base, '--task', 'sst2', '--data', join(dir, 'bad'), '--device', 'cpu']);
  expect(cols.status).toBe(1);
  expect(cols.stderr).toMatch(/hlm: .*SST-2\/train\.tsv:3: 3 tab-separated columns, expected 2/);
  writeFileSync(join(bad, 'train.tsv'), 'sentence\tlabel\ngood film\t1\n');
  const label = hlm([
    'finetune-glue',
    '--model',
    base,
    '--task',
    'sst2',
    '--data',
    join(dir, 'bad'),
    '--device',
    'cpu',
  ]);
  expect(label.status).toBe(1);
  expect(label.stderr).toMatch(/hlm: .*SST-2\/dev\.tsv:2: unknown label "2" for SST-2/);

  const noModel = hlm([
    'finetune-glue',
    '--model',
    join(dir, 'nope'),
    '--task',
    'sst2',
    '--data',
    join(dir, 'glue'),
    '--device',
    'cpu',
  ]);
  expect(noModel.status).toBe(1);
  expect(noModel.stderr).toMatch(/hlm: .*nope/);
  const seeds = hlm([
    'finetune-glue',
    '--model',
    base,
    '--task',
    'sst2',
    '--data',
    join(dir, 'glue'),
    '--seeds',
    '1,x',
  ]);
  expect(seeds.status).toBe(1);
  expect(seeds.stderr).toMatch(/--seeds: invalid value "x"/);
  expect(existsSync(join(dir, 'bad', 'SST-2', 'result.json'))).toBe(false);
});

test('sentence pairs are joined with separators and truncated from the longer one', () => {
  expect(joinPair([1, 2, 3], [4, 5], 0, 9)).toEqual({ tokens: [1, 2, 3, 0, 4, 5, 0], truncated: false });
  expect(joinPair([1, 2, 3, 4, 5, 6], [7, 8], 0, 7)).toEqual({ tokens: [1, 2, 3, 0, 7, 8, 0], truncated: true });
  expect(joinPair([1, 2], [3, 4, 5, 6, 7], 0, 6)).toEqual({ tokens: [1, 2, 0, 3, 4, 0], truncated: true });
  expect(joinPair([1, 2, 3], undefined, 9, 3)).toEqual({ tokens: [1, 2, 9], truncated: true });
  expect(() => joinPair([1], [2], 0, 2)).toThrow(/max-seq-len 2 is too short/);
});

test('prediction files: GLUE test layouts (CoLA with a header) and the train layout', () => {
  const f = join(dir, 'cola-test.tsv');
  writeFileSync(f, 'index\tsentence\n0\tThe cat sat.\n1\tSat cat the.\n');
  expect(readGlueInputs(f, 'cola')).toEqual([{ a: 'The cat sat.' }, { a: 'Sat cat the.' }]);
  writeFileSync(f, 'gj04\t1\t\tThe cat sat.\n');
  expect(readGlueInputs(f, 'cola')).toEqual([{ a: 'The cat sat.' }]);
  const m = join(dir, 'mrpc-test.tsv');
  writeFileSync(m, 'index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tA b.\tC d.\n');
  expect(readGlueInputs(m, 'mrpc')).toEqual([{ a: 'A b.', b: 'C d.' }]);
  writeFileSync(m, 'index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1\t2\tA b.\n');
  expect(() => readGlueInputs(m, 'mrpc')).toThrow(/mrpc-test\.tsv:2: 4 tab-separated columns, expected 5/);
  writeFileSync(m, 'index\tfoo\n');
  expect(() => readGlueInputs(m, 'mrpc')).toThrow(/mrpc-test\.tsv:1: expected a MRPC header/);
});

test('argmax / scores from logits, and class-balanced weights', () => {
  expect(predictionsFromLogits(Float32Array.from([0, 1, 3, 2, 5, 5]), 2)).toEqual([1, 0, 0]);
  expect(predictionsFromLogits(Float32Array.from([0.5, 4.25]), 1)).toEqual([0.5, 4.25]);
  expect(classWeights([0, 0, 0, 1], 2)).toEqual([4 / 6, 2]);
  expect(classWeights([0, 0], 3)).toEqual([2 / 6, 0, 0]);
});

test(
  'pairs: MNLI (three classes, matched and mismatched dev) and STS-B (regression) train and ' + 'report their metrics',
  () => {
    const root = join(dir, 'pairs');
    const MARK = ['yes', 'maybe', 'no'];
    const GOLD = ['entailment', 'neutral', 'contradiction'];
    const head12 =
      'index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse' +
      '\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label';
    const head16 = head12.replace('label1\tgold_label', 'label1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label');
    const mnliRow = (i: number, dev: boolean) => {
      const y = i % 3;
      const s1 = sentence(i % 2);
      const s2 = `${sentence(1 - (i % 2))} ${MARK[y]}`;
      return [
        i,
        1,
        `${i}n`,
        'fiction',
        `( ${s1} )`,
        `( ${s2} )`,
        `(ROOT ${s1})`,
        `(ROOT ${s2})`,
        s1,
        s2,
        ...(dev ? [GOLD[y], GOLD[y], GOLD[y], GOLD[y], GOLD[y]] : [GOLD[y]]),
        GOLD[y],
      ].join('\t');
    };
    mkdirSync(join(root, 'MNLI'), { recursive: true });
    writeFileSync(
      join(root, 'MNLI', 'train.tsv'),
      [head12, ...Array.from({ length: 72 }, (_, i) => mnliRow(i, false))].join('\n') + '\n',
    );
    writeFileSync(
      join(root, 'MNLI', 'dev_matched.tsv'),
      [head16, ...Array.from({ length: 18 }, (_, i) => mnliRow(i, true))].join('\n') + '\n',
    );
    writeFileSync(
      join(root, 'MNLI', 'dev_mismatched.tsv'),
      [head16, ...Array.from({ length: 15 }, (_, i) => mnliRow(i + 1, true))].join('\n') + '\n',
    );
    const stsRow = (i: number) => {
      const same = i % 2 === 0;
      const score = same ? 4 + (i % 5) / 5 : (i % 5) / 5;
      return [
        'main-captions',
        'MSRvid',
        '2012test',
        String(i).padStart(4, '0'),
        score.toFixed(3),
        sentence(1),
        `${sentence(0)} ${same ? 'same' : 'other'}`,
      ].join('\t');
    };
    mkdirSync(join(root, 'STS-B'), { recursive: true });
    const stsHead = 'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore';
    const stsFile = (n: number, from: number) =>
      [
        stsHead,
        ...Array.from({ length: n }, (_, i) => {
          const [genre, file, year, idx, score, s1, s2] = stsRow(from + i).split('\t');
          return [from + i, genre, file, year, idx, 'none', 'none', s1, s2, score].join('\t');
        }),
      ].join('\n') + '\n';
    writeFileSync(join(root, 'STS-B', 'train.tsv'), stsFile(64, 0));
    writeFileSync(join(root, 'STS-B', 'dev.tsv'), stsFile(20, 100));

    const args = [
      '--model',
      join(dir, 'base'),
      '--data',
      root,
      '--epochs',
      '15',
      '--lr',
      '2e-3',
      '--batch-size',
      '8',
      '--seeds',
      '3',
      '--out',
      join(dir, 'pair-runs'),
      '--device',
      'cpu',
      '--json',
    ];
    const mnli = hlm(['finetune-glue', '--task', 'mnli', ...args], {}, 300_000);
    if (mnli.status !== 0) throw new Error(mnli.stderr);
    const m = JSON.parse(mnli.stdout).tasks[0];
    expect(Object.keys(m.summary.metrics)).toEqual(['matched_accuracy', 'mismatched_accuracy']);
    expect(m.examples).toEqual({ train: 72, dev_matched: 18, dev_mismatched: 15 });
    expect(m.input).toMatch(/^sentence1 <sep> sentence2 <sep>/);
    if (!(m.summary.metrics.matched_accuracy.mean >= 0.9 && m.summary.metrics.mismatched_accuracy.mean >= 0.9))
      throw new Error(`MNLI: ${JSON.stringify(m.summary.metrics)}`);

    const sts = hlm(['finetune-glue', '--task', 'stsb', ...args], {}, 300_000);
    if (sts.status !== 0) throw new Error(sts.stderr);
    const s = JSON.parse(sts.stdout).tasks[0];
    expect(Object.keys(s.summary.metrics)).toEqual(['pearson', 'spearman']);
    expect(s.majority.metrics).toEqual({ pearson: 0, spearman: 0 }); // a constant predictor
    if (!(s.summary.metrics.pearson.mean >= 0.9)) throw new Error(`STS-B: ${JSON.stringify(s.summary.metrics)}`);
  },
);

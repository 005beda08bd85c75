// XNLI on the dev set alone: the reader (three columns, labels, the same items in every
// language), the split by item at a premise boundary, `finetune-glue --task xnli` with both
// protocols, and `experiment headless --tasks xnli`, on synthetic languages and a tiny encoder.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { openTestGpu } from './helpers/gpu.js';
import type { Gpu } from '../src/gpu/device.js';
import { defaultCorpusPath } from '../src/data/corpus.js';
import { trainBpeTokenizer } from '../src/data/hf-tokenizer.js';
import { saveTokenizer } from '../src/data/tokenizer.js';
import { pretrain } from '../src/train/pretrain.js';
import { settingDefaults, type PretrainOptions } from '../src/train/pretrain-settings.js';
import { XNLI_LABELS, loadXnli, xnliSplit, type XnliResult } from '../src/glue/xnli.js';
import { runHeadless } from '../src/experiment/headless.js';
import { validateExperimentResult } from '../src/report/result-schema.js';

let gpu: Gpu;
let dir: string;
let xnli: string;
let corpus: string;
let tokenizer: string;

// 30 items: 10 premises with 3 hypotheses each, as XNLI lays them out; "languages" differ by a suffix.
const LANGS = ['en', 'fr', 'de'];
const WORDS = 'the cat dog sat on a mat ran fast big small red blue house tree car'.split(' ');
function item(i: number, lang: string): [string, string, string] {
  const w = (k: number) => WORDS[(k * 5 + 3) % WORDS.length] + (lang === 'en' ? '' : `${lang}`);
  const premise = [`p${Math.floor(i / 3)}`, ...[0, 1, 2, 3].map((k) => w(Math.floor(i / 3) * 4 + k))].join(' ');
  const label = XNLI_LABELS[(i * 7) % 3];
  const hypothesis = label === 'contradiction' ? `no ${premise}` : [1, 2].map((k) => w(i + k)).join(' ');
  return [premise, hypothesis, label];
}
function writeXnli(path: string, lang: string, n = 30, edit?: (row: string[], i: number) => string[]): void {
  const rows = Array.from({ length: n }, (_, i) => (edit ? edit(item(i, lang), i) : item(i, lang)));
  writeFileSync(path, rows.map((r) => r.join('\t')).join('\n') + '\n');
}

beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-xnli-'));
  process.env.HLM_CACHE_DIR = join(dir, 'cache');
  xnli = join(dir, 'xnli');
  mkdirSync(xnli);
  for (const l of LANGS) writeXnli(join(xnli, `dev-${l}.tsv`), l);
  corpus = join(dir, 'corpus.txt');
  writeFileSync(
    corpus,
    readFileSync(defaultCorpusPath(), 'utf8')
      .slice(0, 30_000)
      .replace(/<[^>]+>/g, ''),
  );
  tokenizer = join(dir, 'tok');
  mkdirSync(tokenizer);
  saveTokenizer(await trainBpeTokenizer([corpus], { vocabSize: 400 }), tokenizer);
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('the split: two thirds of the items, moved to the next premise; the same items in every language', () => {
  const d = loadXnli(xnli);
  expect(d.languages).toEqual(LANGS);
  expect(d.items).toBe(30);
  // ⌈30·2/3⌉ = 20 shares its premise with 18 and 19: the split moves to 21.
  expect(d.split).toBe(21);
  const en = d.examples.en;
  const train = new Set(en.slice(0, d.split).map((x) => x.a));
  for (const x of en.slice(d.split)) expect(train.has(x.a)).toBe(false);
  expect(d.examples.fr.map((x) => x.label)).toEqual(en.map((x) => x.label));
  expect(loadXnli(xnli, ['fr']).split).toBe(21);
  expect(() => xnliSplit(en.slice(0, 3), 2 / 3, 'x')).toThrow(/x: 3 items leave none for fine-tuning or none/);
});

test('refused: items that differ between languages, a row without three columns, a bad label, no such language', () => {
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  writeXnli(join(bad, 'dev-en.tsv'), 'en');
  writeXnli(join(bad, 'dev-fr.tsv'), 'fr', 30, (r, i) => (i === 4 ? [r[0], r[1], XNLI_LABELS[(i * 7 + 1) % 3]] : r));
  expect(() => loadXnli(bad)).toThrow(/XNLI: item 5 is \w+ in .*dev-fr\.tsv but \w+ in .*dev-en\.tsv/);
  writeXnli(join(bad, 'dev-fr.tsv'), 'fr', 29);
  expect(() => loadXnli(bad)).toThrow(/dev-fr\.tsv has 29 items, .*dev-en\.tsv 30/);
  writeXnli(join(bad, 'dev-fr.tsv'), 'fr', 30, (r, i) => (i === 6 ? r.slice(0, 2) : r));
  expect(() => loadXnli(bad)).toThrow(/dev-fr\.tsv:7: 2 tab-separated columns, expected 3/);
  writeXnli(join(bad, 'dev-fr.tsv'), 'fr', 30, (r, i) => (i === 2 ? [r[0], r[1], 'maybe'] : r));
  expect(() => loadXnli(bad)).toThrow(/dev-fr\.tsv:3: unknown label "maybe"/);
  expect(() => loadXnli(xnli, ['sw'])).toThrow(/no .*dev-sw\.tsv \(languages in .*: en, fr, de\)/);
});

function pretrainOptions(out: string): PretrainOptions {
  return {
    ...(settingDefaults() as PretrainOptions),
    arch: 'encoder',
    objective: 'cwt',
    set: ['n_layer=1', 'n_embd=32', 'n_head=2', 'n_positions=32'],
    data: [corpus],
    tokenizer,
    out,
    steps: 3,
    batchSize: 8,
    seqLen: 32,
    evalEvery: 0,
  };
}

test('finetune-glue --task xnli: English fine-tuning scored in every language, and each language alone', async () => {
  const model = join(dir, 'enc');
  await pretrain(gpu, pretrainOptions(model));
  const out = join(dir, 'ft');
  const r = hlm(
    [
      'finetune-glue',
      ...['--model', join(model, 'checkpoint'), '--task', 'xnli', '--data', xnli, '--seeds', '1,2'],
      ...['--epochs', '2', '--lr', '1e-3', '--batch-size', '8', '--out', out, '--json'],
    ],
    { HLM_CACHE_DIR: join(dir, 'cache') },
  );
  if (r.status !== 0) throw new Error(r.stderr);
  const x = JSON.parse(r.stdout).xnli as XnliResult;
  expect([x.items, x.trainItems, x.evalItems]).toEqual([30, 21, 9]);
  expect(x.modes.map((m) => m.mode)).toEqual(['english', 'target']);
  for (const m of x.modes) {
    expect(m.languages.map((l) => l.language)).toEqual(LANGS);
    expect(m.languages.map((l) => l.trainedOn)).toEqual(m.mode === 'english' ? ['en', 'en', 'en'] : LANGS);
    for (const l of m.languages) {
      expect(l.seeds.map((s) => s.seed)).toEqual([1, 2]);
      // 9 evaluation items: every accuracy is a multiple of 1/9.
      for (const s of l.seeds) expect(Math.abs(s.accuracy * 9 - Math.round(s.accuracy * 9))).toBeLessThan(1e-9);
    }
    const perSeed = [0, 1].map((i) => m.languages.reduce((a, l) => a + l.seeds[i].accuracy, 0) / 3);
    expect(m.average.mean).toBeCloseTo((perSeed[0] + perSeed[1]) / 2, 12);
  }
  // English fine-tuning scores English with its selected epoch's accuracy on English.
  const en = x.modes[0].languages[0];
  expect(en.seeds.map((s) => s.bestEpoch).every((e) => e === 1 || e === 2)).toBe(true);
  expect(JSON.parse(readFileSync(join(out, 'xnli', 'result.json'), 'utf8')).modes.length).toBe(2);
});

test('experiment headless --tasks xnli: both objectives, both protocols, every language', async () => {
  const out = join(dir, 'experiment');
  const r = await runHeadless(gpu, {
    arch: 'encoder',
    preset: 'tiny',
    set: ['n_layer=1', 'n_embd=32', 'n_head=2', 'n_positions=32', 'batch_size=8', 'seq_len=32'],
    data: [corpus],
    tokenizer,
    budget: '1024',
    tasks: ['xnli'],
    seeds: [1],
    headFt: 0,
    epochs: 1,
    lr: 1e-3,
    batchSize: 8,
    xnliData: xnli,
    out,
  });
  expect(validateExperimentResult(r.result)).toEqual([]);
  expect(r.ran).toEqual([
    'pretrain ce',
    'pretrain cwt',
    'xnli english ce',
    'xnli english cwt',
    ...LANGS.flatMap((l) => [`xnli target ${l} ce`, `xnli target ${l} cwt`]),
  ]);
  for (const section of ['XNLI, English fine-tuning', 'XNLI, target-language fine-tuning']) {
    const s = r.result.scores.filter((x) => x.section === section);
    expect(s.map((x) => `${x.task} ${x.variant}`).sort()).toEqual(LANGS.flatMap((l) => [`${l} ce`, `${l} cwt`]).sort());
  }
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  expect(md).toMatch(/## XNLI average, English fine-tuning/);
  expect(md).toMatch(/XNLI protocol: XNLI 1\.0 dev only/);
});

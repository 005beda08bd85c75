// `hlm experiment headless` end to end on a tiny model (one layer of width 32, a 400-token BPE
// vocabulary, seconds-long budgets) and GLUE-layout tasks and LAMBADA passages written here:
// every file of the report, result.json against the schema, one series per objective in the
// SVGs, and resumption (a failed phase redone with the finished ones skipped; a killed
// pretraining continued from its checkpoint; other arguments refused).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { repoRoot } from './helpers/cli.js';
import { marks, parseSvg, seriesColours } from './helpers/svg.js';
import type { Gpu } from '../src/gpu/device.js';
import { defaultCorpusPath } from '../src/data/corpus.js';
import { trainBpeTokenizer } from '../src/data/hf-tokenizer.js';
import { saveTokenizer } from '../src/data/tokenizer.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { readMetrics } from '../src/train/pretrain.js';
import { HEAD_FT_VARIANT, runHeadless, type HeadlessOptions } from '../src/experiment/headless.js';
import { readExperimentResult, validateExperimentResult } from '../src/report/result-schema.js';
import type { ExperimentResult } from '../src/report/experiment.js';

let gpu: Gpu;
let dir: string;
let corpus: string;
let tokenizer: string;
let glue: string;
let lambada: string;
const cache = () => join(dir, 'cache');

beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-experiment-'));
  process.env.HLM_CACHE_DIR = cache();
  corpus = join(dir, 'corpus.txt');
  writeFileSync(
    corpus,
    readFileSync(defaultCorpusPath(), 'utf8')
      .slice(0, 40_000)
      .replace(/<[^>]+>/g, ''),
  );
  tokenizer = join(dir, 'tok');
  mkdirSync(tokenizer);
  saveTokenizer(await trainBpeTokenizer([corpus], { vocabSize: 400 }), tokenizer);
  glue = join(dir, 'glue');
  writeTask('RTE', ['index', 'sentence1', 'sentence2', 'label'], (i) => [
    String(i),
    sentence(i),
    sentence(i + 7),
    i % 3 ? 'entailment' : 'not_entailment',
  ]);
  lambada = join(dir, 'lambada.jsonl');
  const passages = readFileSync(corpus, 'utf8')
    .split(/(?<=\.) /)
    .filter((s) => s.split(' ').length > 6)
    .slice(0, 4);
  writeFileSync(lambada, passages.map((text) => JSON.stringify({ text: text.trim() })).join('\n') + '\n');
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const WORDS = 'the cat dog sat on a mat ran fast slow big small red blue house tree car old new'.split(' ');
function sentence(i: number): string {
  return Array.from({ length: 4 + (i % 5) }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(' ');
}

/** <glue>/<task>/{train,dev}.tsv: 36 and 12 rows. */
function writeTask(task: string, header: string[], row: (i: number) => string[], badDevRow?: string[]): void {
  mkdirSync(join(glue, task), { recursive: true });
  const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => row(from + i).join('\t'));
  writeFileSync(join(glue, task, 'train.tsv'), [header.join('\t'), ...rows(0, 36)].join('\n') + '\n');
  const dev = [header.join('\t'), ...rows(100, 12), ...(badDevRow ? [badDevRow.join('\t')] : [])];
  writeFileSync(join(glue, task, 'dev.tsv'), dev.join('\n') + '\n');
}

const stsRow = (i: number) => [String(i), sentence(i), sentence(i + 1), ((i * 0.37) % 5).toFixed(2)];
const STS_HEADER = ['index', 'sentence1', 'sentence2', 'score'];

// One layer of width 32, a short context, small batches: a step takes milliseconds to a few tenths.
const TINY = ['n_layer=1', 'n_embd=32', 'n_head=2', 'n_positions=32', 'batch_size=8', 'seq_len=32'];

function encoderOptions(out: string, o: Partial<HeadlessOptions> = {}): HeadlessOptions {
  return {
    arch: 'encoder',
    preset: 'tiny',
    set: [...TINY, 'eval_batches=2'],
    data: [corpus],
    tokenizer,
    evalData: corpus,
    budget: '2s',
    tasks: ['rte', 'stsb'],
    seeds: [1, 2],
    headFt: 0.1,
    epochs: 2,
    lr: 1e-3,
    batchSize: 8,
    glueData: glue,
    out,
    ...o,
  };
}

function phaseStatus(r: ExperimentResult): Record<string, string> {
  return Object.fromEntries(r.phases.map((p) => [p.name, p.status]));
}

/** Each plot's SVG parses, and its marks draw exactly `variants`, one colour each. */
function expectSeries(out: string, plot: string, variants: string[]): void {
  const svg = readFileSync(join(out, 'plots', `${plot}.svg`), 'utf8');
  parseSvg(svg);
  const line = plot.includes('-vs-');
  const drawn = marks(svg, line ? 'line mark' : 'bar');
  expect([...seriesColours(drawn, 'objective', line ? 'stroke' : 'fill').keys()].sort()).toEqual([...variants].sort());
  if (line) expect(drawn.length).toBe(variants.length);
}

describe('an encoder experiment on a time budget, with a failed phase redone', () => {
  let out: string;
  let first: ExperimentResult;
  let second: Awaited<ReturnType<typeof runHeadless>>;
  beforeAll(async () => {
    out = join(dir, 'encoder');
    // STS-B's dev file has a score out of range: its fine-tuning fails after the rest has run.
    writeTask('STS-B', STS_HEADER, stsRow, ['999', 'a cat', 'a dog', '7.5']);
    await expect(runHeadless(gpu, encoderOptions(out))).rejects.toThrow(/dev\.tsv:14: unknown label "7\.5"/);
    first = readExperimentResult(join(out, 'result.json'));
    writeTask('STS-B', STS_HEADER, stsRow);
    second = await runHeadless(gpu, encoderOptions(out));
  });

  test('the failure is recorded, the report written, and a rerun does only what was not done', () => {
    expect(phaseStatus(first)).toEqual({
      'pretrain ce': 'done',
      'pretrain cwt': 'done',
      'glue rte ce': 'done',
      'glue rte cwt': 'done',
      'glue stsb ce': 'failed',
      'glue stsb cwt': 'pending',
    });
    expect(first.phases.find((p) => p.status === 'failed')!.error).toMatch(/unknown label "7\.5"/);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
    expect(second.ran).toEqual(['glue stsb ce', 'glue stsb cwt']);
    expect(second.skipped).toEqual(['pretrain ce', 'pretrain cwt', 'glue rte ce', 'glue rte cwt']);
    for (const p of first.phases.filter((x) => x.status === 'done'))
      expect(second.result.phases.find((x) => x.name === p.name)!.finished).toBe(p.finished);
    expect(Object.values(phaseStatus(second.result))).toEqual(Array(6).fill('done'));
  });

  test('result.json validates; both objectives trained for the budget on the same batches', () => {
    const r = readExperimentResult(join(out, 'result.json'));
    expect(validateExperimentResult(r)).toEqual([]);
    expect(r.runs.map((x) => x.variant)).toEqual(['ce', 'cwt']);
    for (const run of r.runs) {
      if (!(run.seconds >= 2 && run.steps >= 1)) throw new Error(`${run.id}: ${run.steps} steps in ${run.seconds} s`);
      expect(run.tokens).toBe(run.steps * 8 * 32);
      expect(run.curve.map((p) => p.step)).toEqual(Array.from({ length: run.steps }, (_, i) => i + 1));
      const ck = readFileSync(join(out, run.dir!, 'checkpoint', 'config.json'), 'utf8');
      expect(JSON.parse(ck).hlm.run.order).toBe('shuffled');
    }
    expect(r.budget.planned).toEqual({ seconds: 2 });
    expect(r.budget.used.tokens).toBe(Math.max(...r.runs.map((x) => x.tokens)));
    // GLUE: every metric of every task, objective and seed.
    const keys = r.scores.map((s) => `${s.task} ${s.metric} ${s.variant} ${s.seed}`).sort();
    const want = ['RTE accuracy', 'STS-B pearson', 'STS-B spearman'].flatMap((m) =>
      ['ce', 'cwt'].flatMap((v) => [1, 2].map((seed) => `${m} ${v} ${seed}`)),
    );
    expect(keys).toEqual(want.sort());
    for (const p of r.phases) if (!(p.loadStart?.length === 3 && p.loadEnd?.length === 3)) throw new Error(p.name);
  });

  test('every report file; each SVG parses and draws one series per objective', () => {
    expect(readdirSync(out).sort()).toEqual(['glue', 'plots', 'pretrain', 'report.html', 'report.md', 'result.json']);
    const plots = readdirSync(join(out, 'plots')).sort();
    expect(plots).toEqual(
      [
        'GLUE-scores',
        'pretraining-loss-vs-time',
        'pretraining-loss-vs-tokens',
        'pretraining-peak-memory',
        'pretraining-throughput',
        'pretraining-val-loss-vs-tokens',
      ].map((p) => `${p}.svg`),
    );
    for (const p of plots) expectSeries(out, p.slice(0, -4), ['ce', 'cwt']);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    for (const run of second.result.runs)
      expect(md).toContain(`| ${run.variant} | 1 | ${run.tokens.toLocaleString('en-US')} |`);
    expect(md).toMatch(/## GLUE average/);
    expect(md).toMatch(/\| wall time \| 2\.0 s \|/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect((html.match(/<svg /g) ?? []).length).toBe(plots.length);
  });

  test('a rerun with other arguments is refused, naming them; the same arguments skip everything', async () => {
    await expect(runHeadless(gpu, encoderOptions(out, { budget: '3s', seeds: [1] }))).rejects.toThrow(
      /was made with --budget 2s, --seeds 1,2; this command gives --budget 3s, --seeds 1\./,
    );
    const again = await runHeadless(gpu, encoderOptions(out));
    expect(again.ran).toEqual([]);
    expect(again.skipped.length).toBe(6);
  });
});

describe('a decoder experiment on a token budget, killed during pretraining and resumed', () => {
  let out: string;
  let options: HeadlessOptions;
  let killed: ExperimentResult;
  let savedStep: number;
  let r: Awaited<ReturnType<typeof runHeadless>>;
  beforeAll(async () => {
    out = join(dir, 'decoder');
    // 48 steps of 4×32 tokens per objective, a checkpoint every 4; head fine-tuning for half as many tokens.
    const set = ['n_layer=1', 'n_embd=32', 'n_head=2', 'n_positions=32', 'batch_size=4', 'seq_len=32'];
    options = {
      arch: 'decoder',
      preset: 'tiny',
      set: [...set, 'save_every=4', 'eval_every=16', 'eval_batches=2', 'warmup=4'],
      data: [corpus],
      tokenizer,
      evalData: corpus,
      budget: '6144',
      headFt: 0.5,
      lambadaData: lambada,
      out,
    };
    // The CLI, killed once the CE run has saved a checkpoint.
    const args = ['experiment', 'headless', '--arch', 'decoder', '--budget', '6144', '--head-ft', '0.5'];
    for (const kv of options.set) args.push('--set', kv);
    args.push('--data', corpus, '--tokenizer', tokenizer, '--eval-data', corpus, '--lambada-data', lambada);
    args.push('--out', out, '--log-level', 'warn');
    const child = spawn(process.execPath, [join(repoRoot(), 'bin/run.js'), ...args], {
      cwd: repoRoot(),
      env: { ...process.env, HLM_CACHE_DIR: cache() },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const saved = join(out, 'pretrain', 'ce', 'checkpoint', 'config.json');
    for (let t = 0; t < 2400 && !existsSync(saved) && child.exitCode === null; t++)
      await new Promise((res) => setTimeout(res, 50));
    child.kill('SIGKILL');
    await exited;
    killed = readExperimentResult(join(out, 'result.json'));
    savedStep = JSON.parse(readFileSync(saved, 'utf8')).hlm.step;
    r = await runHeadless(gpu, options);
  }, 240_000);

  test('the killed pretraining continued from its checkpoint, not from the start', () => {
    expect(phaseStatus(killed)['pretrain ce']).toBe('running');
    expect(r.ran[0]).toBe('pretrain ce');
    // The checkpoint the kill left (every 4 steps) is where the run went on from, up to the budget's 48 steps.
    expect(savedStep % 4).toBe(0);
    if (!(savedStep >= 4 && savedStep < 48)) throw new Error(`killed at step ${savedStep}`);
    const ce = r.result.runs.find((x) => x.variant === 'ce')!;
    expect(ce.resumedFrom).toBe(savedStep);
    const steps = readMetrics(join(out, 'pretrain', 'ce'))
      .filter((m) => 'loss' in m)
      .map((m) => m.step);
    expect(steps.at(-1)).toBe(48);
    expect(steps.indexOf(savedStep + 1)).toBeGreaterThan(0);
    expect(ce.curve.map((p) => p.step)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    expect(ce.tokens).toBe(6144);
  });

  test('CE, CWT and CWT + head FT on LAMBADA and validation cross-entropy; the head is untied', async () => {
    expect(validateExperimentResult(readExperimentResult(join(out, 'result.json')))).toEqual([]);
    expect(Object.values(phaseStatus(r.result))).toEqual(Array(6).fill('done'));
    const variants = ['ce', 'cwt', HEAD_FT_VARIANT];
    for (const section of ['LAMBADA accuracy', 'LAMBADA perplexity', 'validation cross-entropy']) {
      const s = r.result.scores.filter((x) => x.section === section);
      expect(s.map((x) => x.variant)).toEqual(variants);
      for (const x of s) if (!Number.isFinite(x.value)) throw new Error(`${section} ${x.variant}: ${x.value}`);
    }
    const ppl = r.result.scores.filter((x) => x.section === 'LAMBADA perplexity');
    for (const x of ppl) if (!(x.value > 1)) throw new Error(`perplexity ${x.value}`);
    const hft = r.result.runs.find((x) => x.variant === HEAD_FT_VARIANT)!;
    expect(hft.steps).toBe(24);
    const ck = await loadCheckpoint(join(out, 'head-ft', 'checkpoint'), { optimizer: false });
    expect(ck.config.tie_word_embeddings).toBe(false);
    expect(ck.config.objective).toBe('ce');
    expectSeries(out, 'pretraining-loss-vs-tokens', ['ce', 'cwt']);
    expectSeries(out, 'pretraining-loss-vs-time', ['ce', 'cwt']);
    expectSeries(out, 'pretraining-val-loss-vs-tokens', ['ce', 'cwt']);
    expectSeries(out, 'LAMBADA-accuracy-scores', variants);
    expectSeries(out, 'validation-cross-entropy-scores', variants);
    expect(existsSync(join(out, 'plots', 'head-fine-tuning-loss-vs-tokens.svg'))).toBe(true);
  });
});

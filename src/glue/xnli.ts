// XNLI on the data we have: the XNLI 1.0 dev set in 15 languages (dev-<lang>.tsv: premise TAB
// hypothesis TAB label, no header), the same 2,490 items in each language, line for line. There
// is no training split, so the items are split, not the languages: the first two thirds of the
// items (moved forward to the next premise, so that no premise is on both sides) are for
// fine-tuning, the rest for evaluation; no evaluated item is trained on in any language.
//
// Two protocols, as in the headless-LM paper (Table 4):
// - english: fine-tune on the English fine-tuning items, evaluate on every language's evaluation
//   items (zero-shot cross-lingual transfer);
// - target: for each language, fine-tune on that language's fine-tuning items and evaluate on its
//   evaluation items.
// The best epoch of each seed is chosen on the fine-tuning language's evaluation items (as
// finetune-glue chooses on GLUE's dev split), and every language is scored with that epoch's
// weights. Accuracy is reported per language and averaged over the languages.
import { choosePrecision, precisionOf, type PrecisionOptions } from '../train/precision.js';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { readLines } from '../data/corpus.js';
import type { Pooling } from '../model/classifier.js';
import { readCheckpointConfig } from '../model/checkpoint.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { GlueExample } from './data.js';
import { encodeGlue } from './encode.js';
import { Finetuner } from './finetune.js';
import { accuracy, meanStd, type MeanStd } from './metrics.js';
import { openForFinetuning, seedParams } from './model.js';
import { predictionsFromLogits } from './run.js';
import { trainSeeds } from './seeds.js';

/** XNLI's languages, in its usual order. */
export const XNLI_LANGUAGES = [
  'en',
  'fr',
  'es',
  'de',
  'el',
  'bg',
  'ru',
  'tr',
  'ar',
  'vi',
  'th',
  'zh',
  'hi',
  'sw',
  'ur',
] as const;
/** Class indices in MNLI's order (the Hugging Face `xnli` dataset's). */
export const XNLI_LABELS = ['entailment', 'neutral', 'contradiction'] as const;
export const XNLI_MODES = ['english', 'target'] as const;
export type XnliMode = (typeof XNLI_MODES)[number];
/** The share of the items used for fine-tuning (before moving to a premise boundary). */
export const XNLI_TRAIN_FRACTION = 2 / 3;

export const XNLI_PROTOCOL =
  'XNLI 1.0 dev only (15 languages, the same items line for line): the first two thirds of the items, moved ' +
  'forward to the next premise, fine-tune; the remaining items evaluate, in every language, so no evaluated item ' +
  "is trained on in any language. english: fine-tune on English, evaluate every language; target: each language's " +
  "own items. Each seed's best epoch is chosen on the fine-tuning language's evaluation items.";

const fileOf = (dir: string, lang: string) => join(dir, `dev-${lang}.tsv`);

/** One dev-<lang>.tsv: premise TAB hypothesis TAB label, one item a line. */
export function readXnliFile(path: string): GlueExample[] {
  const out: GlueExample[] = [];
  for (const { line, lineNo } of readLines(path)) {
    if (line.length === 0) continue;
    const f = line.split('\t');
    if (f.length !== 3)
      throw new HlmError(
        `${path}:${lineNo}: ${f.length} tab-separated columns, expected 3 (premise, hypothesis, label)`,
      );
    const label = (XNLI_LABELS as readonly string[]).indexOf(f[2].trim());
    if (label < 0)
      throw new HlmError(`${path}:${lineNo}: unknown label "${f[2].trim()}" (expected ${XNLI_LABELS.join(', ')})`);
    out.push({ a: f[0], b: f[1], label });
  }
  if (!out.length) throw new HlmError(`${path}: no items`);
  return out;
}

/**
 * The first evaluation item: ⌈n·fraction⌉, moved forward past items that share the previous
 * item's premise. Throws when that leaves nothing to evaluate.
 */
export function xnliSplit(items: readonly GlueExample[], fraction = XNLI_TRAIN_FRACTION, where = 'XNLI'): number {
  let k = Math.ceil(items.length * fraction);
  while (k > 0 && k < items.length && items[k].a === items[k - 1].a) k++;
  if (!(k > 0 && k < items.length))
    throw new HlmError(`${where}: ${items.length} items leave none for fine-tuning or none for evaluation`);
  return k;
}

export interface XnliData {
  dir: string;
  /** The languages read, in XNLI's order. */
  languages: string[];
  examples: Record<string, GlueExample[]>;
  items: number;
  /** Items [0, split) fine-tune, [split, items) evaluate. */
  split: number;
}

/** The languages with a dev-<lang>.tsv in dir, in XNLI's order (unknown codes after, sorted). */
export function xnliLanguagesIn(dir: string): string[] {
  if (!existsSync(dir)) throw new HlmError(`XNLI: ${dir} does not exist`);
  const found = readdirSync(dir)
    .map((n) => /^dev-([a-z]{2,3})\.tsv$/.exec(n)?.[1])
    .filter((x): x is string => x !== undefined);
  const known = XNLI_LANGUAGES.filter((l) => found.includes(l));
  const other = found.filter((l) => !(XNLI_LANGUAGES as readonly string[]).includes(l)).sort();
  if (!found.length) throw new HlmError(`XNLI: no dev-<lang>.tsv in ${dir}`);
  return [...known, ...other];
}

/**
 * Reads the languages asked for (default: every one in dir). The split is made on the English
 * file when there is one (else the first language's), and every language must have the same
 * number of items with the same labels, line for line.
 */
export function loadXnli(dir: string, languages?: readonly string[]): XnliData {
  const present = xnliLanguagesIn(dir);
  const want = languages?.length ? [...languages] : present;
  for (const l of want)
    if (!present.includes(l))
      throw new HlmError(`XNLI: no ${fileOf(dir, l)} (languages in ${dir}: ${present.join(', ')})`);
  const reference = present.includes('en') ? 'en' : want[0];
  const examples: Record<string, GlueExample[]> = {};
  for (const l of new Set([reference, ...want])) examples[l] = readXnliFile(fileOf(dir, l));
  const ref = examples[reference];
  for (const l of want) {
    const ex = examples[l];
    if (ex.length !== ref.length)
      throw new HlmError(
        `XNLI: ${fileOf(dir, l)} has ${ex.length} items, ${fileOf(dir, reference)} ${ref.length}: the languages ` +
          `must hold the same items, line for line`,
      );
    const i = ex.findIndex((x, k) => x.label !== ref[k].label);
    if (i >= 0)
      throw new HlmError(
        `XNLI: item ${i + 1} is ${XNLI_LABELS[ex[i].label]} in ${fileOf(dir, l)} but ${XNLI_LABELS[ref[i].label]} ` +
          `in ${fileOf(dir, reference)}: the languages must hold the same items, line for line`,
      );
  }
  const split = xnliSplit(ref, XNLI_TRAIN_FRACTION, fileOf(dir, reference));
  if (!want.includes(reference)) delete examples[reference];
  return { dir, languages: want, examples, items: ref.length, split };
}

export interface XnliOptions extends PrecisionOptions {
  model: string;
  data: string;
  /** Default: every language in data. The english protocol needs en. */
  languages?: string[];
  modes: readonly XnliMode[];
  epochs: number;
  lr: number;
  batchSize: number;
  maxSeqLen?: number;
  seeds: number[];
  pooling?: Pooling;
  warmupRatio: number;
  weightDecay: number;
  gradClip: number;
  /** Writes <out>/xnli/result.json when given. */
  out?: string;
}

export interface XnliSeedScore {
  seed: number;
  bestEpoch: number;
  /** Accuracy on the evaluation items, a fraction. */
  accuracy: number;
}

export interface XnliLanguageResult {
  language: string;
  /** The language fine-tuned on: en, or the language itself. */
  trainedOn: string;
  seeds: XnliSeedScore[];
  accuracy: MeanStd;
}

export interface XnliModeResult {
  mode: XnliMode;
  languages: XnliLanguageResult[];
  /** Per seed the mean over the languages, then mean ± std over the seeds. */
  average: MeanStd;
}

export interface XnliResult {
  task: 'xnli';
  protocol: string;
  data: string;
  items: number;
  trainItems: number;
  evalItems: number;
  model: string;
  pooling: Pooling;
  settings: { epochs: number; lr: number; batchSize: number; maxSeqLen: number; seeds: number[] };
  modes: XnliModeResult[];
  truncated: number;
  seconds: number;
}

export async function runXnli(gpu: Gpu, o: XnliOptions): Promise<XnliResult> {
  const t0 = performance.now();
  if (!o.modes.length) throw new HlmError('XNLI: no protocol to run (english, target)');
  const data = loadXnli(o.data, o.languages);
  if (o.modes.includes('english') && !data.languages.includes('en'))
    throw new HlmError(`XNLI: the english protocol fine-tunes on English; add en to the languages`);
  const { config: fileConfig } = await readCheckpointConfig(o.model);
  if (fileConfig.num_labels > 0)
    throw new HlmError(`${o.model} already has a score head; fine-tune XNLI from the checkpoint it was made from`);
  const m = await openForFinetuning(o.model, fileConfig, XNLI_LABELS.length, o);
  const train: Record<string, { tokens: number[][]; labels: number[] }> = {};
  const evalSet: Record<string, { tokens: number[][]; labels: number[] }> = {};
  let truncated = 0;
  for (const l of data.languages) {
    const ex = data.examples[l];
    const e = await encodeGlue(m.tokenizer, ex, m.sep, m.maxSeqLen);
    truncated += e.truncated;
    const labels = ex.map((x) => x.label);
    train[l] = { tokens: e.tokens.slice(0, data.split), labels: labels.slice(0, data.split) };
    evalSet[l] = { tokens: e.tokens.slice(data.split), labels: labels.slice(data.split) };
  }
  const ft = await Finetuner.create(gpu, m.config, {
    batchSize: o.batchSize,
    maxSeqLen: m.maxSeqLen,
    pooling: m.pooling,
    optimizer: 'adamw',
    weightDecay: o.weightDecay,
    gradClip: o.gradClip,
    ...precisionOf(choosePrecision(gpu, o)),
  });
  try {
    const accuracyOn = async (l: string) =>
      accuracy(predictionsFromLogits(await ft.predict(evalSet[l].tokens), XNLI_LABELS.length), evalSet[l].labels);
    /** Fine-tunes on `from` over the seeds; per seed, scores `targets` with its best epoch. */
    const fineTune = async (from: string, targets: readonly string[]) => {
      const perSeed = new Map<string, XnliSeedScore[]>(targets.map((l) => [l, []]));
      await trainSeeds(ft, { ...o, title: `XNLI ${from}`, seeds: o.seeds }, train[from], {
        init: (seed) => seedParams(m, o.model, seed),
        evaluate: async () => ({ score: await accuracyOn(from) }),
        describe: (s) => `accuracy ${(100 * s.score).toFixed(2)} (${from})`,
        seedDone: async (run, params) => {
          ft.reset(params);
          for (const l of targets)
            perSeed.get(l)!.push({
              seed: run.seed,
              bestEpoch: run.bestEpoch,
              accuracy: l === from ? run.best.score : await accuracyOn(l),
            });
        },
      });
      return targets.map((l): XnliLanguageResult => ({
        language: l,
        trainedOn: from,
        seeds: perSeed.get(l)!,
        accuracy: meanStd(perSeed.get(l)!.map((s) => s.accuracy)),
      }));
    };
    const modes: XnliModeResult[] = [];
    for (const mode of o.modes) {
      const languages: XnliLanguageResult[] = [];
      if (mode === 'english') languages.push(...(await fineTune('en', data.languages)));
      else for (const l of data.languages) languages.push(...(await fineTune(l, [l])));
      const average = meanStd(
        o.seeds.map((_, i) => languages.reduce((s, l) => s + l.seeds[i].accuracy, 0) / languages.length),
      );
      modes.push({ mode, languages, average });
    }
    const result: XnliResult = {
      task: 'xnli',
      protocol: XNLI_PROTOCOL,
      data: o.data,
      items: data.items,
      trainItems: data.split,
      evalItems: data.items - data.split,
      model: o.model,
      pooling: m.pooling,
      settings: { epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, maxSeqLen: m.maxSeqLen, seeds: o.seeds },
      modes,
      truncated,
      seconds: (performance.now() - t0) / 1000,
    };
    if (o.out) {
      const dir = join(o.out, 'xnli');
      mkdirSync(dir, { recursive: true });
      writeFileAtomic(join(dir, 'result.json'), JSON.stringify(result, null, 2) + '\n', 'XNLI result');
    }
    return result;
  } finally {
    ft.destroy();
  }
}

/** The result as a table: one row per language and protocol, accuracy ×100 mean ± std over seeds. */
export function xnliTable(r: XnliResult): string {
  const pct = (s: MeanStd) => `${(100 * s.mean).toFixed(2)} ± ${(100 * s.std).toFixed(2)}`;
  const rows = [['protocol', 'fine-tuned on', ...r.modes[0].languages.map((l) => l.language), 'average']];
  for (const mode of r.modes) {
    const trained = mode.mode === 'english' ? 'en' : 'each language';
    rows.push([mode.mode, trained, ...mode.languages.map((l) => pct(l.accuracy)), pct(mode.average)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]) => `| ${row.map((v, c) => (v ?? '').padEnd(widths[c])).join(' | ')} |`;
  return [
    `XNLI: ${r.trainItems} items fine-tune, ${r.evalItems} evaluate (of ${r.items}); accuracy ×100, mean ± std over ` +
      `${r.settings.seeds.length} seed(s)`,
    line(rows[0]),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

// `hlm finetune-glue` for one task: read the task's train and dev files, encode them, then per
// seed fine-tune a fresh copy of the checkpoint (body + a new score head) for up to `epochs`
// epochs, scoring the dev split(s) with GLUE's metrics after each epoch and keeping the best
// epoch. The best (seed, epoch) model is saved as a checkpoint like any other, plus the head
// and an `hlm.glue` record, so it can predict later (--predict) or be fine-tuned again.
//
// The defaults are the headless-LM paper's recipe: AdamW, lr 1e-5, batch 32, linear warm-up
// over the first 10% of the steps and then a constant rate, up to 10 epochs, several seeds.
import { choosePrecision, type PrecisionOptions } from '../train/precision.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { Pooling } from '../model/classifier.js';
import { encodeGlue } from './encode.js';
import { TASKS, loadGlueTask, readGlueInputs, type GlueSplit, type GlueTask } from './data.js';
import { summarizeSeeds, taskScore, type SeedSummary, type TaskScore } from './metrics.js';
import { log } from '../log.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkCheckpointDir, readCheckpointConfig, saveCheckpoint, type SaveDtype } from '../model/checkpoint.js';
import { foldScoreBias } from '../model/hf.js';
import { checkOutputDir } from '../util/output-check.js';
import { Finetuner } from './finetune.js';
import { openForFinetuning, seedParams } from './model.js';
import { trainSeeds, type EpochOf, type GlueProgress, type SeedRunOf } from './seeds.js';

export type { GlueProgress } from './seeds.js';

export interface GlueRunOptions extends PrecisionOptions {
  model: string;
  task: GlueTask;
  /** The glue_data directory; not needed to --predict with a checkpoint already fine-tuned for the task. */
  data?: string;
  epochs: number;
  lr: number;
  /** Rows of a micro-batch; a step takes gradAccum of them. */
  batchSize: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  /** Default: min(128, n_positions). */
  maxSeqLen?: number;
  seeds: number[];
  /** Results and the fine-tuned checkpoint go to `<out>/<task>/`. */
  out: string;
  /** Default: encoder mean, decoder last (or what a fine-tuned checkpoint recorded). */
  pooling?: Pooling;
  classBalanced: boolean;
  warmupRatio: number;
  weightDecay: number;
  gradClip: number;
  /** A TSV (GLUE test layout, or train/dev) to predict with the best model. */
  predict?: string;
  /**
   * Called every `logEvery` steps (default 100) or 30 s, whichever comes first, and when an epoch ends (without it,
   * epochs are logged).
   */
  progress?: (p: GlueProgress) => void;
  logEvery?: number;
  /** Save the best model as <out>/<task>/checkpoint (default true; experiments keep only the scores). */
  saveModel?: boolean;
  /** Its model.safetensors' dtype (default f32). */
  saveDtype?: SaveDtype;
}

/**
 * Check, before any work, that a run can write what it will: `<out>/<task>/` (result.json, and the best model as a
 * checkpoint directory, which must hold nothing else). Predicting with an already fine-tuned checkpoint writes
 * neither.
 */
export async function checkGlueOutputs(out: string, task: GlueTask): Promise<void> {
  const taskDir = join(out, task);
  checkOutputDir(taskDir, 'GLUE results');
  await checkCheckpointDir(join(taskDir, 'checkpoint'));
}

export type EpochRecord = EpochOf<TaskScore>;
export type SeedRun = SeedRunOf<TaskScore>;

export interface GlueTaskResult {
  task: GlueTask;
  title: string;
  /** Mean ± std over seeds of each metric at each seed's best epoch. */
  summary: SeedSummary | null;
  seeds: SeedRun[];
  /**
   * The dev metrics of always predicting the most frequent train label (STS-B: the mean score); null when only
   * predicting.
   */
  majority: TaskScore | null;
  pooling: Pooling;
  input: string;
  model: string;
  checkpoint: string | null;
  settings: {
    epochs: number;
    lr: number;
    batchSize: number;
    gradAccum: number;
    maxSeqLen: number;
    warmupRatio: number;
    weightDecay: number;
    gradClip: number;
    classBalanced: boolean;
    /** The products' precision fine-tuning ran in (--precision auto resolved). */
    precision: 'f32' | 'f16';
  };
  examples: Partial<Record<GlueSplit, number>>;
  truncated: number;
  predictions?: string[];
  seconds: number;
  /** Training tokens (real, not padding) per second, over all seeds and epochs. */
  tokensPerSecond: number | null;
}

export interface GlueRecord {
  task: GlueTask;
  pooling: Pooling;
  max_seq_len: number;
  seed: number;
  epoch: number;
  dev: TaskScore['metrics'];
  /** Where score.bias went: folded into transformer.ln_f.bias (Hugging Face's head has no bias), or kept. */
  score_bias?: 'folded into transformer.ln_f.bias' | 'kept';
}

/** Class index (argmax) per row, or the score itself for regression. */
export function predictionsFromLogits(z: Float32Array, C: number): number[] {
  const n = z.length / C;
  if (C === 1) return Array.from(z);
  return Array.from({ length: n }, (_, r) => {
    let best = 0;
    for (let c = 1; c < C; c++) if (z[r * C + c] > z[r * C + best]) best = c;
    return best;
  });
}

/** Per-class weights n / (C · n_c) for class-balanced cross-entropy. */
export function classWeights(labels: readonly number[], C: number): number[] {
  const counts = new Array(C).fill(0);
  for (const y of labels) counts[y]++;
  return counts.map((n) => (n ? labels.length / (C * n) : 0));
}

function majorityScore(
  task: GlueTask,
  trainLabels: readonly number[],
  dev: Partial<Record<GlueSplit, number[]>>,
): TaskScore {
  const spec = TASKS[task];
  let guess: number;
  if (spec.numClasses === 1) guess = trainLabels.reduce((a, b) => a + b, 0) / trainLabels.length;
  else {
    const counts = new Array(spec.numClasses).fill(0);
    for (const y of trainLabels) counts[y]++;
    guess = counts.indexOf(Math.max(...counts));
  }
  const preds = Object.fromEntries(Object.entries(dev).map(([s, ys]) => [s, ys!.map(() => guess)]));
  return taskScore(
    task,
    spec.evalSplits.length > 1 ? preds : preds[spec.evalSplits[0]],
    spec.evalSplits.length > 1 ? dev : dev[spec.evalSplits[0]]!,
  );
}

export interface GlueCheckpoint {
  config: ModelConfig;
  /** The fine-tuned parameters (not changed). */
  params: Float32Array;
  tokenizerJson?: string;
  /** The base checkpoint's hlm extras to keep. */
  hlm: Record<string, unknown>;
  record: Omit<GlueRecord, 'score_bias'>;
  /** model.safetensors' dtype (default f32). */
  dtype?: SaveDtype;
}

/**
 * Save a fine-tuned classifier with its `hlm.glue` record. A decoder pooling its last token is what Hugging Face's
 * GPT2ForSequenceClassification computes once its bias is folded into ln_f's (foldScoreBias): it is saved that way, so
 * it loads there and predicts the same; other poolings (and encoders) keep their bias and are marked as hlm's own.
 */
export async function saveGlueCheckpoint(dir: string, c: GlueCheckpoint): Promise<void> {
  const { config, record } = c;
  const hfPooling = config.causal && record.pooling === 'last';
  const folded = hfPooling ? foldScoreBias(config, c.params) : null;
  if (hfPooling && !folded)
    log.warn(`${TASKS[record.task].title}: score.bias cannot be folded (score.weight's rows are dependent); kept`);
  await saveCheckpoint(dir, {
    config,
    params: folded ?? c.params,
    tokenizerJson: c.tokenizerJson,
    hlm: { ...c.hlm, glue: { ...record, score_bias: folded ? 'folded into transformer.ln_f.bias' : 'kept' } },
    classifier: { pooling: record.pooling, labels: TASKS[record.task].labelTokens },
    dtype: c.dtype,
  });
}

export async function runGlueTask(gpu: Gpu, o: GlueRunOptions): Promise<GlueTaskResult> {
  const t0 = performance.now();
  const spec = TASKS[o.task];
  const C = spec.numClasses;
  const { config: fileConfig, hlm } = await readCheckpointConfig(o.model);
  const prior = hlm.glue as GlueRecord | undefined;
  const tuned = fileConfig.num_labels > 0;
  if (tuned && (prior?.task !== o.task || fileConfig.num_labels !== C)) {
    throw new HlmError(
      `${o.model} already has a ${fileConfig.num_labels}-output score ` +
        `head${prior ? ` for ${TASKS[prior.task]?.title ?? prior.task}` : ''}; fine-tune ${spec.title} from the ` +
        `checkpoint it was made from`,
    );
  }
  const predictOnly = Boolean(o.predict) && tuned;
  if (!predictOnly && o.data === undefined)
    throw new HlmError(
      '--data (the glue_data directory) is needed to fine-tune; only --predict with a checkpoint already ' +
        `fine-tuned for ${spec.title} goes without`,
    );
  if (!predictOnly) await checkGlueOutputs(o.out, o.task);
  const m = await openForFinetuning(o.model, fileConfig, C, o, prior);
  const { config, first, tokenizer, sep, pooling, maxSeqLen } = m;
  const input =
    `${spec.columns.b === undefined ? 'sentence' : 'sentence1 <sep> sentence2'} <sep>, <sep> = ` +
    `${JSON.stringify(await tokenizer.decode([sep]))} (id ${sep})`;
  const accum = o.gradAccum ?? 1;
  const prec = predictOnly ? undefined : choosePrecision(gpu, o);
  const settings = {
    epochs: o.epochs,
    lr: o.lr,
    batchSize: o.batchSize,
    gradAccum: accum,
    maxSeqLen,
    warmupRatio: o.warmupRatio,
    weightDecay: o.weightDecay,
    gradClip: o.gradClip,
    classBalanced: o.classBalanced,
    precision: prec?.precision ?? 'f32',
  };

  const splits: GlueSplit[] = predictOnly ? [] : ['train', ...spec.evalSplits];
  const data = predictOnly ? undefined : loadGlueTask(o.data!, o.task, splits);
  const examples: Partial<Record<GlueSplit, number>> = {};
  const enc: Partial<Record<GlueSplit, number[][]>> = {};
  const labels: Partial<Record<GlueSplit, number[]>> = {};
  let truncated = 0;
  for (const s of splits) {
    const ex = data!.splits[s]!;
    if (ex.length === 0) throw new HlmError(`${data!.files[s]}: no examples`);
    const e = await encodeGlue(tokenizer, ex, sep, maxSeqLen);
    enc[s] = e.tokens;
    labels[s] = ex.map((x) => x.label);
    examples[s] = ex.length;
    truncated += e.truncated;
  }
  if (truncated) log.info(`${spec.title}: ${truncated} inputs truncated to ${maxSeqLen} tokens`);

  const ft = await Finetuner.create(gpu, config, {
    batchSize: o.batchSize,
    gradAccum: accum,
    maxSeqLen,
    pooling,
    optimizer: 'adamw',
    weightDecay: o.weightDecay,
    gradClip: o.gradClip,
    precision: prec?.precision,
    lossScaling: prec?.lossScaling,
  });
  try {
    const scoreDev = async (): Promise<TaskScore> => {
      const preds: Partial<Record<GlueSplit, number[]>> = {};
      for (const s of spec.evalSplits) preds[s] = predictionsFromLogits(await ft.predict(enc[s]!), C);
      const one = spec.evalSplits.length === 1;
      return taskScore(o.task, one ? preds[spec.evalSplits[0]]! : preds, one ? labels[spec.evalSplits[0]]! : labels);
    };

    let runs: SeedRun[] = [];
    // Set in a callback, which control-flow narrowing does not see.
    let best = null as { score: number; params: Float32Array; seed: number; epoch: number; dev: TaskScore } | null;
    let trainTokens = 0;
    let trainSeconds = 0;
    if (!predictOnly) {
      const y = labels.train!;
      const loop = await trainSeeds(
        ft,
        { ...o, title: spec.title, classWeights: o.classBalanced && C > 1 ? classWeights(y, C) : null },
        { tokens: enc.train!, labels: y },
        {
          init: (seed) => seedParams(m, o.model, seed),
          evaluate: scoreDev,
          describe: fmtScore,
          seedDone: (run, params) => {
            if (!best || run.best.score > best.score)
              best = { score: run.best.score, params, seed: run.seed, epoch: run.bestEpoch, dev: run.best };
          },
        },
      );
      ({ runs, trainTokens, trainSeconds } = loop);
    }

    const taskDir = join(o.out, o.task);
    let checkpoint: string | null = null;
    if (best && o.saveModel !== false) {
      checkpoint = join(taskDir, 'checkpoint');
      const { glue: _old, step: _step, data: _data, run: _run, ...keep } = hlm;
      await saveGlueCheckpoint(checkpoint, {
        config,
        params: best.params,
        tokenizerJson: first.tokenizerJson,
        hlm: { ...keep, base_model: o.model },
        record: {
          task: o.task,
          pooling,
          max_seq_len: maxSeqLen,
          seed: best.seed,
          epoch: best.epoch,
          dev: best.dev.metrics,
        },
        dtype: o.saveDtype,
      });
    } else if (!best && !predictOnly) {
      throw new HlmError(`${spec.title}: nothing was trained`);
    }

    let predictions: string[] | undefined;
    if (o.predict) {
      ft.reset(best ? best.params : first.params);
      const rows = readGlueInputs(o.predict, o.task);
      const e = await encodeGlue(tokenizer, rows, sep, maxSeqLen);
      const p = predictionsFromLogits(await ft.predict(e.tokens), C);
      predictions = p.map((v) => (C === 1 ? v.toFixed(3) : spec.labelTokens![v]));
    }

    const majority = predictOnly
      ? null
      : majorityScore(o.task, labels.train!, Object.fromEntries(spec.evalSplits.map((s) => [s, labels[s]!])));
    const result: GlueTaskResult = {
      task: o.task,
      title: spec.title,
      summary: runs.length ? summarizeSeeds(runs.map((r) => r.best)) : null,
      seeds: runs,
      majority,
      pooling,
      input,
      model: o.model,
      checkpoint,
      settings,
      examples,
      truncated,
      predictions,
      seconds: (performance.now() - t0) / 1000,
      tokensPerSecond: trainSeconds > 0 ? trainTokens / trainSeconds : null,
    };
    if (!predictOnly) {
      mkdirSync(taskDir, { recursive: true });
      const json = JSON.stringify({ ...result, predictions: undefined }, null, 2) + '\n';
      writeFileAtomic(join(taskDir, 'result.json'), json, 'GLUE result');
    }
    return result;
  } finally {
    ft.destroy();
  }
}

export function fmtScore(s: TaskScore): string {
  return TASKS[s.task].metrics.map((m) => `${m} ${(100 * s.metrics[m]!).toFixed(2)}`).join(', ');
}

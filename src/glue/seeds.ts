// Fine-tuning over seeds and epochs, shared by the GLUE tasks and XNLI. Per seed: start from the
// checkpoint's weights with a score head the seed initialises, shuffle the training rows with the
// seed every epoch, train with a linear warm-up over the first `warmupRatio` of the steps and then
// a constant rate, score the evaluation data after each epoch, and keep the seed's best epoch.
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { Rng } from '../model/random.js';
import type { Finetuner } from './finetune.js';

export interface SeedLoopOptions {
  /** Names the task in logs and errors. */
  title: string;
  epochs: number;
  lr: number;
  batchSize: number;
  warmupRatio: number;
  seeds: readonly number[];
  /** Per-class weights of the loss (class-balanced training), or none. */
  classWeights?: readonly number[] | null;
  /** Micro-batches of batchSize rows per optimizer step (default 1; the Finetuner's). */
  gradAccum?: number;
  /**
   * Called every `logEvery` steps (default 100) or 30 s, whichever comes first, and when an epoch ends (without it,
   * epochs are logged).
   */
  progress?: (p: GlueProgress) => void;
  logEvery?: number;
}

export interface GlueProgress {
  title: string;
  seed: number;
  epoch: number;
  epochs: number;
  /** Steps done over every seed and epoch so far, and in all. */
  step: number;
  steps: number;
  /** Mean training loss of the epoch so far. */
  loss: number;
  examplesPerSecond: number;
  etaSeconds: number;
  /** On the report made when an epoch ends: its dev metrics (text), score (fraction) and seconds. */
  ended?: { dev: string; score: number; seconds: number };
}

/** Seconds between progress reports at most. */
const PROGRESS_SECONDS = 30;

export interface EpochOf<S> {
  epoch: number;
  trainLoss: number;
  dev: S;
  seconds: number;
}

export interface SeedRunOf<S> {
  seed: number;
  epochs: EpochOf<S>[];
  bestEpoch: number;
  best: S;
}

export interface SeedLoopHooks<S> {
  /** The starting parameters of a seed (the checkpoint, its new head initialised by the seed). */
  init(seed: number): Promise<Float32Array>;
  /** Scores the model as it is now; `score` picks the best epoch. */
  evaluate(): Promise<S>;
  describe(s: S): string;
  /** Called after each seed with its best epoch's parameters. */
  seedDone?(run: SeedRunOf<S>, params: Float32Array): Promise<void> | void;
}

export interface SeedLoopResult<S> {
  runs: SeedRunOf<S>[];
  /** Training tokens (real, not padding) and the seconds spent training them, over every seed and epoch. */
  trainTokens: number;
  trainSeconds: number;
}

export async function trainSeeds<S extends { score: number }>(
  ft: Finetuner,
  o: SeedLoopOptions,
  train: { tokens: readonly (readonly number[])[]; labels: readonly number[] },
  hooks: SeedLoopHooks<S>,
): Promise<SeedLoopResult<S>> {
  const { tokens, labels: y } = train;
  const weights = o.classWeights ?? null;
  const stepRows = o.batchSize * (o.gradAccum ?? 1);
  const perEpoch = Math.ceil(tokens.length / stepRows);
  const total = perEpoch * o.epochs;
  const allSteps = total * o.seeds.length;
  const logEvery = o.logEvery ?? 100;
  const warmup = Math.round(o.warmupRatio * total);
  const lrAt = (step: number) => (warmup > 0 && step <= warmup ? (o.lr * step) / warmup : o.lr);
  const runs: SeedRunOf<S>[] = [];
  let trainTokens = 0;
  let trainSeconds = 0;
  let stepsDone = 0;
  let lastReport = performance.now();
  const trainStart = performance.now();
  const report = (seed: number, epoch: number, loss: number, ended?: GlueProgress['ended']) => {
    lastReport = performance.now();
    const seconds = (lastReport - trainStart) / 1000;
    o.progress?.({
      title: o.title,
      seed,
      epoch,
      epochs: o.epochs,
      step: stepsDone,
      steps: allSteps,
      loss,
      examplesPerSecond: (stepsDone * o.batchSize) / seconds,
      etaSeconds: ((allSteps - stepsDone) * seconds) / stepsDone,
      ended,
    });
    if (!o.progress && ended)
      log.info(
        `${o.title} seed ${seed} epoch ${epoch}/${o.epochs}: train loss ${loss.toFixed(4)}, dev ${ended.dev} ` +
          `(${ended.seconds.toFixed(1)} s)`,
      );
  };
  for (const seed of o.seeds) {
    ft.reset(await hooks.init(seed));
    const rng = new Rng(seed, 'glue order');
    const epochs: EpochOf<S>[] = [];
    let best: { epoch: EpochOf<S>; params: Float32Array } | null = null;
    let step = 0;
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const te = performance.now();
      const order = Array.from(tokens, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      let lossSum = 0;
      let lossN = 0;
      const drain = async () => {
        for (const l of await ft.readLosses()) {
          if (!Number.isFinite(l))
            throw new HlmError(`${o.title} seed ${seed}: the loss became ${l} in epoch ${epoch}; try a lower --lr`);
          lossSum += l;
          lossN++;
        }
      };
      for (let s = 0; s < order.length; s += stepRows) {
        const rows = order.slice(s, s + stepRows);
        step++;
        ft.step(
          rows.map((i) => tokens[i]),
          rows.map((i) => y[i]),
          weights ? rows.map((i) => weights[y[i]]) : undefined,
          step,
          lrAt(step),
        );
        for (const i of rows) trainTokens += tokens[i].length;
        stepsDone++;
        if (step % logEvery === 0 || performance.now() - lastReport >= PROGRESS_SECONDS * 1000) {
          await drain();
          report(seed, epoch, lossSum / lossN);
        }
      }
      await drain();
      trainSeconds += (performance.now() - te) / 1000;
      const dev = await hooks.evaluate();
      const record = { epoch, trainLoss: lossSum / lossN, dev, seconds: (performance.now() - te) / 1000 };
      epochs.push(record);
      report(seed, epoch, record.trainLoss, { dev: hooks.describe(dev), score: dev.score, seconds: record.seconds });
      if (!best || dev.score > best.epoch.dev.score) best = { epoch: record, params: await ft.readParams() };
    }
    const run: SeedRunOf<S> = { seed, epochs, bestEpoch: best!.epoch.epoch, best: best!.epoch.dev };
    runs.push(run);
    await hooks.seedDone?.(run, best!.params);
  }
  return { runs, trainTokens, trainSeconds };
}

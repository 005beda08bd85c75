// `hlm pretrain`: resolve the run (preset, flags, --set overrides, --init, --resume), open the run
// directory (lock, recovery after a kill, refusals: run-dir.ts), prepare the data, then loop:
// batch -> one GPU step -> (every logEvery steps or 30 s) read the loss ring, write
// metrics.jsonl, report progress -> (every evalEvery) validation loss -> (every saveEvery steps,
// every saveEveryMinutes, at the end, on SIGINT/SIGTERM) a checkpoint in <out>/checkpoint.
// Divergence: the step guard skips a non-finite update on the GPU (update.ts); the host stops at
// its next readback. A checkpoint is written only when its state is finite and leads to a finite
// step (a probe of the next batch), so the one kept after a divergence is usable.
// With a time budget (maxTime) each step is waited for, so that the clock measures finished work,
// and the run ends after the step during which the budget ran out; the clock counts training only
// (not evaluation or saves) and is kept in the checkpoint, so a resumed run spends what is left.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { BatchSource, type Batch, type BatchState } from '../data/batches.js';
import { defaultCorpusPath, projectRoot } from '../data/corpus.js';
import { maskTokens } from '../data/mlm.js';
import { prepareData } from '../data/shards.js';
import { loadTokenizer, maskId, tokenizerFromJson, type Tokenizer } from '../data/tokenizer.js';
import { MODEL_CONFIG_SCHEMA, preset, validateConfig, type ModelConfig } from '../model/config.js';
import {
  fieldProblem,
  parseOverrides,
  readConfigFile,
  type ConfigRecord,
  type ConfigSchema,
} from '../model/overrides.js';
import { initParams } from '../model/params.js';
import { loadCheckpoint, readCheckpointConfig } from '../model/checkpoint.js';
import {
  PRETRAIN_SETTINGS,
  pretrainSettings,
  trainingSchema,
  TRAINING_KEYS,
  type PretrainOptions,
} from './pretrain-settings.js';
import { RunDir } from './run-dir.js';
import { SIGNAL_EXIT_CODE, StopSignals } from '../util/signals.js';
import { lrAt } from './schedule.js';
import { Trainer } from './trainer.js';
import { choosePrecision } from './precision.js';
import type { LossScaleState } from '../kernels/step-guard.js';

export type { PretrainOptions } from './pretrain-settings.js';

export interface PretrainResult {
  out: string;
  checkpoint: string;
  /** The run's id (kept across --resume), as in every metrics row. */
  runId: string;
  /** The step the run ended at: --steps, or earlier when the time budget ran out. */
  steps: number;
  stoppedBy: 'steps' | 'time';
  /** The checkpoint step a resumed run continued from (0 for a fresh run). */
  startStep: number;
  /** Seconds of training (evaluation and saves excluded), summed over every process of a resumed run. */
  trainSeconds: number;
  /** The products' precision the run trained in (--precision auto resolved), and steps skipped for an overflow. */
  precision: 'f32' | 'f16';
  overflowSkips: number;
  /** The micro-batch shape, micro-batches per step and peak learning rate used (given, or trainingDefaults). */
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  lr: number;
  /** Tokens trained on in all (steps × batch × sequence), resumed parts included. */
  tokens: number;
  finalLoss: number;
  valLoss: number | null;
  /** Validation cross-entropy over the vocabulary with the tied embeddings (a CWT decoder's on the CE scale). */
  valCe: number | null;
  tokensPerSecond: number;
  elapsedSeconds: number;
  peakGpuBytes: number;
  parameters: number;
  device: string;
}

export type Progress = (p: {
  step: number;
  steps: number;
  loss: number;
  tokensPerSecond: number;
  etaSeconds: number;
}) => void;

export const RUN_SCHEMA: ConfigSchema = { ...MODEL_CONFIG_SCHEMA, ...trainingSchema() };

/**
 * Settings in order of precedence: --set, then explicit flags, then the config file, then the
 * flags' defaults. Every value is checked against its setting, and an error names where the
 * value came from. Returns the training options and the model keys to apply to the config.
 */
export async function resolveSettings(o: PretrainOptions): Promise<{ options: PretrainOptions; model: ConfigRecord }> {
  const options: Record<string, unknown> = { ...o };
  // A caller's own values (the CLI's are checked as its flags are parsed) meet the same checks as --set and the file.
  for (const { name, flag, setting } of pretrainSettings()) {
    const v = options[name];
    if (v === undefined || (setting.multiple && Array.isArray(v))) continue;
    const problem = fieldProblem(v, setting);
    if (problem) throw new HlmError(`--${flag} must be ${problem}, got ${JSON.stringify(v)}`);
  }
  const file = o.configFile ? await readConfigFile(o.configFile, RUN_SCHEMA) : {};
  const sets = parseOverrides(o.set, RUN_SCHEMA, '--set');
  const model: ConfigRecord = {};
  for (const [source, rec] of [
    ['file', file],
    ['set', sets],
  ] as const) {
    for (const [key, value] of Object.entries(rec)) {
      const name = TRAINING_KEYS.get(key);
      if (!name) model[key] = value;
      else if (source === 'set' || !o.explicit?.includes(name)) options[name] = value;
    }
  }
  return { options: options as unknown as PretrainOptions, model };
}

/**
 * Batch, sequence and learning rate when none is given, by the model's width: the tiny preset's
 * (d ≤ 128) see 2,048 tokens a step at a high rate, which a 64-wide model takes well and which
 * gets its loss clearly below the unigram entropy within a few hundred steps; wider models get
 * the usual GPT-2-scale settings. A tiny encoder takes 128×64: masked LM predicts only 15% of
 * positions, and a masked position sees its neighbours only through attention, so it needs more
 * targets a step and profits from a short context. In 300 steps on enwiki, held-out MLM loss
 * against a unigram cross-entropy of 7.64: 16×128 gave 7.73, 64×128 7.60, 128×64 7.43 (its step
 * costs less than the decoder's: the head runs on the masked rows only). The sequence never
 * exceeds n_positions.
 */
export function trainingDefaults(config: ModelConfig): { batchSize: number; seqLen: number; lr: number } {
  const d = config.n_embd;
  const tiny = config.causal ? { batchSize: 16, seqLen: 128, lr: 6e-3 } : { batchSize: 128, seqLen: 64, lr: 6e-3 };
  const t =
    d <= 128 ? tiny : d <= 512 ? { batchSize: 16, seqLen: 512, lr: 1e-3 } : { batchSize: 8, seqLen: 1024, lr: 6e-4 };
  return { ...t, seqLen: Math.min(t.seqLen, config.n_positions) };
}

/** The held-out text used for validation when --eval-data is not given, if present. */
export function defaultEvalData(): string | undefined {
  const p = resolve(projectRoot(), '..', 'shared', 'data', 'corpus', 'wikitext-2', 'valid.txt');
  return existsSync(p) ? p : undefined;
}

interface RunState {
  config: ModelConfig;
  tokenizer: Tokenizer;
  params: Float32Array;
  moments?: { m: Float32Array; v: Float32Array };
  startStep: number;
  /** Training seconds already spent (a resumed run's checkpoint records them). */
  trainSeconds: number;
  data?: BatchState;
  /** The resumed run's id. */
  runId?: string;
  /** A resumed f16 run's loss-scaling state. */
  lossScale?: LossScaleState;
}

/** The loss-scaling state a checkpoint's hlm metadata holds (absent for an f32 run). */
function readSavedLossScale(v: unknown, dir: string): LossScaleState | undefined {
  if (v === undefined) return undefined;
  const r = v as Record<string, unknown>;
  const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (!(r && ok(r.scale) && ok(r.good_steps) && ok(r.overflows)))
    throw new HlmError(`${dir}: config.json's hlm.loss_scale is malformed (${JSON.stringify(v)})`);
  return { scale: r.scale as number, goodSteps: r.good_steps as number, overflows: r.overflows as number };
}

async function resolveRun(o: PretrainOptions, modelKeys: ConfigRecord, checkpointDir: string): Promise<RunState> {
  // With --init or --resume the checkpoint's configuration rules; repeating the same model
  // settings is fine (the same command line plus --resume), changing one is refused.
  const sameModel = (config: ModelConfig, where: string) => {
    const differ = Object.entries(modelKeys).filter(
      ([k, v]) => (config as unknown as Record<string, unknown>)[k] !== v,
    );
    if (differ.length)
      throw new HlmError(
        `${where} holds ` +
          `${differ.map(([k]) => `${k}=${(config as unknown as Record<string, unknown>)[k]}`).join(', ')}; the ` +
          `model settings (${differ.map(([k, v]) => `${k}=${v}`).join(', ')}) apply to fresh runs only`,
      );
  };
  if (o.tokenizer && (o.init || o.resume))
    throw new HlmError(
      "--tokenizer applies to a fresh run: with --init or --resume the checkpoint's tokenizer is used",
    );
  if (o.resume) {
    const ck = await loadCheckpoint(checkpointDir, { optimizer: true, weights: 'exact' });
    sameModel(ck.config, checkpointDir);
    const tokenizer = ck.tokenizerJson
      ? await tokenizerFromJson(ck.tokenizerJson, join(checkpointDir, 'tokenizer.json'))
      : await loadTokenizer('gpt2');
    const step = Number(ck.hlm.step ?? 0);
    if (o.optimizer === 'adamw' && !ck.optimizer)
      throw new HlmError(`--resume: ${checkpointDir} has no AdamW moments (optimizer.safetensors)`);
    if (ck.config.causal !== (o.arch === 'decoder'))
      throw new HlmError(
        `--resume: ${checkpointDir} holds an ${ck.config.causal ? 'decoder' : 'encoder'}, not an ${o.arch}`,
      );
    return {
      config: ck.config,
      tokenizer,
      params: ck.params,
      moments: ck.optimizer ? { m: ck.optimizer.m, v: ck.optimizer.v } : undefined,
      startStep: step,
      trainSeconds: Number(ck.hlm.train_seconds ?? 0),
      data: ck.hlm.data as BatchState | undefined,
      runId: typeof ck.hlm.run_id === 'string' ? ck.hlm.run_id : undefined,
      lossScale: readSavedLossScale(ck.hlm.loss_scale, checkpointDir),
    };
  }
  if (o.untiedHead && !(o.init && o.objective === 'ce'))
    throw new HlmError(
      '--untied-head goes with --init <checkpoint> --objective ce (head fine-tuning of a headless model)',
    );
  if (o.init) {
    const base = (await readCheckpointConfig(o.init)).config;
    sameModel(base, `--init ${o.init}`);
    const config = {
      ...base,
      objective: o.objective,
      causal: o.arch === 'decoder',
      tie_word_embeddings: o.untiedHead ? false : base.tie_word_embeddings,
    };
    validateConfig(config, `--init ${o.init}`);
    // A new untied head starts as a copy of the input embeddings (the paper's head fine-tuning).
    const ck = await loadCheckpoint(o.init, {
      optimizer: false,
      weights: 'master',
      config,
      initMissing: { seed: o.seed, match: (n) => n === 'lm_head.weight' },
    });
    if (ck.initialized.includes('lm_head.weight')) {
      const layout = ck.layout;
      const wte = layout.byName.get('transformer.wte.weight')!;
      const head = layout.byName.get('lm_head.weight')!;
      ck.params.copyWithin(head.offset, wte.offset, wte.offset + wte.size);
      log.info('lm_head.weight initialised from transformer.wte.weight');
    }
    const tokenizer = ck.tokenizerJson
      ? await tokenizerFromJson(ck.tokenizerJson, join(o.init, 'tokenizer.json'))
      : await loadTokenizer('gpt2');
    return { config, tokenizer, params: ck.params, startStep: 0, trainSeconds: 0 };
  }
  const tokenizer = await loadTokenizer(o.tokenizer ?? 'gpt2');
  const base = {
    ...preset(o.preset),
    objective: o.objective,
    causal: o.arch === 'decoder',
    vocab_size: tokenizer.vocabSize,
  };
  if (o.arch === 'encoder') {
    // The mask token is the first id past the tokenizer's vocabulary.
    base.vocab_size = tokenizer.vocabSize + 1;
    base.mask_token_id = maskId(tokenizer);
  }
  base.eos_token_id = tokenizer.eotId;
  const config = { ...base, ...modelKeys } as ModelConfig;
  validateConfig(config, o.configFile ? `--config ${o.configFile} / --set` : '--set');
  return { config, tokenizer, params: initParams(config, o.seed), startStep: 0, trainSeconds: 0 };
}

/**
 * Turn a data batch into the model's inputs and targets for the architecture. An encoder's masking is drawn from
 * (seed, draw): training passes the batch's index + 1, which is the step without gradient accumulation.
 */
function trainingPair(
  config: ModelConfig,
  tokenizer: Tokenizer,
  batch: Batch,
  draw: number,
  seed: number,
): { inputs: Int32Array; targets: Int32Array } {
  if (config.causal) return { inputs: batch.inputs, targets: batch.targets };
  const m = maskTokens(batch.inputs, {
    seed,
    step: draw,
    maskId: config.mask_token_id!,
    vocabSize: tokenizer.vocabSize,
    specialIds: tokenizer.specialIds,
  });
  return { inputs: m.inputs, targets: m.targets };
}

/** The first non-finite value of the state, as words for a message, or undefined when all are finite. */
function nonFinite(state: { params: Float32Array; m?: Float32Array; v?: Float32Array }): string | undefined {
  for (const [name, a] of [
    ['weights', state.params],
    ['first moments', state.m],
    ['second moments', state.v],
  ] as const) {
    if (!a) continue;
    // x − x is 0 exactly when x is finite.
    for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return `the ${name} hold ${a[i]} (element ${i})`;
  }
  return undefined;
}

/** Seconds between progress reports (and loss readbacks) at most, whatever --log-every says. */
const PROGRESS_SECONDS = 30;

export async function pretrain(gpu: Gpu, given: PretrainOptions, progress?: Progress): Promise<PretrainResult> {
  const { options: asked, model: modelKeys } = await resolveSettings(given);
  if (asked.resume && asked.overwrite)
    throw new HlmError('--resume continues the run in --out and --overwrite replaces it: give one of them');
  const keep = asked.keep ?? PRETRAIN_SETTINGS.keep.default;
  const saveEveryMinutes = asked.saveEveryMinutes ?? PRETRAIN_SETTINGS.saveEveryMinutes.default;
  // Before anything is written: a precision the flags contradict is refused here.
  const precision = choosePrecision(gpu, asked);
  const scaling = precision.lossScaling;
  const out = resolve(asked.out);
  const runDir = await RunDir.open(out, {
    start: asked.resume ? 'resume' : asked.overwrite ? 'overwrite' : 'fresh',
    keep,
    extraFiles: [RUN_FILE],
  });
  const checkpointDir = runDir.checkpoint;
  // Until the loop runs there is nothing to save: a signal exits at once (the lock is released on exit).
  const signals = new StopSignals((s) =>
    log.warn(`${s}: finishing the current step and saving a checkpoint; send it again to stop at once`),
  );
  let batches: BatchSource | undefined;
  let trainer: Trainer | undefined;
  try {
    const run = await resolveRun(asked, modelKeys, checkpointDir);
    const { config, tokenizer } = run;
    const defaults = trainingDefaults(config);
    const o = {
      ...asked,
      keep,
      saveEveryMinutes,
      batchSize: asked.batchSize ?? defaults.batchSize,
      seqLen: asked.seqLen ?? defaults.seqLen,
      lr: asked.lr ?? defaults.lr,
    };
    if (o.seqLen > config.n_positions)
      throw new HlmError(`--seq-len ${o.seqLen} exceeds the model's n_positions ${config.n_positions}`);
    if (run.startStep >= o.steps)
      throw new HlmError(`--resume: the checkpoint is already at step ${run.startStep}; ask for more --steps`);
    if (o.maxTime !== undefined && run.trainSeconds >= o.maxTime)
      throw new HlmError(
        `--resume: the checkpoint has trained ${run.trainSeconds.toFixed(1)} s, already past --max-time ${o.maxTime}`,
      );
    const runId = run.runId ?? newRunId();

    const dataPaths = o.data.length ? o.data : [defaultCorpusPath()];
    log.info({ data: dataPaths }, 'preparing data');
    const data = await prepareData(dataPaths, tokenizer);
    batches = BatchSource.open(data.shards, {
      batchSize: o.batchSize,
      seqLen: o.seqLen,
      order: o.order,
      seed: o.seed,
      vocabSize: tokenizer.vocabSize,
    });
    if (run.data) batches.restore(run.data);
    const evalPath = o.evalData ?? defaultEvalData();
    const evalSet =
      evalPath && o.evalEvery > 0 ? await prepareData([evalPath], tokenizer, {}, '--eval-data') : undefined;

    const accum = o.gradAccum ?? 1;
    trainer = await Trainer.create(gpu, config, {
      B: o.batchSize,
      T: o.seqLen,
      gradAccum: accum,
      optimizer: o.optimizer,
      weightDecay: o.weightDecay,
      gradClip: o.gradClip,
      historySize: o.logEvery,
      cwtTemperature: o.cwtTemperature,
      precision: precision.precision,
      lossScaling: scaling,
    });
    trainer.writeState(run.params, run.moments);
    // A resumed f16 run continues from its saved scale, unless this run fixes one (--loss-scale).
    if (scaling && run.lossScale && scaling.growth > 0) trainer.writeLossScale(run.lossScale);
    runDir.openMetrics(o.resume ? run.startStep : undefined);
    const tokensPerStep = accum * o.batchSize * o.seqLen;
    const src = batches;
    const tr = trainer;
    const evaluate = async () => {
      if (!evalSet) return null;
      const es = BatchSource.open(evalSet.shards, {
        batchSize: o.batchSize,
        seqLen: o.seqLen,
        order: 'sequential',
        seed: 0,
        vocabSize: tokenizer.vocabSize,
      });
      try {
        const pairs = Array.from({ length: o.evalBatches }, (_, i) =>
          trainingPair(config, tokenizer, es.batchAt(i), i, 1234567),
        );
        return await tr.evaluate(pairs);
      } finally {
        es.close();
      }
    };

    // The step of the newest checkpoint on disk; every one written was checked finite.
    let lastSaved: number | undefined = o.resume ? run.startStep : undefined;
    const stopped = (what: string, step: number, how: string) =>
      new HlmError(
        `${what} at step ${step}; stopped (${how}). ` +
          (lastSaved === undefined
            ? 'No checkpoint was saved before it.'
            : `The last finite checkpoint is step ${lastSaved}: ${checkpointDir}`),
      );
    // The training clock: this process's wall time less evaluation and saves, plus what the
    // checkpoint had already spent.
    const t0 = performance.now();
    let pausedMs = 0;
    const trainClock = () => run.trainSeconds + (performance.now() - t0 - pausedMs) / 1000;
    const paused = async <T>(f: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await f();
      } finally {
        pausedMs += performance.now() - t;
      }
    };
    // Set when the last step is done: the time a run trained, whatever saving it takes after.
    let endClock: number | undefined;
    const save = async (step: number) => {
      const clock = endClock ?? trainClock();
      await flush(); // the rows up to the step go to metrics.jsonl before the checkpoint claims it
      const st = await tr.readState();
      const bad = nonFinite(st);
      if (bad) throw stopped(`${bad}`, step, 'this state was not saved');
      // A checkpoint must also lead to a finite step: probe the batch of the next one without updating anything.
      const next = trainingPair(config, tokenizer, src.batchAt(src.position), src.position + 1, o.seed);
      const p = await tr.probe(next.inputs, next.targets);
      // Under loss scaling an overflowing gradient is not a divergence: that step would be skipped.
      if (!Number.isFinite(p.loss) || (!Number.isFinite(p.gradNorm) && !scaling))
        throw stopped(
          `the ${Number.isFinite(p.loss) ? `gradient norm would become ${p.gradNorm}` : `loss would become ${p.loss}`}`,
          step + 1,
          `found before saving step ${step}, which was therefore not saved`,
        );
      const lossScale = await tr.readLossScale();
      await runDir.save(
        {
          config,
          params: st.params,
          optimizer: st.m && st.v ? { step, m: st.m, v: st.v } : undefined,
          dtype: o.saveDtype,
          master: true,
          tokenizerJson: tokenizer.toJSON({ withMask: !config.causal }),
          hlm: {
            step,
            run_id: runId,
            train_seconds: clock,
            ...(lossScale
              ? {
                  loss_scale: {
                    scale: lossScale.scale,
                    good_steps: lossScale.goodSteps,
                    overflows: lossScale.overflows,
                  },
                }
              : {}),
            data: src.state(),
            tokenizer: { name: tokenizer.name, fingerprint: tokenizer.fingerprint, vocab_size: tokenizer.vocabSize },
            run: { ...o, out },
          },
          // The resolved run, in the config-file format: `hlm pretrain --config run.json` repeats it.
          extraFiles: { [RUN_FILE]: JSON.stringify(runFile(o, config), null, 2) + '\n' },
        },
        step,
      );
      lastSaved = step;
      lastSaveTime = performance.now();
      log.info(`checkpoint at step ${step}: ${checkpointDir}`);
    };

    let lastSaveTime = t0;
    let lastFlushTime = t0;
    let pending: { step: number; lr: number }[] = [];
    let finalLoss = NaN;
    let overflowSkips = 0;
    let valLoss: number | null = null;
    let valCe: number | null = null;
    const flush = async () => {
      lastFlushTime = performance.now();
      if (!pending.length) return;
      const records = await tr.readHistory(pending.length);
      const elapsed = (performance.now() - t0) / 1000;
      const lines: string[] = [];
      for (let i = 0; i < pending.length; i++) {
        const { step, lr } = pending[i];
        const { loss, gradNorm, lossScale, skipped } = records[i];
        // Loss scaling: a finite loss with a non-finite norm above scale 1 was an overflow, skipped by the guard.
        const overflow = Boolean(skipped) && Number.isFinite(loss) && !Number.isFinite(gradNorm) && lossScale! > 1;
        if (overflow) overflowSkips++;
        if (!Number.isFinite(loss) || (!Number.isFinite(gradNorm) && !overflow)) {
          runDir.appendMetrics(lines.join(''));
          // The step guard skipped this update on the GPU, and every one queued after it.
          throw stopped(
            Number.isFinite(loss) ? `the gradient norm became ${gradNorm}` : `the loss became ${loss}`,
            step,
            'its update was not applied',
          );
        }
        lines.push(
          JSON.stringify({
            step,
            loss,
            lr,
            grad_norm: overflow ? null : gradNorm,
            ...(lossScale !== undefined ? { loss_scale: lossScale, skipped: Boolean(skipped) } : {}),
            tokens: step * tokensPerStep,
            elapsed_s: Number(elapsed.toFixed(3)),
            run_id: runId,
          }) + '\n',
        );
        finalLoss = loss;
      }
      runDir.appendMetrics(lines.join(''));
      const done = pending.at(-1)!.step - run.startStep;
      const tps = (done * tokensPerStep) / elapsed;
      progress?.({
        step: pending.at(-1)!.step,
        steps: o.steps,
        loss: finalLoss,
        tokensPerSecond: tps,
        etaSeconds:
          o.maxTime !== undefined
            ? Math.max(0, o.maxTime - trainClock())
            : ((o.steps - pending.at(-1)!.step) * tokensPerStep) / tps,
      });
      pending = [];
    };

    const schedule = { lr: o.lr, warmup: o.warmup, steps: o.scheduleSteps ?? o.steps, schedule: o.schedule };
    let endStep = run.startStep;
    let stoppedBy: PretrainResult['stoppedBy'] = 'steps';
    signals.armed = true;
    for (let step = run.startStep + 1; step <= o.steps; step++) {
      const micro = Array.from({ length: accum }, () => {
        const batch = src.next();
        return trainingPair(config, tokenizer, batch, batch.index + 1, o.seed);
      });
      const lr = lrAt(step, schedule, o.maxTime === undefined ? undefined : trainClock() / o.maxTime);
      tr.step(micro, step, lr, pending.length);
      pending.push({ step, lr });
      if (o.maxTime !== undefined) await gpu.done();
      // Let a pending signal's handler run (the step is queued on the GPU; this waits for nothing).
      await new Promise((r) => setImmediate(r));
      const timeUp = o.maxTime !== undefined && trainClock() >= o.maxTime;
      if (timeUp && step < o.steps) {
        stoppedBy = 'time';
        log.info(`step ${step}: the time budget of ${o.maxTime} s has run out`);
      }
      const last = step === o.steps || timeUp;
      endStep = step;
      const evalNow = Boolean(evalSet) && (step % o.evalEvery === 0 || last);
      const saveDue = () =>
        last ||
        signals.signal !== undefined ||
        (o.saveEvery > 0 && step % o.saveEvery === 0) ||
        (o.saveEveryMinutes > 0 && performance.now() - lastSaveTime >= o.saveEveryMinutes * 60_000);
      const progressDue = performance.now() - lastFlushTime >= PROGRESS_SECONDS * 1000;
      if (pending.length === o.logEvery || evalNow || saveDue() || progressDue) await flush();
      if (last) endClock = trainClock();
      if (evalNow) {
        const v = (await paused(evaluate))!;
        valLoss = v.loss;
        valCe = v.ce;
        runDir.appendMetrics(
          JSON.stringify({
            step,
            val_loss: valLoss,
            ...(valCe !== null && config.objective === 'cwt' ? { val_ce: valCe } : {}),
            tokens: step * tokensPerStep,
            elapsed_s: Number(((performance.now() - t0) / 1000).toFixed(3)),
            run_id: runId,
          }) + '\n',
        );
        log.info(`step ${step}: validation loss ${valLoss!.toFixed(4)}`);
      }
      if (saveDue()) await paused(() => save(step));
      if (signals.signal && !last)
        throw new HlmError(
          `stopped by ${signals.signal} after step ${step}: checkpoint of step ${step} in ${checkpointDir}; continue ` +
            'with --resume',
          SIGNAL_EXIT_CODE[signals.signal],
        );
      if (last) break;
    }
    const elapsedSeconds = (performance.now() - t0) / 1000;
    return {
      out,
      checkpoint: checkpointDir,
      runId,
      steps: endStep,
      stoppedBy,
      startStep: run.startStep,
      trainSeconds: endClock ?? trainClock(),
      batchSize: o.batchSize,
      gradAccum: accum,
      precision: precision.precision,
      overflowSkips,
      seqLen: o.seqLen,
      lr: o.lr,
      tokens: endStep * tokensPerStep,
      finalLoss,
      valLoss,
      valCe,
      tokensPerSecond: ((endStep - run.startStep) * tokensPerStep) / elapsedSeconds,
      elapsedSeconds,
      peakGpuBytes: gpu.memory().bytesPeak,
      parameters: tr.model.layout.count,
      device: gpu.name,
    };
  } finally {
    signals.dispose();
    runDir.close();
    batches?.close();
    trainer?.destroy();
  }
}

/** A run's id: its start time and a random suffix, in every metrics row and in its checkpoints. */
function newRunId(): string {
  return `${new Date().toISOString().replace(/[-:]|\.\d+Z$/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** The resolved settings as a config file: every training key plus the model configuration. */
function runFile(o: PretrainOptions, config: ModelConfig): Record<string, unknown> {
  const training = Object.fromEntries(
    [...TRAINING_KEYS].map(([k, name]) => [k, o[name] ?? null]).filter(([, v]) => v !== null),
  );
  const model = Object.fromEntries(
    Object.keys(MODEL_CONFIG_SCHEMA).map((k) => [k, (config as unknown as Record<string, unknown>)[k]]),
  );
  return { ...model, ...training };
}

/** The resolved run's file beside each checkpoint. */
const RUN_FILE = 'run.json';

/** Read metrics.jsonl back (tests and the comparison script use it). */
export function readMetrics(out: string): Record<string, number>[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

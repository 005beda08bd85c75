// `hlm pretrain`: resolve the run (preset, flags, --set overrides, --init, --resume), prepare the
// data, then loop: batch -> one GPU step -> (every logEvery) read the loss ring, write
// metrics.jsonl, show progress -> (every evalEvery) validation loss -> (every saveEvery) an
// atomic checkpoint in <out>/checkpoint. A NaN or Inf loss stops the run and keeps the last
// good checkpoint.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
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
import { loadCheckpoint, readCheckpointConfig, saveCheckpoint } from '../model/checkpoint.js';
import { pretrainSettings, trainingSchema, TRAINING_KEYS, type PretrainOptions } from './pretrain-settings.js';
import { lrAt } from './schedule.js';
import { Trainer } from './trainer.js';

export type { PretrainOptions } from './pretrain-settings.js';

export interface PretrainResult {
  out: string;
  checkpoint: string;
  steps: number;
  /** The batch shape and peak learning rate used (given, or trainingDefaults). */
  batchSize: number;
  seqLen: number;
  lr: number;
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
  data?: BatchState;
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
    if (!existsSync(join(checkpointDir, 'config.json')))
      throw new HlmError(`--resume: no checkpoint in ${checkpointDir}`);
    const ck = await loadCheckpoint(checkpointDir, { optimizer: true });
    sameModel(ck.config, checkpointDir);
    const tokenizer = ck.tokenizerJson
      ? await tokenizerFromJson(ck.tokenizerJson, join(checkpointDir, 'tokenizer.json'))
      : await loadTokenizer('gpt2');
    const step = Number(ck.hlm.step ?? 0);
    if (o.optimizer === 'adamw' && !ck.optimizer)
      throw new HlmError(`--resume: ${checkpointDir} has no optimizer.safetensors`);
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
      data: ck.hlm.data as BatchState | undefined,
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
    return { config, tokenizer, params: ck.params, startStep: 0 };
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
  return { config, tokenizer, params: initParams(config, o.seed), startStep: 0 };
}

/** Turn a data batch into the model's inputs and targets for the architecture. */
function trainingPair(
  o: PretrainOptions,
  config: ModelConfig,
  tokenizer: Tokenizer,
  batch: Batch,
  step: number,
  seed: number,
): { inputs: Int32Array; targets: Int32Array } {
  if (config.causal) return { inputs: batch.inputs, targets: batch.targets };
  const m = maskTokens(batch.inputs, {
    seed,
    step,
    maskId: config.mask_token_id!,
    vocabSize: tokenizer.vocabSize,
    specialIds: tokenizer.specialIds,
  });
  return { inputs: m.inputs, targets: m.targets };
}

export async function pretrain(gpu: Gpu, given: PretrainOptions, progress?: Progress): Promise<PretrainResult> {
  const { options: asked, model: modelKeys } = await resolveSettings(given);
  const out = resolve(asked.out);
  const checkpointDir = join(out, 'checkpoint');
  const metricsPath = join(out, 'metrics.jsonl');
  if (!asked.resume && existsSync(join(checkpointDir, 'config.json'))) {
    throw new HlmError(
      `${checkpointDir} already holds a checkpoint: pass --resume to continue it, or choose another --out`,
    );
  }
  const run = await resolveRun(asked, modelKeys, checkpointDir);
  const { config, tokenizer } = run;
  const defaults = trainingDefaults(config);
  const o = {
    ...asked,
    batchSize: asked.batchSize ?? defaults.batchSize,
    seqLen: asked.seqLen ?? defaults.seqLen,
    lr: asked.lr ?? defaults.lr,
  };
  if (o.seqLen > config.n_positions)
    throw new HlmError(`--seq-len ${o.seqLen} exceeds the model's n_positions ${config.n_positions}`);
  if (run.startStep >= o.steps)
    throw new HlmError(`--resume: the checkpoint is already at step ${run.startStep}; ask for more --steps`);

  const dataPaths = o.data.length ? o.data : [defaultCorpusPath()];
  log.info({ data: dataPaths }, 'preparing data');
  const data = await prepareData(dataPaths, tokenizer);
  const batches = BatchSource.open(data.shards, {
    batchSize: o.batchSize,
    seqLen: o.seqLen,
    order: o.order,
    seed: o.seed,
    vocabSize: tokenizer.vocabSize,
  });
  if (run.data) batches.restore(run.data);
  const evalPath = o.evalData ?? defaultEvalData();
  const evalSet = evalPath && o.evalEvery > 0 ? await prepareData([evalPath], tokenizer, {}, '--eval-data') : undefined;

  const trainer = await Trainer.create(gpu, config, {
    B: o.batchSize,
    T: o.seqLen,
    optimizer: o.optimizer,
    weightDecay: o.weightDecay,
    gradClip: o.gradClip,
    historySize: o.logEvery,
    cwtTemperature: o.cwtTemperature,
  });
  try {
    trainer.writeState(run.params, run.moments);
    mkdirSync(out, { recursive: true });
    const tokensPerStep = o.batchSize * o.seqLen;
    const evaluate = async () => {
      if (!evalSet) return null;
      const src = BatchSource.open(evalSet.shards, {
        batchSize: o.batchSize,
        seqLen: o.seqLen,
        order: 'sequential',
        seed: 0,
        vocabSize: tokenizer.vocabSize,
      });
      try {
        const pairs = Array.from({ length: o.evalBatches }, (_, i) =>
          trainingPair(o, config, tokenizer, src.batchAt(i), i, 1234567),
        );
        return await trainer.evaluate(pairs);
      } finally {
        src.close();
      }
    };
    let lastSaved = run.startStep;
    const save = async (step: number) => {
      const st = await trainer.readState();
      await saveCheckpoint(checkpointDir, {
        config,
        params: st.params,
        optimizer: st.m && st.v ? { step, m: st.m, v: st.v } : undefined,
        tokenizerJson: tokenizer.toJSON({ withMask: !config.causal }),
        hlm: {
          step,
          data: batches.state(),
          tokenizer: { name: tokenizer.name, fingerprint: tokenizer.fingerprint, vocab_size: tokenizer.vocabSize },
          run: { ...o, out },
        },
        // The resolved run, in the config-file format: `hlm pretrain --config run.json` repeats it.
        extraFiles: { 'run.json': JSON.stringify(runFile(o, config), null, 2) + '\n' },
      });
      lastSaved = step;
      log.info(`checkpoint at step ${step}: ${checkpointDir}`);
    };

    const t0 = performance.now();
    let pending: { step: number; lr: number }[] = [];
    let finalLoss = NaN;
    let valLoss: number | null = null;
    let valCe: number | null = null;
    const flush = async () => {
      if (!pending.length) return;
      const records = await trainer.readHistory(pending.length);
      const elapsed = (performance.now() - t0) / 1000;
      const lines: string[] = [];
      for (let i = 0; i < pending.length; i++) {
        const { step, lr } = pending[i];
        const { loss, gradNorm } = records[i];
        if (!Number.isFinite(loss)) {
          appendFileSync(metricsPath, lines.join(''));
          throw new HlmError(
            `the loss became ${loss} at step ${step}; stopped. The last good checkpoint (step ${lastSaved}) is kept ` +
              `in ${checkpointDir}`,
          );
        }
        lines.push(
          JSON.stringify({
            step,
            loss,
            lr,
            grad_norm: gradNorm,
            tokens: step * tokensPerStep,
            elapsed_s: Number(elapsed.toFixed(3)),
          }) + '\n',
        );
        finalLoss = loss;
      }
      appendFileSync(metricsPath, lines.join(''));
      const done = pending.at(-1)!.step - run.startStep;
      const tps = (done * tokensPerStep) / elapsed;
      progress?.({
        step: pending.at(-1)!.step,
        steps: o.steps,
        loss: finalLoss,
        tokensPerSecond: tps,
        etaSeconds: ((o.steps - pending.at(-1)!.step) * tokensPerStep) / tps,
      });
      pending = [];
    };

    for (let step = run.startStep + 1; step <= o.steps; step++) {
      const batch = batches.next();
      const { inputs, targets } = trainingPair(o, config, tokenizer, batch, step, o.seed);
      const lr = lrAt(step, { lr: o.lr, warmup: o.warmup, steps: o.scheduleSteps ?? o.steps, schedule: o.schedule });
      trainer.step(inputs, targets, step, lr, pending.length);
      pending.push({ step, lr });
      const last = step === o.steps;
      if (
        pending.length === o.logEvery ||
        last ||
        (o.evalEvery > 0 && step % o.evalEvery === 0) ||
        (o.saveEvery > 0 && step % o.saveEvery === 0)
      )
        await flush();
      if (evalSet && (step % o.evalEvery === 0 || last)) {
        const v = (await evaluate())!;
        valLoss = v.loss;
        valCe = v.ce;
        appendFileSync(
          metricsPath,
          JSON.stringify({
            step,
            val_loss: valLoss,
            ...(valCe !== null && config.objective === 'cwt' ? { val_ce: valCe } : {}),
            tokens: step * tokensPerStep,
            elapsed_s: Number(((performance.now() - t0) / 1000).toFixed(3)),
          }) + '\n',
        );
        log.info(`step ${step}: validation loss ${valLoss!.toFixed(4)}`);
      }
      if ((o.saveEvery > 0 && step % o.saveEvery === 0) || last) await save(step);
    }
    const elapsedSeconds = (performance.now() - t0) / 1000;
    return {
      out,
      checkpoint: checkpointDir,
      steps: o.steps,
      batchSize: o.batchSize,
      seqLen: o.seqLen,
      lr: o.lr,
      tokens: o.steps * tokensPerStep,
      finalLoss,
      valLoss,
      valCe,
      tokensPerSecond: ((o.steps - run.startStep) * tokensPerStep) / elapsedSeconds,
      elapsedSeconds,
      peakGpuBytes: gpu.memory().bytesPeak,
      parameters: trainer.model.layout.count,
      device: gpu.name,
    };
  } finally {
    batches.close();
    trainer.destroy();
  }
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

/** Read metrics.jsonl back (tests and the comparison script use it). */
export function readMetrics(out: string): Record<string, number>[] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

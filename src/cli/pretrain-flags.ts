// The flags of `hlm pretrain`, shared with `hlm compare-objectives` (same run, both objectives).
import { Flags } from '@oclif/core';
import { deviceFlag } from './base.js';
import { HlmError } from '../errors.js';
import { PRESET_NAMES } from '../model/config.js';
import { SCHEDULES } from '../train/schedule.js';
import type { PretrainOptions, Progress } from '../train/pretrain.js';

export const pretrainFlags = {
  arch: Flags.option({
    options: ['decoder', 'encoder'] as const,
    default: 'decoder' as const,
    description: 'causal decoder (next token) or bidirectional masked encoder',
  })(),
  objective: Flags.option({
    options: ['ce', 'cwt'] as const,
    default: 'ce' as const,
    description: 'ce: softmax over the vocabulary (tied head); cwt: headless contrastive weight tying',
  })(),
  preset: Flags.option({ options: PRESET_NAMES, default: 'tiny' as const, description: 'model size' })(),
  tokenizer: Flags.string({
    description:
      'gpt2 (default), or a Hugging Face tokenizer.json (or a directory holding one), e.g. from `hlm tokenizer train`',
  }),
  config: Flags.string({
    description:
      'JSON file of settings: model keys (n_layer, n_embd, ...) and training keys (lr, steps, batch_size, ...); ' +
      'explicit flags and --set override it. Each checkpoint holds its resolved run.json',
  }),
  set: Flags.string({
    multiple: true,
    default: [],
    description: 'override key=value, model or training (e.g. n_layer=4, lr=3e-4); beats flags and --config',
  }),
  data: Flags.string({
    multiple: true,
    default: [],
    description: 'text files, directories (WikiExtractor, JSONL, plain text) or .bin token shards',
  }),
  out: Flags.string({ description: 'run directory: metrics.jsonl and checkpoint/', default: 'runs/pretrain' }),
  init: Flags.string({ description: 'start from this checkpoint directory' }),
  'untied-head': Flags.boolean({
    description:
      'with --init <cwt checkpoint> --objective ce: train a separate output layer (lm_head.weight, ' +
      'tie_word_embeddings false), initialised from the input embeddings',
    default: false,
  }),
  resume: Flags.boolean({
    description: 'continue <out>/checkpoint (weights, optimizer, data position) up to --steps',
    default: false,
  }),
  steps: Flags.integer({ default: 300, min: 1 }),
  'schedule-steps': Flags.integer({
    min: 1,
    description:
      'length of the LR schedule (default: --steps); give the final total when training in parts with --resume',
  }),
  'batch-size': Flags.integer({
    min: 1,
    description:
      'sequences per step (default by model width: 16 up to d=128 (128 for an encoder), 16 up to 512, else 8)',
  }),
  'seq-len': Flags.integer({
    min: 1,
    description:
      'tokens per sequence (default by model width: 128 (64 for an encoder), 512, 1024; at most n_positions)',
  }),
  lr: Flags.string({
    description: 'peak learning rate (default by model width: 6e-3 up to d=128, 1e-3 up to 512, else 6e-4)',
  }),
  optimizer: Flags.option({ options: ['adamw', 'sgd'] as const, default: 'adamw' as const })(),
  'weight-decay': Flags.string({
    default: '0.1',
    description: 'decoupled (AdamW) or L2 (SGD) decay of matrices and embeddings',
  }),
  warmup: Flags.integer({ default: 20, min: 0, description: 'linear warm-up steps' }),
  schedule: Flags.option({
    options: SCHEDULES,
    default: 'cosine' as const,
    description: 'after warm-up: cosine (to lr/10), linear (to 0) or constant',
  })(),
  'grad-clip': Flags.string({ default: '1', description: 'global gradient-norm clip (0 = off)' }),
  order: Flags.option({ options: ['shuffled', 'sequential'] as const, default: 'shuffled' as const })(),
  seed: Flags.integer({ default: 1 }),
  'eval-every': Flags.integer({ default: 100, min: 0, description: 'validation loss every N steps (0 = never)' }),
  'eval-data': Flags.string({ description: 'held-out text for validation (default: WikiText-2 valid when present)' }),
  'eval-batches': Flags.integer({ default: 8, min: 1 }),
  'save-every': Flags.integer({ default: 0, min: 0, description: 'checkpoint every N steps (0 = at the end only)' }),
  'log-every': Flags.integer({
    default: 10,
    min: 1,
    description: 'read the loss back and write metrics every N steps',
  }),
  'cwt-temperature': Flags.string({ default: '1', description: 'CWT only: scores are o·e / temperature' }),
  device: deviceFlag,
};

type Parsed = { [K in keyof typeof pretrainFlags]: unknown } & Record<string, unknown>;

function num(name: string, v: unknown): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new HlmError(`--${name} must be a non-negative number, got ${v}`);
  return x;
}

/** The library options for the parsed flags. */
export function pretrainOptions(f: Parsed, explicit: readonly string[] = []): PretrainOptions {
  const names: Record<string, keyof PretrainOptions> = {
    lr: 'lr',
    steps: 'steps',
    'schedule-steps': 'scheduleSteps',
    'batch-size': 'batchSize',
    'seq-len': 'seqLen',
    optimizer: 'optimizer',
    'weight-decay': 'weightDecay',
    warmup: 'warmup',
    schedule: 'schedule',
    'grad-clip': 'gradClip',
    order: 'order',
    seed: 'seed',
    'eval-every': 'evalEvery',
    'eval-batches': 'evalBatches',
    'save-every': 'saveEvery',
    'log-every': 'logEvery',
    'cwt-temperature': 'cwtTemperature',
  };
  return {
    configFile: f.config as string | undefined,
    explicit: explicit.flatMap((n) => (names[n] ? [names[n]] : [])),
    arch: f.arch as PretrainOptions['arch'],
    objective: f.objective as PretrainOptions['objective'],
    preset: f.preset as string,
    set: f.set as string[],
    tokenizer: f.tokenizer as string | undefined,
    data: f.data as string[],
    out: f.out as string,
    init: f.init as string | undefined,
    untiedHead: f['untied-head'] as boolean,
    resume: f.resume as boolean,
    steps: f.steps as number,
    scheduleSteps: f['schedule-steps'] as number | undefined,
    batchSize: f['batch-size'] as number | undefined,
    seqLen: f['seq-len'] as number | undefined,
    lr: f.lr === undefined ? undefined : num('lr', f.lr),
    optimizer: f.optimizer as PretrainOptions['optimizer'],
    weightDecay: num('weight-decay', f['weight-decay']),
    warmup: f.warmup as number,
    schedule: f.schedule as PretrainOptions['schedule'],
    gradClip: num('grad-clip', f['grad-clip']),
    order: f.order as PretrainOptions['order'],
    seed: f.seed as number,
    evalEvery: f['eval-every'] as number,
    evalData: f['eval-data'] as string | undefined,
    evalBatches: f['eval-batches'] as number,
    saveEvery: f['save-every'] as number,
    logEvery: f['log-every'] as number,
    cwtTemperature: num('cwt-temperature', f['cwt-temperature']),
  };
}

/** A one-line progress display on stderr, for terminals only. */
export const progressLine: Progress = (p) => {
  const eta =
    p.etaSeconds >= 60
      ? `${Math.floor(p.etaSeconds / 60)}m${Math.round(p.etaSeconds % 60)}s`
      : `${Math.round(p.etaSeconds)}s`;
  process.stderr.write(
    `\rstep ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${Math.round(p.tokensPerSecond)} tok/s  ETA ${eta}   ` +
      `${p.step === p.steps ? '\n' : ''}`,
  );
};

/** The flags the user typed (not defaults), from oclif's parse metadata. */
export function explicitFlags(
  metadata: { flags: Record<string, { setFromDefault?: boolean }> },
  flags: Record<string, unknown>,
): string[] {
  return Object.keys(flags).filter((k) => flags[k] !== undefined && !metadata.flags[k]?.setFromDefault);
}

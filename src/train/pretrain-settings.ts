// Every setting of `hlm pretrain` (and `hlm compare-objectives`), declared once: its name (the camelCase option of
// PretrainOptions; the flag is the same name in kebab case, and for settings a config file may hold, the key is the
// same name in snake case, as in --set, --config and the written run.json), its type, allowed values or range, its
// default and its help. The CLI builds its flags from this table and resolveSettings checks every value against it,
// so a value passes the same checks whether it comes from a flag, --set, a config file or a caller.
import type { ConfigSchema, FieldSpec } from '../model/overrides.js';
import { OBJECTIVES, PRESET_NAMES, type Objective } from '../model/config.js';
import { BATCH_ORDERS, type BatchOrder } from '../data/batches.js';
import { SAVE_DTYPES, type SaveDtype } from '../model/checkpoint.js';
import { SCHEDULES, type Schedule } from './schedule.js';
import { OPTIMIZERS, type UpdateOptions } from './update.js';
import { DEFAULT_LOSS_SCALE, DEFAULT_LOSS_SCALE_GROWTH, PRECISIONS, type PrecisionChoice } from './precision.js';

export const ARCHS = ['decoder', 'encoder'] as const;

export interface PretrainOptions {
  /** A JSON file of settings: model keys (n_layer, n_embd, ...) and training keys (lr, steps, batch_size, ...). */
  configFile?: string;
  /** Options the user gave explicitly on the command line: a config file does not override them (--set does). */
  explicit?: readonly (keyof PretrainOptions)[];
  arch: (typeof ARCHS)[number];
  objective: Objective;
  preset: string;
  set: string[];
  /** Tokenizer for a fresh run: 'gpt2' (default), or a tokenizer.json path or directory. */
  tokenizer?: string;
  data: string[];
  out: string;
  init?: string;
  /** With --init and --objective ce: a separate output layer lm_head, initialised from the input embeddings. */
  untiedHead?: boolean;
  resume: boolean;
  /** Start over in an --out that already holds a run (its checkpoints and metrics are deleted first). */
  overwrite?: boolean;
  steps: number;
  /**
   * Training-time budget in seconds (evaluation and saves excluded, summed over resumptions): the run stops after the
   * step during which it ran out; `steps` stays an upper bound.
   */
  maxTime?: number;
  /** Length of the LR schedule (default: steps). Give the final total when training in parts. */
  scheduleSteps?: number;
  /** Default: trainingDefaults(model) — the same for a fresh run, --init and --resume. */
  batchSize?: number;
  /** Micro-batches of batchSize rows per optimizer step (default 1). */
  gradAccum?: number;
  seqLen?: number;
  lr?: number;
  optimizer: UpdateOptions['optimizer'];
  weightDecay: number;
  warmup: number;
  schedule: Schedule;
  gradClip: number;
  order: BatchOrder;
  seed: number;
  evalEvery: number;
  evalData?: string;
  evalBatches: number;
  saveEvery: number;
  /** Also checkpoint after this many minutes since the last save (0 = off; default 10). */
  saveEveryMinutes?: number;
  /** Checkpoints kept: the latest at <out>/checkpoint, the ones before it under <out>/checkpoints/step-<N>/ (3). */
  keep?: number;
  /** model.safetensors' dtype (default f32); with f16 the float32 weights for --resume go to optimizer.safetensors. */
  saveDtype?: SaveDtype;
  logEvery: number;
  /** CWT score temperature (default 1). */
  cwtTemperature?: number;
  /** The products' operands: f32, f16 (mixed precision) or auto (src/train/precision.ts). */
  precision?: PrecisionChoice;
  /** f16: a fixed loss scale instead of the dynamic one. */
  lossScale?: number;
  /** f16, dynamic loss scaling: steps without an overflow before the scale doubles. */
  lossScaleGrowth?: number;
}

export interface Setting extends FieldSpec {
  /** The flag, when it is not the setting's name in kebab case. */
  flag?: string;
  /** Whether config files, --set and run.json hold the setting (as its name in snake case). */
  file?: boolean;
  /** A flag given several times (its value a list). */
  multiple?: boolean;
  default?: number | string | boolean | readonly string[];
  description?: string;
}

export type SettingName = Exclude<keyof PretrainOptions, 'explicit'>;

export const PRETRAIN_SETTINGS = {
  arch: {
    type: 'enum',
    values: ARCHS,
    default: 'decoder',
    description: 'causal decoder (next token) or bidirectional masked encoder',
  },
  objective: {
    type: 'enum',
    values: OBJECTIVES,
    default: 'ce',
    description: 'ce: softmax over the vocabulary (tied head); cwt: headless contrastive weight tying',
  },
  preset: { type: 'enum', values: PRESET_NAMES, default: 'tiny', description: 'model size' },
  tokenizer: {
    type: 'string',
    description:
      'gpt2 (default), or a Hugging Face tokenizer.json (or a directory holding one), e.g. from `hlm tokenizer train`',
  },
  configFile: {
    type: 'string',
    flag: 'config',
    description:
      'JSON file of settings: model keys (n_layer, n_embd, ...) and training keys (lr, steps, batch_size, ...); ' +
      'explicit flags and --set override it. Each checkpoint holds its resolved run.json',
  },
  set: {
    type: 'string',
    multiple: true,
    default: [],
    description: 'override key=value, model or training (e.g. n_layer=4, lr=3e-4); beats flags and --config',
  },
  data: {
    type: 'string',
    multiple: true,
    default: [],
    description: 'text files, directories (WikiExtractor, JSONL, plain text) or .bin token shards',
  },
  out: {
    type: 'string',
    default: 'runs/pretrain',
    description:
      'run directory: metrics.jsonl, checkpoint/ (the latest), checkpoints/step-<N>/ (earlier ones) and run.lock ' +
      '(one run at a time)',
  },
  init: { type: 'string', description: 'start from this checkpoint directory' },
  untiedHead: {
    type: 'boolean',
    default: false,
    description:
      'with --init <cwt checkpoint> --objective ce: train a separate output layer (lm_head.weight, ' +
      'tie_word_embeddings false), initialised from the input embeddings',
  },
  resume: {
    type: 'boolean',
    default: false,
    description:
      'continue the run in --out from <out>/checkpoint (weights, optimizer, data position, LR schedule) up to --steps',
  },
  overwrite: {
    type: 'boolean',
    default: false,
    description: 'start over in an --out that holds a run: its checkpoints and metrics.jsonl are deleted first',
  },
  steps: { type: 'int', min: 1, default: 300, file: true },
  maxTime: {
    type: 'number',
    exclusiveMin: 0,
    file: true,
    description:
      'time budget in seconds of training (evaluation and saves excluded, summed over --resume): stop after the step ' +
      'during which it ran out, and save; --steps stays an upper bound. The LR decay then follows the fraction of ' +
      'the budget spent (warm-up stays in steps)',
  },
  scheduleSteps: {
    type: 'int',
    min: 1,
    file: true,
    description:
      'length of the LR schedule (default: --steps); give the final total when training in parts with --resume',
  },
  batchSize: {
    type: 'int',
    min: 1,
    file: true,
    description:
      'sequences per step (default by model width: 16 up to d=128 (128 for an encoder), 16 up to 512, else 8)',
  },
  gradAccum: {
    type: 'int',
    min: 1,
    default: 1,
    file: true,
    description:
      'micro-batches of --batch-size rows per optimizer step: their gradients are summed, each target of the step ' +
      'weighing the same (an encoder masks each micro-batch on its own), then one clip and update. CWT negatives ' +
      'stay within each micro-batch, as in the reference implementation',
  },
  seqLen: {
    type: 'int',
    min: 1,
    file: true,
    description:
      'tokens per sequence (default by model width: 128 (64 for an encoder), 512, 1024; at most n_positions)',
  },
  lr: {
    type: 'number',
    min: 0,
    file: true,
    description: 'peak learning rate (default by model width: 6e-3 up to d=128, 1e-3 up to 512, else 6e-4)',
  },
  optimizer: { type: 'enum', values: OPTIMIZERS, default: 'adamw', file: true },
  weightDecay: {
    type: 'number',
    min: 0,
    default: 0.1,
    file: true,
    description: 'decoupled (AdamW) or L2 (SGD) decay of matrices and embeddings',
  },
  warmup: { type: 'int', min: 0, default: 20, file: true, description: 'linear warm-up steps' },
  schedule: {
    type: 'enum',
    values: SCHEDULES,
    default: 'cosine',
    file: true,
    description: 'after warm-up: cosine (to lr/10), linear (to 0) or constant',
  },
  gradClip: { type: 'number', min: 0, default: 1, file: true, description: 'global gradient-norm clip (0 = off)' },
  order: { type: 'enum', values: BATCH_ORDERS, default: 'shuffled', file: true },
  seed: { type: 'int', min: 0, default: 1, file: true },
  evalEvery: {
    type: 'int',
    min: 0,
    default: 100,
    file: true,
    description: 'validation loss every N steps (0 = never)',
  },
  evalData: {
    type: 'string',
    description: 'held-out text for validation (default: WikiText-2 valid when present)',
  },
  evalBatches: { type: 'int', min: 1, default: 8, file: true },
  saveEvery: {
    type: 'int',
    min: 0,
    default: 0,
    file: true,
    description: 'checkpoint every N steps (0 = by --save-every-minutes only); the last step always saves',
  },
  saveEveryMinutes: {
    type: 'number',
    min: 0,
    default: 10,
    file: true,
    description: 'also checkpoint once this many minutes have passed since the last save (0 = off)',
  },
  keep: {
    type: 'int',
    min: 1,
    default: 3,
    file: true,
    description:
      'checkpoints to keep: the latest at <out>/checkpoint, up to N-1 earlier ones under <out>/checkpoints/step-<N>/',
  },
  saveDtype: {
    type: 'enum',
    values: SAVE_DTYPES,
    default: 'f32',
    file: true,
    description:
      "checkpoints' model.safetensors: f32 (exact, as Hugging Face expects) or f16 (half the bytes, for inference " +
      'with generate, eval-lambada, serve...); with f16 the float32 weights stay in optimizer.safetensors ' +
      '(master_weights), so --resume continues bit for bit',
  },
  logEvery: {
    type: 'int',
    min: 1,
    default: 10,
    file: true,
    description:
      'read the loss back, write metrics.jsonl (appended as steps go) and report progress every N steps (and at ' +
      'least every 30 s)',
  },
  cwtTemperature: {
    type: 'number',
    exclusiveMin: 0,
    default: 1,
    file: true,
    description: 'CWT only: scores are o·e / temperature',
  },
  precision: {
    type: 'enum',
    values: PRECISIONS,
    default: 'auto',
    file: true,
    description:
      'operands of the matmuls: f32, or f16 (mixed precision: f32 master weights, optimizer state, accumulation, ' +
      'LayerNorm, softmax and losses; f16 copies of weights and activations, with loss scaling); auto picks the ' +
      'fastest path for the adapter and logs which (today f32: the packed-f16 path does f32 arithmetic)',
  },
  lossScale: {
    type: 'number',
    min: 1,
    file: true,
    description:
      `f16: fix the loss scale at N instead of the dynamic scale (from ${DEFAULT_LOSS_SCALE}, halved on an ` +
      'overflow, whose step is skipped)',
  },
  lossScaleGrowth: {
    type: 'int',
    min: 1,
    default: DEFAULT_LOSS_SCALE_GROWTH,
    file: true,
    description: 'f16, dynamic loss scale: double it after N steps in a row without an overflow',
  },
} as const satisfies Record<SettingName, Setting>;

const SETTINGS: [SettingName, Setting][] = Object.entries(PRETRAIN_SETTINGS) as [SettingName, Setting][];

/** The setting's flag: its name in kebab case unless the table names another. */
export function flagName(name: SettingName): string {
  const s: Setting = PRETRAIN_SETTINGS[name];
  return s.flag ?? name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The setting's key in config files, --set and run.json: its name in snake case. */
export function fileKey(name: SettingName): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The settings a config file, --set and run.json hold, by their snake_case key, in table order. */
export const TRAINING_KEYS: ReadonlyMap<string, SettingName> = new Map(
  SETTINGS.filter(([, s]) => s.file).map(([name]) => [fileKey(name), name]),
);

/** Every key a config file or --set may give: the model's and the training settings'. */
export function trainingSchema(): ConfigSchema {
  return Object.fromEntries([...TRAINING_KEYS].map(([key, name]) => [key, PRETRAIN_SETTINGS[name] as FieldSpec]));
}

/** Every setting with its flag name, in table order (the CLI builds its flags from these). */
export function pretrainSettings(): { name: SettingName; flag: string; setting: Setting }[] {
  return SETTINGS.map(([name, setting]) => ({ name, flag: flagName(name), setting }));
}

/** Every setting that has a default, at its default (what `hlm pretrain` runs with when given nothing). */
export function settingDefaults(): Partial<PretrainOptions> {
  return Object.fromEntries(
    SETTINGS.filter(([, s]) => s.default !== undefined).map(([name, s]) => [
      name,
      Array.isArray(s.default) ? [...s.default] : s.default,
    ]),
  ) as Partial<PretrainOptions>;
}

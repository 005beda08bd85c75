// Checkpoint directories: config.json (Hugging Face GPT-2 keys + `hlm`), model.safetensors
// (float32, HF names and layouts; or float16, half the bytes, for inference), optimizer.safetensors
// (AdamW moments over the flat layout, and the step; beside a float16 model.safetensors a training
// run also keeps its float32 weights there, `master_weights`, so that a resume continues bit for
// bit: see CheckpointContents' dtype), tokenizer.json when the model has its own tokenizer, with Hugging Face's
// tokenizer_config.json and special_tokens_map.json beside it (src/model/hf.ts). A classifier's
// score.bias is left out of model.safetensors when it is zero (as GPT2ForSequenceClassification
// has none), and a missing one loads as zero. Reading also takes a sharded model
// (model.safetensors.index.json), as Hugging Face writes large ones.
//
// A save is atomic: everything is written and fsynced in a temporary sibling directory
// `.NAME.tmp-*`, which is then renamed onto the target. POSIX cannot rename a directory over a
// non-empty one, so an existing checkpoint is first moved aside, to a sibling `.NAME.hlm-old`
// that is deleted once the new one is in place, or to where the caller keeps earlier
// checkpoints (`previous`). If the process dies between the two renames there is no target for
// a moment; recoverCheckpoint, run at start-up, puts the newest complete checkpoint back and
// removes what the cut-short save left. A checkpoint directory belongs to this module: it
// replaces only a directory holding checkpoint files, never one with other content. One save
// per target at a time (the run directory's lock sees to that). Directories are created with
// the usual permissions (0777 less the umask), like any other output.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { HlmError } from '../errors.js';
import { fsError, syncDir, writeFileAtomic } from '../util/atomic-write.js';
import { f16Bits, roundF16 } from '../util/f16.js';
import { testPause } from '../util/test-hooks.js';
import { fromHfConfig, toHfConfig, validateConfig, type HfClassifierOptions, type ModelConfig } from './config.js';
import {
  SHARD_INDEX_FILE,
  SPECIAL_TOKENS_FILE,
  TOKENIZER_CONFIG_FILE,
  hfTokenizerFiles,
  readShardedSafetensors,
} from './hf.js';
import { PARAM_ALIGN, canonicalParamName, initTensor, paramLayout, type ParamLayout } from './params.js';
import {
  DTYPE_SIZE,
  readSafetensorsFile,
  tensorFloat32View,
  tensorToFloat32,
  tensorToIntegers,
  writeSafetensorsFile,
  type SafeTensor,
  type SafetensorsFile,
  type TensorToWrite,
} from './safetensors.js';

export const CONFIG_FILE = 'config.json';
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
/** optimizer.safetensors' tensor of the float32 weights, kept when model.safetensors holds fewer bits. */
export const MASTER_TENSOR = 'master_weights';

/** model.safetensors' dtype: f32 (exact), or f16 (IEEE binary16, round to nearest even: half the bytes). */
export const SAVE_DTYPES = ['f32', 'f16'] as const;
export type SaveDtype = (typeof SAVE_DTYPES)[number];
export const STANDARD_FILES = [
  CONFIG_FILE,
  MODEL_FILE,
  OPTIMIZER_FILE,
  TOKENIZER_FILE,
  TOKENIZER_CONFIG_FILE,
  SPECIAL_TOKENS_FILE,
];

/** AdamW state over the flat layout (padding included, so it maps 1:1 onto the GPU buffers). */
export interface OptimizerState {
  /** Optimizer steps taken (bias correction uses it). */
  step: number;
  /** First moment, layout.total floats. */
  m: Float32Array;
  /** Second moment, layout.total floats. */
  v: Float32Array;
}

export interface CheckpointContents {
  config: ModelConfig;
  /** The flat parameters, paramLayout(config).total floats. */
  params: Float32Array;
  /** Extra entries of config.json's `hlm` object: tokenizer description, step, data position... */
  hlm?: Record<string, unknown>;
  optimizer?: OptimizerState;
  /** Contents of tokenizer.json. */
  tokenizerJson?: string;
  /** Other files to keep beside the checkpoint (e.g. the resolved run configuration), by plain file name. */
  extraFiles?: Record<string, string | Uint8Array>;
  /** A classifier's pooling and label names, for its Hugging Face config (see toHfConfig). */
  classifier?: Omit<HfClassifierOptions, 'scoreBias'>;
  /** model.safetensors' dtype (default f32). */
  dtype?: SaveDtype;
  /**
   * With a dtype other than f32: also keep the float32 weights, in optimizer.safetensors (`master_weights`, over the
   * flat layout), which a resume reads instead of model.safetensors. A training run's saves ask for it.
   */
  master?: boolean;
}

export interface LoadedCheckpoint {
  /** The directory actually read (the `.hlm-old` sibling when a save was interrupted). */
  dir: string;
  config: ModelConfig;
  hlm: Record<string, unknown>;
  layout: ParamLayout;
  params: Float32Array;
  optimizer?: OptimizerState;
  tokenizerJson?: string;
  /** Tensors of the file that the model does not use (e.g. HF's attention-mask buffers). */
  ignored: string[];
  /** Tensors missing from the file and initialised instead (see LoadOptions.initMissing). */
  initialized: string[];
}

export interface LoadOptions {
  /** Load the weights into this configuration instead of the directory's (e.g. a body plus a new classifier head). */
  config?: ModelConfig;
  /** Read optimizer.safetensors when present (default true). */
  optimizer?: boolean;
  /**
   * Where the weights come from when model.safetensors is not float32: 'model' widens its values (inference);
   * 'master' takes optimizer.safetensors' float32 `master_weights` when it has them; 'exact' takes them and refuses a
   * checkpoint without them (a resume, which must continue bit for bit). Default: 'master' when the optimizer is read,
   * else 'model'.
   */
  weights?: 'model' | 'master' | 'exact';
  /**
   * Initialise missing tensors that `match` accepts (default: the heads, lm_head.* and score.*) instead of refusing.
   */
  initMissing?: { seed: number; match?: (name: string) => boolean };
}

function oldSibling(target: string): string {
  return join(dirname(target), `.${basename(target)}.hlm-old`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A tensor's float32 values as binary16 bits; a value beyond binary16's range is refused, naming it. */
function toF16(name: string, x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const h = f16Bits(x[i]);
    // An all-ones exponent is Inf or NaN: a finite weight past ±65504 (or a non-finite one).
    if ((h & 0x7c00) === 0x7c00)
      throw new HlmError(
        `tensor '${name}' holds ${x[i]} at element ${i}, which float16 cannot hold (its largest finite value is ` +
          `65504): save it as f32`,
      );
    out[i] = h;
  }
  return out;
}

/** The model's tensors as safetensors entries: F32 views into the flat buffer (no copies), or F16 copies. */
export function modelTensors(
  layout: ParamLayout,
  params: Float32Array,
  dtype: SaveDtype = 'f32',
): Map<string, TensorToWrite> {
  if (params.length !== layout.total)
    throw new HlmError(`parameter buffer holds ${params.length} floats; the layout needs ${layout.total}`);
  return new Map(
    layout.tensors.map((t) => {
      const data = params.subarray(t.offset, t.offset + t.size);
      const entry: TensorToWrite =
        dtype === 'f16'
          ? { dtype: 'F16', shape: t.shape, data: toF16(t.name, data) }
          : { dtype: 'F32', shape: t.shape, data };
      return [t.name, entry];
    }),
  );
}

function checkFileName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || STANDARD_FILES.includes(name)) {
    throw new HlmError(
      `extra checkpoint file name '${name}' must be a plain file name other than ${STANDARD_FILES.join(', ')}`,
    );
  }
}

/**
 * Refuse to replace anything but a checkpoint: a wrong --out must not delete a user's directory. `extra` are the
 * plain files a save may add besides the standard ones (run.json). Callers check before any work starts.
 */
export async function checkCheckpointDir(target: string, extra: readonly string[] = []): Promise<void> {
  const allowed = new Set([...STANDARD_FILES, ...extra]);
  let st;
  try {
    st = await stat(target);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new HlmError(`cannot write checkpoint ${target}: it exists and is not a directory`);
  const entries = await readdir(target, { withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile() || !allowed.has(e.name)) {
      throw new HlmError(
        `refusing to replace ${target}: it holds '${e.name}', which is not a file of this checkpoint; choose ` +
          `another directory or remove it`,
      );
    }
  }
}

/** Whether `dir` holds a complete checkpoint: a readable config.json and model.safetensors (renamed in whole). */
async function completeStep(dir: string): Promise<number | undefined> {
  try {
    const json = JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8')) as { hlm?: { step?: unknown } };
    if (!(await exists(join(dir, MODEL_FILE))) && !(await exists(join(dir, SHARD_INDEX_FILE)))) return undefined;
    const step = json.hlm?.step;
    return typeof step === 'number' ? step : 0;
  } catch {
    return undefined;
  }
}

/**
 * Put `dir` in order after a save was cut short: when it is missing, the newest complete checkpoint among the one a
 * save moved aside (`.NAME.hlm-old`) and `aside` (where the caller keeps earlier checkpoints) is renamed back into
 * place; temporary directories of saves that never finished are removed, and so is a moved-aside copy that is no
 * longer needed (with `temporaries: false`, temporary directories are left: another save may be writing one).
 * Returns what was done, one sentence each (nothing when there was nothing to do).
 */
export async function recoverCheckpoint(
  dir: string,
  aside: readonly string[] = [],
  o: { temporaries?: boolean } = {},
): Promise<string[]> {
  const target = resolve(dir);
  const parent = dirname(target);
  const done: string[] = [];
  try {
    const old = oldSibling(target);
    if (!(await exists(target))) {
      let best: { dir: string; step: number } | undefined;
      for (const d of [old, ...aside]) {
        const step = await completeStep(d);
        if (step !== undefined && (!best || step > best.step)) best = { dir: d, step };
      }
      if (best) {
        await rename(best.dir, target);
        syncDir(parent);
        done.push(
          `${target} was missing (a save was cut short): restored the checkpoint of step ${best.step} from ` + best.dir,
        );
      }
    }
    if (await exists(old)) {
      await rm(old, { recursive: true, force: true });
      done.push(`removed ${old}, left by a save that was cut short after its new checkpoint was in place`);
    }
    const prefix = `.${basename(target)}.tmp-`;
    if (o.temporaries === false) return done;
    for (const name of (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith(prefix))) {
      await rm(join(parent, name), { recursive: true, force: true });
      done.push(`removed ${join(parent, name)}, the temporary directory of a save that was cut short`);
    }
  } catch (e) {
    throw fsError(e, `cannot recover checkpoint ${target}`);
  }
  return done;
}

export interface SaveOptions {
  /**
   * Where the checkpoint being replaced goes (a path in the same filesystem, its parent existing), instead of being
   * deleted: a run keeps its earlier checkpoints this way. Anything already there is replaced.
   */
  previous?: string;
}

/**
 * Write a checkpoint directory atomically: readers see the previous checkpoint or the new
 * one, never a mixture. The buffers must not change until the returned promise settles.
 */
export async function saveCheckpoint(dir: string, c: CheckpointContents, o: SaveOptions = {}): Promise<void> {
  const target = resolve(dir);
  validateConfig(c.config);
  const layout = paramLayout(c.config);
  const doing = `cannot save checkpoint ${target}`;
  const dtype = c.dtype ?? 'f32';
  if (!SAVE_DTYPES.includes(dtype))
    throw new HlmError(`${doing}: dtype must be ${SAVE_DTYPES.join(' or ')}, got ${dtype}`);
  let tensors: Map<string, TensorToWrite>;
  try {
    tensors = modelTensors(layout, c.params, dtype);
  } catch (e) {
    throw e instanceof HlmError ? new HlmError(`${doing} with --save-dtype ${dtype}: ${e.message}`) : e;
  }
  const bias = layout.byName.get('score.bias');
  const scoreBias = bias !== undefined && c.params.subarray(bias.offset, bias.offset + bias.size).some((x) => x !== 0);
  if (bias && !scoreBias) tensors.delete('score.bias');
  const tokenizerFiles = c.tokenizerJson === undefined ? {} : hfTokenizerFiles(c.tokenizerJson, c.config);
  if (c.optimizer) {
    const { step, m, v } = c.optimizer;
    if (!Number.isSafeInteger(step) || step < 0)
      throw new HlmError(`optimizer step must be a non-negative integer, got ${step}`);
    for (const [k, a] of [
      ['m', m],
      ['v', v],
    ] as const) {
      if (a.length !== layout.total)
        throw new HlmError(`optimizer moment ${k} holds ${a.length} floats; the layout needs ${layout.total}`);
    }
  }
  const extra = Object.entries(c.extraFiles ?? {});
  for (const [name] of extra) checkFileName(name);

  const parent = dirname(target);
  await mkdir(parent, { recursive: true }).catch((e) => {
    throw fsError(e, doing);
  });
  await recoverCheckpoint(target, [], { temporaries: false });
  await checkCheckpointDir(
    target,
    extra.map(([n]) => n),
  );

  // mkdir, not mkdtemp: mkdtemp makes the directory 0700, and the checkpoint would keep that mode.
  const tmp = join(parent, `.${basename(target)}.tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp).catch((e) => {
    throw fsError(e, doing);
  });
  try {
    const hf = toHfConfig(c.config, c.hlm, { ...c.classifier, scoreBias }, dtype === 'f16' ? 'float16' : 'float32');
    const config = JSON.stringify(hf, null, 2) + '\n';
    writeFileAtomic(join(tmp, CONFIG_FILE), config, 'checkpoint file');
    // transformers refuses a model.safetensors whose metadata lacks format "pt".
    await writeSafetensorsFile(join(tmp, MODEL_FILE), tensors, { format: 'pt' });
    const state: Record<string, TensorToWrite> = {};
    if (c.optimizer) {
      const { step, m, v } = c.optimizer;
      state.exp_avg = { dtype: 'F32', shape: [layout.total], data: m };
      state.exp_avg_sq = { dtype: 'F32', shape: [layout.total], data: v };
      state.step = { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(step)) };
    }
    // model.safetensors lost bits: a resume needs the float32 weights themselves.
    if (c.master && dtype !== 'f32') state[MASTER_TENSOR] = { dtype: 'F32', shape: [layout.total], data: c.params };
    if (Object.keys(state).length) {
      await writeSafetensorsFile(join(tmp, OPTIMIZER_FILE), state, {
        format: 'hlm',
        layout: 'flat',
        param_align: String(PARAM_ALIGN),
        param_total: String(layout.total),
      });
    }
    if (c.tokenizerJson !== undefined) writeFileAtomic(join(tmp, TOKENIZER_FILE), c.tokenizerJson, 'checkpoint file');
    for (const [name, text] of Object.entries(tokenizerFiles))
      writeFileAtomic(join(tmp, name), text, 'checkpoint file');
    for (const [name, data] of extra) writeFileAtomic(join(tmp, name), data, 'checkpoint file');
    syncDir(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    // A file's own message names the temporary path; say which checkpoint it was for.
    if (e instanceof HlmError) throw new HlmError(`${doing}: ${e.message}`);
    throw fsError(e, doing);
  }
  await testPause('checkpoint-written');

  const old = o.previous ? resolve(o.previous) : oldSibling(target);
  const replacing = await exists(target);
  try {
    if (replacing) {
      await rm(old, { recursive: true, force: true }); // a stale copy, or a moved-aside one no longer needed
      await rename(target, old);
      await testPause('checkpoint-swapped');
    }
    await rename(tmp, target);
  } catch (e) {
    if (replacing && !(await exists(target)) && (await exists(old))) await rename(old, target);
    await rm(tmp, { recursive: true, force: true });
    throw fsError(e, doing);
  }
  try {
    syncDir(parent);
    if (o.previous) syncDir(dirname(old));
    await testPause('checkpoint-placed');
    if (replacing && !o.previous) await rm(old, { recursive: true, force: true });
  } catch (e) {
    throw fsError(e, doing);
  }
}

/** The directory to read: the target, or the old sibling a save left when it died mid-swap. */
async function readableDir(dir: string): Promise<string> {
  const target = resolve(dir);
  if (await exists(target)) return target;
  const old = oldSibling(target);
  if (await exists(join(old, CONFIG_FILE))) return old;
  throw new HlmError(`checkpoint directory ${target} does not exist`);
}

/** Read only config.json: the model configuration and the `hlm` extras. */
export async function readCheckpointConfig(
  dir: string,
): Promise<{ dir: string; config: ModelConfig; hlm: Record<string, unknown> }> {
  const from = await readableDir(dir);
  const path = join(from, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new HlmError(`${from} is not a checkpoint directory: it has no ${CONFIG_FILE}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HlmError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return { dir: from, ...fromHfConfig(json, path) };
}

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);
const defaultInitMatch = (name: string) => name.startsWith('lm_head.') || name.startsWith('score.');

/** The longest Float32Array V8 allocates (2^32 elements on 64-bit hosts). */
const MAX_PARAMS = 2 ** 32;

/**
 * Copy a safetensors file's tensors into a new flat buffer laid out for `layout`. Names with
 * or without the `transformer.` prefix are accepted; every layout tensor must be present with
 * its exact shape (else an HlmError naming it, expected and found), unless initMissing covers it.
 */
export function paramsFromSafetensors(
  file: SafetensorsFile,
  layout: ParamLayout,
  initMissing?: LoadOptions['initMissing'],
): { params: Float32Array; ignored: string[]; initialized: string[] } {
  const where = file.where;
  const byCanonical = new Map<string, [string, SafeTensor]>();
  for (const [name, t] of file.tensors) {
    const canon = canonicalParamName(name);
    const prior = byCanonical.get(canon);
    if (prior) throw new HlmError(`${where}: tensors '${prior[0]}' and '${name}' are both ${canon}`);
    byCanonical.set(canon, [name, t]);
  }
  // Every tensor is checked before the parameters are allocated: a config.json that asks for more than the file
  // holds fails on a shape, not on an allocation.
  const { config } = layout;
  const missing = new Set<string>();
  const zero = new Set<string>();
  for (const spec of layout.tensors) {
    const found = byCanonical.get(spec.name);
    if (!found) {
      // Hugging Face's GPT2ForSequenceClassification has no bias (hlm saves a zero one that way).
      if (spec.name === 'score.bias' && byCanonical.has('score.weight')) {
        zero.add(spec.name);
        continue;
      }
      if (initMissing && (initMissing.match ?? defaultInitMatch)(spec.name)) {
        missing.add(spec.name);
        continue;
      }
      let hint = '';
      if (spec.name === 'lm_head.weight') hint = ' (the config says tie_word_embeddings false: an untied output layer)';
      if (spec.name.startsWith('score.')) hint = ` (the config asks for a ${config.num_labels}-label classifier head)`;
      throw new HlmError(`${where}: tensor '${spec.name}' is missing${hint}`);
    }
    const [name, t] = found;
    if (!sameShape(t.shape, spec.shape)) {
      const transposed = spec.shape.length === 2 && sameShape(t.shape, [spec.shape[1], spec.shape[0]]);
      const hint = transposed ? '; it is transposed (GPT-2 Conv1D weights are stored [in, out])' : '';
      throw new HlmError(
        `${where}: tensor '${name}' has shape ${fmtShape(t.shape)}, expected ${fmtShape(spec.shape)} ` +
          `(vocab_size ${config.vocab_size}, n_positions ${config.n_positions}, n_embd ${config.n_embd}, n_layer ` +
          `${config.n_layer}${config.num_labels ? `, num_labels ${config.num_labels}` : ''})${hint}`,
      );
    }
  }
  if (layout.total > MAX_PARAMS)
    throw new HlmError(`${where}: ${layout.total} parameters are more than hlm holds in one buffer (${MAX_PARAMS})`);
  const params = new Float32Array(layout.total);
  const used = new Set<string>();
  const initialized: string[] = [];
  for (const spec of layout.tensors) {
    if (zero.has(spec.name)) continue; // a new Float32Array is zero
    const out = params.subarray(spec.offset, spec.offset + spec.size);
    if (missing.has(spec.name)) {
      initTensor(spec, initMissing!.seed, out);
      initialized.push(spec.name);
      continue;
    }
    const [name, t] = byCanonical.get(spec.name)!;
    tensorToFloat32(t, name, where, out);
    for (let i = 0; i < out.length; i++) {
      // x − x is 0 exactly when x is finite (and avoids a global lookup per element).
      if (out[i] - out[i] !== 0)
        throw new HlmError(
          `${where}: tensor '${name}' holds ${out[i]} at element ${i} (file byte ` +
            `${t.fileOffset + i * DTYPE_SIZE[t.dtype]})`,
        );
    }
    used.add(name);
  }
  const ignored: string[] = [];
  for (const [name, t] of file.tensors) {
    if (used.has(name)) continue;
    if (name === 'lm_head.weight' && config.tie_word_embeddings) {
      // Some exports keep the tied output matrix; accept it only when it really is wte.
      const wte = layout.byName.get('transformer.wte.weight')!;
      if (!sameShape(t.shape, wte.shape))
        throw new HlmError(
          `${where}: tensor 'lm_head.weight' has shape ${fmtShape(t.shape)}, but the tied head must match ` +
            `transformer.wte.weight ${fmtShape(wte.shape)}`,
        );
      const head = tensorToFloat32(t, name, where);
      const emb = params.subarray(wte.offset, wte.offset + wte.size);
      for (let i = 0; i < head.length; i++) {
        if (head[i] !== emb[i]) {
          throw new HlmError(
            `${where}: tensor 'lm_head.weight' differs from transformer.wte.weight (element ${i}: ${head[i]} vs ` +
              `${emb[i]}) but config.json says tie_word_embeddings true`,
          );
        }
      }
    }
    ignored.push(name);
  }
  return { params, ignored, initialized };
}

/**
 * optimizer.safetensors: the AdamW state over `layout` (when `moments`), and the float32 weights (MASTER_TENSOR) over
 * `own`, the layout of the checkpoint's own configuration (a load into another configuration maps them by name).
 */
async function readOptimizer(
  path: string,
  layout: ParamLayout,
  o: { moments: boolean; own: ParamLayout },
): Promise<{ optimizer?: OptimizerState; master?: Float32Array }> {
  const file = await readSafetensorsFile(path);
  const get = (name: string) => {
    const t = file.tensors.get(name);
    if (!t) throw new HlmError(`${path}: tensor '${name}' is missing`);
    return t;
  };
  const flat = (name: string, of: ParamLayout) => {
    const t = get(name);
    if (!sameShape(t.shape, [of.total])) {
      throw new HlmError(
        `${path}: tensor '${name}' has shape ${fmtShape(t.shape)}, expected [${of.total}] (the flat parameter ` +
          `layout of this model; was the model configuration changed?)`,
      );
    }
    return tensorFloat32View(t, name, path);
  };
  const master = file.tensors.has(MASTER_TENSOR) ? flat(MASTER_TENSOR, o.own) : undefined;
  // A run without moments (SGD) keeps only the weights here.
  if (!o.moments || (master && !['exp_avg', 'exp_avg_sq', 'step'].some((n) => file.tensors.has(n)))) return { master };
  const stepT = get('step');
  if (stepT.shape.length !== 0)
    throw new HlmError(`${path}: tensor 'step' has shape ${fmtShape(stepT.shape)}, expected [] (a scalar)`);
  const [step] = tensorToIntegers(stepT, 'step', path);
  return { optimizer: { step, m: flat('exp_avg', layout), v: flat('exp_avg_sq', layout) }, master };
}

/**
 * Put the float32 weights (over `own`, the checkpoint's layout) into `params` (over `layout`), for every tensor the
 * model file holds, after checking that file against them: each of its values must be the master weight rounded to
 * the file's dtype, or the two files are not from one save.
 */
function takeMaster(
  file: SafetensorsFile,
  layout: ParamLayout,
  own: ParamLayout,
  params: Float32Array,
  master: Float32Array,
): void {
  const byCanonical = new Map([...file.tensors].map(([name, t]) => [canonicalParamName(name), [name, t] as const]));
  for (const spec of layout.tensors) {
    const found = byCanonical.get(spec.name);
    const from = own.byName.get(spec.name);
    if (!found || !from) continue; // a zero score.bias left out, or a tensor initialised
    const [name, t] = found;
    if (t.dtype !== 'F16' && t.dtype !== 'F32')
      throw new HlmError(`${file.where}: tensor '${name}' is ${t.dtype}; hlm keeps ${MASTER_TENSOR} beside F16 only`);
    const round = t.dtype === 'F16' ? roundF16 : (x: number) => x;
    const src = master.subarray(from.offset, from.offset + from.size);
    const dst = params.subarray(spec.offset, spec.offset + spec.size);
    for (let i = 0; i < src.length; i++) {
      if (dst[i] !== round(src[i]))
        throw new HlmError(
          `${file.where}: tensor '${name}' element ${i} is ${dst[i]}, but the float32 weights kept for resuming ` +
            `(${MASTER_TENSOR}) give ${round(src[i])} in ${t.dtype}: the two files are not from one save`,
        );
    }
    dst.set(src);
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Read a checkpoint directory (hlm's or a Hugging Face GPT-2 one with model.safetensors). */
export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<LoadedCheckpoint> {
  const { dir: from, config: fileConfig, hlm } = await readCheckpointConfig(dir);
  const config = opts.config ? validateConfig(opts.config) : fileConfig;
  const layout = paramLayout(config);
  const modelPath = join(from, MODEL_FILE);
  const indexPath = join(from, SHARD_INDEX_FILE);
  let file: SafetensorsFile;
  if (await exists(modelPath)) file = await readSafetensorsFile(modelPath);
  else if (await exists(indexPath)) file = await readShardedSafetensors(indexPath);
  else {
    const names = await readdir(from);
    const hint = names.includes('pytorch_model.bin')
      ? ': it has pytorch_model.bin only; save it again with safe_serialization=True'
      : ` (nor a sharded one, ${SHARD_INDEX_FILE})`;
    throw new HlmError(`${from} has no ${MODEL_FILE}${hint}`);
  }
  const read = paramsFromSafetensors(file, layout, opts.initMissing);
  const { params, ignored, initialized } = read;
  const optimizerPath = join(from, OPTIMIZER_FILE);
  const weights = opts.weights ?? (opts.optimizer === false ? 'model' : 'master');
  // Only weights that lost bits are looked for elsewhere.
  const lossy = [...file.tensors].find(([, t]) => t.dtype !== 'F32');
  const master = weights !== 'model' && lossy !== undefined;
  const state =
    (opts.optimizer !== false || master) && (await exists(optimizerPath))
      ? await readOptimizer(optimizerPath, layout, { moments: opts.optimizer !== false, own: paramLayout(fileConfig) })
      : {};
  if (master && state.master) takeMaster(file, layout, paramLayout(fileConfig), params, state.master);
  else if (weights === 'exact' && lossy)
    throw new HlmError(
      `${file.where} holds ${lossy[1].dtype} weights (tensor '${lossy[0]}'), and ${optimizerPath} has no float32 ` +
        `${MASTER_TENSOR} to resume from bit for bit (hlm keeps them with --save-dtype f16): start a new run from ` +
        `it with --init instead`,
    );
  const optimizer = opts.optimizer !== false ? state.optimizer : undefined;
  const tokenizerJson = await readOptional(join(from, TOKENIZER_FILE));
  return { dir: from, config, hlm, layout, params, optimizer, tokenizerJson, ignored, initialized };
}

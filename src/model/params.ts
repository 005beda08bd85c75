// The flat parameter layout. Every parameter lives in one Float32 buffer, in Hugging Face
// GPT-2's names and layouts, so the optimizer is one kernel over one buffer and gradients use
// the same offsets in a second buffer of the same size. Each tensor starts on a 64-float
// (256-byte) boundary: 256 is the largest minStorageBufferOffsetAlignment WebGPU allows, so
// any tensor can be bound on its own on every adapter, and vec4 loads are always aligned.
// The padding between tensors is zero in the parameters and must stay zero in the gradients.
import { HlmError } from '../errors.js';
import { validateConfig, type ModelConfig } from './config.js';
import { Rng, checkSeed } from './random.js';

/** Alignment of every tensor's offset and of the total, in floats. */
export const PARAM_ALIGN = 64;

export type ParamInit = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' };

export interface ParamTensor {
  /** Hugging Face name, e.g. `transformer.h.0.attn.c_attn.weight`. */
  name: string;
  /** Row-major shape; Conv1D weights are [in, out] (y = x·W + b). */
  shape: readonly number[];
  /** Offset in floats into the flat buffer (a multiple of PARAM_ALIGN). */
  offset: number;
  /** Number of floats (product of the shape). */
  size: number;
  init: ParamInit;
  /** Weight decay applies (matrices and embeddings; not biases or LayerNorm parameters). */
  decay: boolean;
}

export interface ParamLayout {
  config: ModelConfig;
  tensors: readonly ParamTensor[];
  /** Length of the flat buffer in floats, padding included (a multiple of PARAM_ALIGN). */
  total: number;
  /** Number of parameters, padding excluded. */
  count: number;
  byName: ReadonlyMap<string, ParamTensor>;
}

/** The per-block tensors, by their name inside `transformer.h.{i}.`. */
export const BLOCK_TENSORS = [
  'ln_1.weight',
  'ln_1.bias',
  'attn.c_attn.weight',
  'attn.c_attn.bias',
  'attn.c_proj.weight',
  'attn.c_proj.bias',
  'ln_2.weight',
  'ln_2.bias',
  'mlp.c_fc.weight',
  'mlp.c_fc.bias',
  'mlp.c_proj.weight',
  'mlp.c_proj.bias',
] as const;
export type BlockTensorName = (typeof BLOCK_TENSORS)[number];

/** The output projection's tensor: tied, the input embeddings; untied, lm_head (CE and CWT alike). */
export type OutputWeight = 'transformer.wte.weight' | 'lm_head.weight';

/**
 * The one place that decides which tensor projects hidden states onto the vocabulary: the
 * training CE head, the decoder's logits and LAMBADA scoring all read it from here.
 */
export function outputWeight(config: Pick<ModelConfig, 'tie_word_embeddings'>): OutputWeight {
  return config.tie_word_embeddings ? 'transformer.wte.weight' : 'lm_head.weight';
}

export function alignUp(n: number, align = PARAM_ALIGN): number {
  return Math.ceil(n / align) * align;
}

export function paramLayout(config: ModelConfig): ParamLayout {
  validateConfig(config);
  const { vocab_size: V, n_positions: P, n_embd: d, n_layer: L, num_labels: C } = config;
  const std = 0.02;
  // GPT-2: residual projections are scaled by 1/sqrt(2·n_layer), two per block.
  const projStd = std / Math.sqrt(2 * L);
  const tensors: ParamTensor[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], init: ParamInit) => {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, offset, size, init, decay: shape.length >= 2 });
    offset = alignUp(offset + size);
  };
  const normal = (s: number): ParamInit => ({ kind: 'normal', std: s });
  const zeros: ParamInit = { kind: 'zeros' };
  const ones: ParamInit = { kind: 'ones' };

  add('transformer.wte.weight', [V, d], normal(std));
  add('transformer.wpe.weight', [P, d], normal(std));
  for (let i = 0; i < L; i++) {
    const h = `transformer.h.${i}.`;
    add(`${h}ln_1.weight`, [d], ones);
    add(`${h}ln_1.bias`, [d], zeros);
    add(`${h}attn.c_attn.weight`, [d, 3 * d], normal(std));
    add(`${h}attn.c_attn.bias`, [3 * d], zeros);
    add(`${h}attn.c_proj.weight`, [d, d], normal(projStd));
    add(`${h}attn.c_proj.bias`, [d], zeros);
    add(`${h}ln_2.weight`, [d], ones);
    add(`${h}ln_2.bias`, [d], zeros);
    add(`${h}mlp.c_fc.weight`, [d, 4 * d], normal(std));
    add(`${h}mlp.c_fc.bias`, [4 * d], zeros);
    add(`${h}mlp.c_proj.weight`, [4 * d, d], normal(projStd));
    add(`${h}mlp.c_proj.bias`, [d], zeros);
  }
  add('transformer.ln_f.weight', [d], ones);
  add('transformer.ln_f.bias', [d], zeros);
  if (outputWeight(config) === 'lm_head.weight') add('lm_head.weight', [V, d], normal(std));
  if (C > 0) {
    add('score.weight', [C, d], normal(std));
    add('score.bias', [C], zeros);
  }
  if (offset > Number.MAX_SAFE_INTEGER) throw new HlmError('model too large');
  return {
    config,
    tensors,
    total: offset,
    count: tensors.reduce((a, t) => a + t.size, 0),
    byName: new Map(tensors.map((t) => [t.name, t])),
  };
}

/** Parameters of a configuration, padding excluded (GPT-2 124M with the tied head: 124,439,808). */
export function paramCount(config: ModelConfig): number {
  return paramLayout(config).count;
}

const BODY_PREFIXES = ['wte.', 'wpe.', 'h.', 'ln_f.'];

/**
 * The layout's name for a tensor name found in a file: GPT2Model checkpoints (and some
 * conversions) store the body without the `transformer.` prefix.
 */
export function canonicalParamName(name: string): string {
  return BODY_PREFIXES.some((p) => name.startsWith(p)) ? `transformer.${name}` : name;
}

export function findTensor(layout: ParamLayout, name: string): ParamTensor {
  const t = layout.byName.get(canonicalParamName(name));
  if (!t)
    throw new HlmError(
      `no parameter named '${name}' in this model (${layout.tensors.length} tensors, e.g. ${layout.tensors[0].name})`,
    );
  return t;
}

export function blockTensor(layout: ParamLayout, layer: number, name: BlockTensorName): ParamTensor {
  if (!Number.isInteger(layer) || layer < 0 || layer >= layout.config.n_layer)
    throw new HlmError(`layer ${layer} out of range [0, ${layout.config.n_layer})`);
  return findTensor(layout, `transformer.h.${layer}.${name}`);
}

function checkFlat(params: Float32Array, layout: ParamLayout, what = 'parameter buffer'): void {
  if (params.length !== layout.total)
    throw new HlmError(`${what} holds ${params.length} floats; the layout needs ${layout.total}`);
}

/** One tensor of the flat buffer, as a view that shares its memory. */
export function tensorView(params: Float32Array, layout: ParamLayout, name: string): Float32Array {
  checkFlat(params, layout);
  const t = findTensor(layout, name);
  return params.subarray(t.offset, t.offset + t.size);
}

/** Write a tensor's initial values into `out` (its slice of the flat buffer). */
export function initTensor(t: ParamTensor, seed: number, out: Float32Array): void {
  if (out.length !== t.size) throw new Error(`initTensor ${t.name}: ${out.length} floats given, ${t.size} needed`);
  switch (t.init.kind) {
    case 'zeros':
      out.fill(0);
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'normal':
      new Rng(seed, t.name).fillNormal(out, t.init.std);
      break;
  }
}

/**
 * GPT-2 initialisation: weights normal(0, 0.02), residual projections normal(0, 0.02/sqrt(2L)),
 * LayerNorm weight 1 and bias 0, other biases 0. Each tensor draws from its own stream keyed
 * by (seed, name): the same seed gives the same body whatever heads are attached.
 */
export function initParams(config: ModelConfig | ParamLayout, seed: number): Float32Array {
  checkSeed(seed);
  const layout = 'tensors' in config ? config : paramLayout(config);
  const params = new Float32Array(layout.total);
  for (const t of layout.tensors) initTensor(t, seed, params.subarray(t.offset, t.offset + t.size));
  return params;
}

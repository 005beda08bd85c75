// A whole GPT-2 in float64 over Hugging Face's tensor names and layouts: the model-level
// reference that training steps, checkpoint round-trips and LAMBADA scoring are checked
// against. Built from the op references of this folder, each checked on its own, so a
// disagreement here points at the wiring rather than an op.
//
// Pre-LN blocks: x ← x + c_proj(attn(c_attn(ln_1(x)))); x ← x + mlp.c_proj(gelu(c_fc(ln_2(x))));
// then ln_f. Heads: `ce`, logits = h·wteᵀ (tied), mean cross-entropy over targets ≥ 0; `cwt`,
// the CWT loss over the positions whose target is ≥ 0 taken in row-major (b, t) order, scored
// against the targets' rows of wte. Either way wte's gradient adds the head's share to the
// input gather's.
import { type Vec, expectDims, expectLength } from './shapes.js';
import { embedding, embeddingBackward } from './embedding.js';
import { layerNorm, layerNormBackward } from './layernorm.js';
import { linear, linearBackward } from './linear.js';
import { attention, attentionBackward, type AttentionOptions } from './attention.js';
import { gelu, geluBackward } from './gelu.js';
import { crossEntropyTied, crossEntropyTiedBackward } from './crossentropy.js';
import { cwtLoss, cwtLossBackward } from './cwt.js';
import { logSumExpRows } from './softmax.js';
import { matmul } from './matmul.js';

/** Hugging Face GPT2Config's keys, plus whether attention is causal (decoder) or not (encoder). */
export interface Gpt2Config {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  layer_norm_epsilon?: number; // 1e-5
  causal: boolean;
}

/**
 * A head given as code (e.g. the GLUE classifier in classifier.ts): the loss and d loss / d hidden
 * from the final hidden states [B·T, d], plus the gradients of its own parameters.
 */
export type CustomHead = (hidden: Float64Array) => {
  loss: number;
  count: number;
  dHidden: Float64Array;
  grads?: Record<string, Float64Array>;
};

export type Gpt2Head = 'ce' | 'cwt' | CustomHead;

export interface Gpt2Options {
  /** Key padding mask: the valid length of each of the B rows (see attention.ts). */
  lengths?: Vec;
  /** CWT temperature, default 1. */
  temperature?: number;
}

/** Every parameter's Hugging Face name and shape, in the order GPT2LMHeadModel's state dict lists them. */
export function gpt2ParamShapes(config: Gpt2Config): Record<string, number[]> {
  const { vocab_size: V, n_positions: P, n_embd: d, n_layer: L } = config;
  expectDims({ vocab_size: V, n_positions: P, n_embd: d, n_layer: L, n_head: config.n_head });
  if (config.n_head === 0 || d % config.n_head !== 0)
    throw new RangeError(`gpt2: n_embd = ${d} is not a multiple of n_head = ${config.n_head}`);
  const shapes: Record<string, number[]> = { 'transformer.wte.weight': [V, d], 'transformer.wpe.weight': [P, d] };
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}.`;
    Object.assign(shapes, {
      [p + 'ln_1.weight']: [d],
      [p + 'ln_1.bias']: [d],
      [p + 'attn.c_attn.weight']: [d, 3 * d],
      [p + 'attn.c_attn.bias']: [3 * d],
      [p + 'attn.c_proj.weight']: [d, d],
      [p + 'attn.c_proj.bias']: [d],
      [p + 'ln_2.weight']: [d],
      [p + 'ln_2.bias']: [d],
      [p + 'mlp.c_fc.weight']: [d, 4 * d],
      [p + 'mlp.c_fc.bias']: [4 * d],
      [p + 'mlp.c_proj.weight']: [4 * d, d],
      [p + 'mlp.c_proj.bias']: [d],
    });
  }
  shapes['transformer.ln_f.weight'] = [d];
  shapes['transformer.ln_f.bias'] = [d];
  return shapes;
}

function checkParams(params: Record<string, Vec>, config: Gpt2Config) {
  for (const [name, shape] of Object.entries(gpt2ParamShapes(config))) {
    if (!(name in params)) throw new RangeError(`gpt2: parameter ${name} is missing`);
    expectLength(
      `gpt2 ${name}`,
      params[name],
      shape.reduce((a, b) => a * b, 1),
    );
  }
}

/** What the backward needs from one block's forward. */
interface BlockCache {
  x: Float64Array; // block input (residual stream)
  ln1: Float64Array;
  qkv: Float64Array;
  att: Float64Array;
  x1: Float64Array; // after the attention residual
  ln2: Float64Array;
  fc: Float64Array;
  act: Float64Array;
}

function trunkForward(
  params: Record<string, Vec>,
  config: Gpt2Config,
  inputs: Vec,
  B: number,
  T: number,
  opts: Gpt2Options,
) {
  checkParams(params, config);
  expectDims({ B, T });
  expectLength('gpt2 inputs', inputs, B * T);
  const d = config.n_embd;
  const N = B * T;
  const eps = config.layer_norm_epsilon ?? 1e-5;
  const attOpts: AttentionOptions = { causal: config.causal, lengths: opts.lengths };
  let x = embedding(params['transformer.wte.weight'], params['transformer.wpe.weight'], inputs, B, T, d);
  const blocks: BlockCache[] = [];
  for (let i = 0; i < config.n_layer; i++) {
    const p = (name: string) => params[`transformer.h.${i}.${name}`];
    const ln1 = layerNorm(x, p('ln_1.weight'), p('ln_1.bias'), N, d, eps).out;
    const qkv = linear(ln1, p('attn.c_attn.weight'), p('attn.c_attn.bias'), N, d, 3 * d);
    const att = attention(qkv, B, T, d, config.n_head, attOpts).out;
    const proj = linear(att, p('attn.c_proj.weight'), p('attn.c_proj.bias'), N, d, d);
    const x1 = x.map((v, j) => v + proj[j]);
    const ln2 = layerNorm(x1, p('ln_2.weight'), p('ln_2.bias'), N, d, eps).out;
    const fc = linear(ln2, p('mlp.c_fc.weight'), p('mlp.c_fc.bias'), N, d, 4 * d);
    const act = gelu(fc);
    const mlp = linear(act, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'), N, 4 * d, d);
    blocks.push({ x, ln1, qkv, att, x1, ln2, fc, act });
    x = x1.map((v, j) => v + mlp[j]);
  }
  const hidden = layerNorm(x, params['transformer.ln_f.weight'], params['transformer.ln_f.bias'], N, d, eps).out;
  return { blocks, xFinal: x, hidden, attOpts, eps };
}

/**
 * Forward only. inputs [B, T] token ids. Returns hidden [B, T, d], the final LayerNorm's
 * output, and (unless opts.logProbs is false) logProbs [B, T, V]: log-softmax of the tied
 * logits h·wteᵀ at every position, what LAMBADA scores (for a CWT model too, whose input
 * embeddings serve as output head).
 */
export function gpt2Forward(
  params: Record<string, Vec>,
  config: Gpt2Config,
  inputs: Vec,
  B: number,
  T: number,
  opts: Gpt2Options & { logProbs?: boolean } = {},
): { hidden: Float64Array; logProbs?: Float64Array } {
  const { hidden } = trunkForward(params, config, inputs, B, T, opts);
  if (opts.logProbs === false) return { hidden };
  const N = B * T;
  const V = config.vocab_size;
  const logits = matmul(hidden, params['transformer.wte.weight'], N, V, config.n_embd, false, true);
  const lse = logSumExpRows(logits, N, V);
  for (let n = 0; n < N; n++) for (let v = 0; v < V; v++) logits[n * V + v] -= lse[n];
  return { hidden, logProbs: logits };
}

/**
 * The CWT head's K rows: the positions with a target ≥ 0 in row-major order, their hidden states [K, d] and target ids
 * [K].
 */
function cwtRows(hidden: Float64Array, targets: Vec, d: number) {
  const pos: number[] = [];
  for (let n = 0; n < targets.length; n++) if (targets[n] >= 0) pos.push(n);
  const hK = new Float64Array(pos.length * d);
  pos.forEach((n, k) => hK.set(hidden.subarray(n * d, (n + 1) * d), k * d));
  return { pos, hK, tK: pos.map((n) => targets[n]) };
}

/** The loss alone (no backward), e.g. for evaluation or finite differences; same conventions as gpt2LossAndGrads. */
export function gpt2Loss(...args: Parameters<typeof gpt2LossAndGrads>): { loss: number; count: number } {
  const [params, config, inputs, targets, B, T, head, opts = {}] = args;
  const { hidden } = trunkForward(params, config, inputs, B, T, opts);
  expectLength('gpt2 targets', targets, B * T);
  const d = config.n_embd;
  const wte = params['transformer.wte.weight'];
  if (typeof head === 'function') {
    const { loss, count } = head(hidden);
    return { loss, count };
  }
  if (head === 'ce') {
    const { loss, count } = crossEntropyTied(hidden, wte, targets, B * T, config.vocab_size, d);
    return { loss, count };
  }
  if (head === 'cwt') {
    const { pos, hK, tK } = cwtRows(hidden, targets, d);
    return { loss: cwtLoss(hK, wte, tK, pos.length, d, opts.temperature).loss, count: pos.length };
  }
  throw new RangeError(`gpt2: unknown head ${String(head)}`);
}

/**
 * Loss and the gradient of every parameter (same names and lengths as gpt2ParamShapes).
 * inputs and targets are [B, T] (targets −1 = ignored; a decoder's targets are its inputs
 * shifted by one, supplied by the caller). The loss is the mean over all counted targets of
 * the batch, with count their number; with none, loss and gradients are 0. hidden [B, T, d]
 * is the final LayerNorm's output.
 */
export function gpt2LossAndGrads(
  params: Record<string, Vec>,
  config: Gpt2Config,
  inputs: Vec,
  targets: Vec,
  B: number,
  T: number,
  head: Gpt2Head,
  opts: Gpt2Options = {},
): { loss: number; count: number; grads: Record<string, Float64Array>; hidden: Float64Array } {
  const { blocks, xFinal, hidden, attOpts, eps } = trunkForward(params, config, inputs, B, T, opts);
  expectLength('gpt2 targets', targets, B * T);
  const d = config.n_embd;
  const N = B * T;
  const V = config.vocab_size;
  const wte = params['transformer.wte.weight'];
  const grads: Record<string, Float64Array> = {};

  // Head: loss, d hidden, and the head's share of d wte.
  let loss: number;
  let count: number;
  let dHidden: Float64Array;
  let dwteHead: Float64Array;
  let headGrads: Record<string, Float64Array> = {};
  if (typeof head === 'function') {
    const h = head(hidden);
    ({ loss, count, dHidden } = h);
    headGrads = h.grads ?? {};
    dwteHead = new Float64Array(wte.length);
  } else if (head === 'ce') {
    ({ loss, count } = crossEntropyTied(hidden, wte, targets, N, V, d));
    ({ dh: dHidden, dE: dwteHead } = crossEntropyTiedBackward(1, hidden, wte, targets, N, V, d));
  } else if (head === 'cwt') {
    const { pos, hK, tK } = cwtRows(hidden, targets, d);
    count = pos.length;
    loss = cwtLoss(hK, wte, tK, count, d, opts.temperature).loss;
    const back = cwtLossBackward(1, hK, wte, tK, count, d, opts.temperature);
    dHidden = new Float64Array(N * d);
    pos.forEach((n, k) => dHidden.set(back.dh.subarray(k * d, (k + 1) * d), n * d));
    dwteHead = back.dE;
  } else {
    throw new RangeError(`gpt2: unknown head ${String(head)}`);
  }

  const lnf = layerNormBackward(
    dHidden,
    xFinal,
    params['transformer.ln_f.weight'],
    params['transformer.ln_f.bias'],
    N,
    d,
    eps,
  );
  grads['transformer.ln_f.weight'] = lnf.dweight;
  grads['transformer.ln_f.bias'] = lnf.dbias;
  let dx = lnf.dx; // gradient of the residual stream, walked back block by block
  for (let i = config.n_layer - 1; i >= 0; i--) {
    const name = (s: string) => `transformer.h.${i}.${s}`;
    const p = (s: string) => params[name(s)];
    const c = blocks[i];
    const mlp = linearBackward(dx, c.act, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'), N, 4 * d, d);
    const dfc = geluBackward(mlp.dx, c.fc).dx;
    const fc = linearBackward(dfc, c.ln2, p('mlp.c_fc.weight'), p('mlp.c_fc.bias'), N, d, 4 * d);
    const ln2 = layerNormBackward(fc.dx, c.x1, p('ln_2.weight'), p('ln_2.bias'), N, d, eps);
    const dx1 = dx.map((g, j) => g + ln2.dx[j]); // residual: both paths reach x1
    const proj = linearBackward(dx1, c.att, p('attn.c_proj.weight'), p('attn.c_proj.bias'), N, d, d);
    const dqkv = attentionBackward(proj.dx, c.qkv, B, T, d, config.n_head, attOpts).dqkv;
    const qkv = linearBackward(dqkv, c.ln1, p('attn.c_attn.weight'), p('attn.c_attn.bias'), N, d, 3 * d);
    const ln1 = layerNormBackward(qkv.dx, c.x, p('ln_1.weight'), p('ln_1.bias'), N, d, eps);
    dx = dx1.map((g, j) => g + ln1.dx[j]);
    const layers = { ln_1: ln1, 'attn.c_attn': qkv, 'attn.c_proj': proj, ln_2: ln2, 'mlp.c_fc': fc, 'mlp.c_proj': mlp };
    for (const [layer, g] of Object.entries(layers)) {
      grads[name(`${layer}.weight`)] = 'dweight' in g ? g.dweight : g.dW;
      grads[name(`${layer}.bias`)] = g.dbias;
    }
  }
  const emb = embeddingBackward(dx, wte, params['transformer.wpe.weight'], inputs, B, T, d);
  grads['transformer.wte.weight'] = emb.dwte.map((g, j) => g + dwteHead[j]); // tied: gather + head
  grads['transformer.wpe.weight'] = emb.dwpe;

  // Same key order as gpt2ParamShapes, so callers can zip names, shapes and gradients.
  const ordered: Record<string, Float64Array> = {};
  for (const n of Object.keys(gpt2ParamShapes(config))) ordered[n] = grads[n];
  Object.assign(ordered, headGrads);
  return { loss, count, grads: ordered, hidden };
}

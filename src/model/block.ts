// One GPT-2 block (pre-LayerNorm) as lists of dispatches over buffers the caller allocated
// once: the training forward and backward, a prefill and a KV-cache decode step all build their
// layers here. They differ in the number of rows and in how attention finds keys and values:
//   sequenceAttention  each of B × T rows attends over its own row of the batch (training,
//                      prefill, scoring), with a backward
//   CachedAttention    one row appends its k|v to a cache, then attends over the cache's rows
//                      up to its own (a decode step, forward only)
//
// Per layer l, with N rows:
//   forward   ln1 = LN(x); qkv = ln1·Wqkv + b; y = attn(qkv); xm = x + y·Wo + b
//             ln2 = LN(xm); h = gelu(ln2·Wfc + b); out = xm + h·Wp + b
//             (each linear layer one matmul dispatch, its bias, residual or GELU in the epilogue)
//   backward  dres carries dL/dx through the residual stream and is accumulated into by each
//             LayerNorm backward; weight gradients accumulate (+=) into the flat gradient
//             buffer, which each step clears first. Bias gradients are column sums, done as a
//             1 x N ones-vector matmul so the same tested kernel serves.
// Mixed precision (the model's f16 copy of its weights, BlockWeights.half): every matmul reads f16
// operands and accumulates in f32. Each activation a product reads (ln1, qkv for attention, y,
// ln2, gelu) gets an f16 copy right after it is written, and the backward rounds each output
// gradient to f16 before its two products; LayerNorm, GELU, softmax, residuals, bias gradients
// and every result stay f32.
import type { Command, Copy, Dispatch, Gpu } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import {
  attentionBackward,
  attentionForward,
  createAttentionBuffers,
  createAttentionScratch,
} from '../kernels/attention.js';
import { add } from '../kernels/add.js';
import { attentionDecode } from '../kernels/attention-decode.js';
import { castF16 } from '../kernels/cast.js';
import { geluBackward, geluForward } from '../kernels/gelu.js';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm.js';
import { matmul, type MatmulTile } from '../kernels/matmul.js';
import { matmulQ, type QuantizedRef } from '../kernels/matmul-q.js';
import { off, type TensorRef } from '../kernels/types.js';
import type { BlockTensorName } from './params.js';

const F32 = 4;

/**
 * One-row products (every matmul of a decode step): 4-row tiles instead of 128 on a hardware GPU; on a software
 * adapter none, since the register kernel's own plan already takes 4-row blocks for one row.
 */
export const ROW_TILES: Record<'hardware' | 'software', MatmulTile | undefined> = {
  hardware: { BM: 4, BN: 128, BK: 16, TM: 4, TN: 4 },
  software: undefined,
};

const at = (buffer: GPUBuffer, offset = 0): TensorRef => ({ buffer, offset });

/** What one block reads and writes for N rows (its backward reads them again). */
export interface BlockActs {
  x: GPUBuffer; // input of the block [N, d]
  ln1: GPUBuffer;
  ln1Stats: GPUBuffer; // mean [N] then rstd [N]
  qkv: GPUBuffer; // [N, 3d]
  y: GPUBuffer; // attention output before c_proj [N, d]
  xm: GPUBuffer; // residual after attention [N, d]
  ln2: GPUBuffer;
  ln2Stats: GPUBuffer;
  fc: GPUBuffer; // [N, 4d] before GELU
  gelu: GPUBuffer; // [N, 4d]
  /** Mixed precision: f16 copies of what the products read. */
  half?: { ln1: GPUBuffer; qkv: GPUBuffer; y: GPUBuffer; ln2: GPUBuffer; gelu: GPUBuffer };
}

/** Bytes of n halves packed two to a word. */
export const halfBytes = (n: number): number => Math.ceil(n / 2) * 4;

/** An f16 TensorRef over a whole buffer of packed halves. */
export const half = (buffer: GPUBuffer, offset = 0): TensorRef => ({ buffer, offset, dtype: 'f16' });

export function createBlockActs(scope: GpuScope, N: number, d: number, name: string, f16 = false): BlockActs {
  const b = (what: string, floats: number) => scope.buffer(`${name}.${what}`, floats * F32);
  const h = (what: string, n: number) => scope.buffer(`${name}.${what} (f16)`, halfBytes(n));
  return {
    half: f16
      ? {
          ln1: h('ln1', N * d),
          qkv: h('qkv', N * 3 * d),
          y: h('y', N * d),
          ln2: h('ln2', N * d),
          gelu: h('gelu', N * 4 * d),
        }
      : undefined,
    x: b('x', N * d),
    ln1: b('ln1', N * d),
    ln1Stats: b('ln1 stats', 2 * N),
    qkv: b('qkv', N * 3 * d),
    y: b('y', N * d),
    xm: b('xm', N * d),
    ln2: b('ln2', N * d),
    ln2Stats: b('ln2 stats', 2 * N),
    fc: b('fc', N * 4 * d),
    gelu: b('gelu', N * 4 * d),
  };
}

/** Scratch the backward of every layer shares. */
export interface BlockGradScratch {
  dres: GPUBuffer; // [N, d] dL/d(residual stream)
  dln: GPUBuffer; // [N, d]
  dy: GPUBuffer; // [N, d]
  dqkv: GPUBuffer; // [N, 3d]
  dfc: GPUBuffer; // [N, 4d]
  ones: GPUBuffer; // [N] of 1 (bias gradients)
  /** Mixed precision: an output gradient rounded to f16 before its products, [N, 4d] halves. */
  dHalf?: GPUBuffer;
}

export function createBlockGradScratch(gpu: Gpu, scope: GpuScope, N: number, d: number, f16 = false): BlockGradScratch {
  const ones = scope.buffer('ones', N * F32);
  gpu.write(ones, new Float32Array(N).fill(1));
  return {
    dHalf: f16 ? scope.buffer('output gradient (f16)', halfBytes(N * 4 * d)) : undefined,
    dres: scope.buffer('dres', N * d * F32),
    dln: scope.buffer('dln', N * d * F32),
    dy: scope.buffer('dy', N * d * F32),
    dqkv: scope.buffer('dqkv', N * 3 * d * F32),
    dfc: scope.buffer('dfc', N * 4 * d * F32),
    ones,
  };
}

/** How a block's attention gets from its packed q|k|v rows to its output rows. */
export interface BlockAttention {
  /** qkv: the f32 c_attn output, or (mixed precision) its f16 copy. */
  forward(l: number, qkv: TensorRef, out: GPUBuffer, label: string): Promise<Command[]>;
  /** dqkv (overwritten) from dout, given what the forward read (qkv) and wrote (out). */
  backward(
    l: number,
    qkv: TensorRef,
    out: GPUBuffer,
    dout: GPUBuffer,
    dqkv: GPUBuffer,
    label: string,
  ): Promise<Command[]>;
}

export interface SequenceAttentionOptions {
  B: number;
  T: number;
  d: number;
  nHead: number;
  causal: boolean;
  layers: number;
  /** u32 [B] valid row lengths (right padding), if any. */
  lengths?: TensorRef;
}

/** Attention of every row over its own sequence: per-layer log-sum-exps, backward scratch shared by all layers. */
export function sequenceAttention(gpu: Gpu, scope: GpuScope, o: SequenceAttentionOptions): BlockAttention {
  const shape = { B: o.B, T: o.T, d: o.d, nHead: o.nHead };
  const scratch = createAttentionScratch(gpu, { ...shape, label: 'attention scratch' });
  scope.adopt(scratch.dsum);
  const layers = Array.from({ length: o.layers }, (_, l) => {
    const layer = createAttentionBuffers(gpu, { ...shape, label: `h${l}.att` });
    scope.adopt(layer.lse);
    return layer;
  });
  const common = (l: number, qkv: TensorRef, label: string) => ({
    ...shape,
    causal: o.causal,
    lengths: o.lengths,
    qkv,
    layer: layers[l],
    label,
  });
  return {
    forward: async (l, qkv, out, label) => [
      scope.keep(await attentionForward(gpu, { ...common(l, qkv, label), out: at(out) })),
    ],
    backward: async (l, qkv, out, dout, dqkv, label) =>
      scope.keep(
        await attentionBackward(gpu, {
          ...common(l, qkv, label),
          scratch,
          out: at(out),
          dout: at(dout),
          dqkv: at(dqkv),
        }),
      ),
  };
}

export interface CachedAttentionOptions {
  d: number;
  nHead: number;
  /** Positions each layer's cache holds. */
  maxLen: number;
  layers: number;
  /** u32: the cache rows the query sees (its own position + 1), written before each step. */
  length: TensorRef;
}

/**
 * Attention of one new row over a KV cache per layer, [maxLen, 2d]: row t = position t's keys,
 * then its values (the last two thirds of its c_attn row). The step first copies its own k|v
 * into row `pos` (setPosition points the copies there), then attends over rows 0..pos.
 */
export class CachedAttention implements BlockAttention {
  private readonly kv: GPUBuffer[];
  private readonly scores: GPUBuffer;
  private readonly appends: Copy[] = [];

  constructor(
    private readonly gpu: Gpu,
    private readonly scope: GpuScope,
    private readonly o: CachedAttentionOptions,
  ) {
    this.kv = Array.from({ length: o.layers }, (_, l) => scope.buffer(`h${l} kv cache`, o.maxLen * 2 * o.d * F32));
    // Layers run one after another, so one scores scratch serves them all.
    this.scores = scope.buffer('decode attention scores', o.nHead * o.maxLen * F32);
  }

  /** Layer l's cache. */
  cache(l: number): GPUBuffer {
    if (!this.kv[l]) throw new HlmError(`layer ${l} out of range [0, ${this.kv.length})`);
    return this.kv[l];
  }

  async forward(l: number, qkv: TensorRef, out: GPUBuffer, label: string): Promise<Command[]> {
    const { d, nHead, maxLen, length } = this.o;
    const append: Copy = {
      copy: { from: qkv.buffer, fromOffset: (off(qkv) + d) * F32, to: this.kv[l], toOffset: 0, size: 2 * d * F32 },
    };
    this.appends.push(append);
    const attend = await attentionDecode(this.gpu, {
      d,
      nHead,
      maxLen,
      q: qkv,
      kv: at(this.kv[l]),
      length,
      out: at(out),
      scores: this.scores,
      label,
    });
    return [append, this.scope.keep(attend)];
  }

  backward(): Promise<Command[]> {
    throw new HlmError('a decode step has no backward');
  }

  /** Make the step's cache appends write row `pos`. */
  setPosition(pos: number): void {
    for (const a of this.appends) a.copy.toOffset = pos * 2 * this.o.d * F32;
  }
}

/** A block's linear layers (Conv1D: weight [in, out], bias [out]). */
type LinearName = 'attn.c_attn' | 'attn.c_proj' | 'mlp.c_fc' | 'mlp.c_proj';

/** Where a block's tensors live. */
export interface BlockWeights {
  param(l: number, name: BlockTensorName): TensorRef;
  /** Only for a backward. */
  grad(l: number, name: BlockTensorName): TensorRef;
  /** Inference with packed weights: a linear layer's weight in its packed format (undefined: f32 in param). */
  packed?(l: number, name: BlockTensorName): QuantizedRef | undefined;
  /** Mixed precision: a weight's f16 copy, which the products read (the model refreshes it each forward). */
  half?(l: number, name: BlockTensorName): TensorRef;
}

export interface BlockSpec {
  gpu: Gpu;
  scope: GpuScope;
  /** Rows through the block (B·T, or 1 for a decode step). */
  rows: number;
  d: number;
  eps: number;
  weights: BlockWeights;
  attention: BlockAttention;
  /** Matmul tile of the block's products; default the kernel's own plan. */
  tile?: MatmulTile;
  /** Prefix of every dispatch label ('decode ' for a decode step). */
  label?: string;
}

/** Layer l's forward: a.x → out (the next layer's a.x, or the input of ln_f; not a.x itself). */
export async function blockForward(s: BlockSpec, l: number, a: BlockActs, out: GPUBuffer): Promise<Command[]> {
  const { gpu, scope, rows: N, d, eps, weights, tile } = s;
  const P = (name: BlockTensorName) => weights.param(l, name);
  const h = `${s.label ?? ''}h${l}`;
  // A linear layer y = x·W + b (W is [in, out], Conv1D layout) in one dispatch: the bias, and a residual
  // added to it or GELU of it (y keeps the pre-activation), ride in the matmul's epilogue. Packed weights
  // (inference) take matmulQ, which has no epilogue: the bias, residual and GELU follow as dispatches of their own.
  const hw = weights.half;
  const hx = a.half;
  if (hw && !hx) throw new HlmError(`${h}: f16 weights need the block's f16 activation copies`);
  // Mixed precision: an f16 copy of an activation a product reads, right after it is written.
  const toHalf = async (x: GPUBuffer, copy: GPUBuffer, n: number, what: string): Promise<Dispatch[]> =>
    scope.keep([await castF16(gpu, { n, src: at(x), dst: half(copy), label: `${h} ${what} to f16` })]);
  const linear = async (
    x: TensorRef,
    w: LinearName,
    y: GPUBuffer,
    nIn: number,
    nOut: number,
    label: string,
    then: { residual?: GPUBuffer; gelu?: GPUBuffer } = {},
  ): Promise<Dispatch[]> => {
    const packed = weights.packed?.(l, `${w}.weight`);
    if (!packed)
      return scope.keep(
        await matmul(gpu, {
          M: N,
          N: nOut,
          K: nIn,
          tile,
          a: x,
          b: hw ? hw(l, `${w}.weight`) : P(`${w}.weight`),
          c: at(y),
          bias: P(`${w}.bias`),
          residual: then.residual && at(then.residual),
          gelu: then.gelu && at(then.gelu),
          label: `${label} x·W+b${then.residual ? ' +x' : ''}${then.gelu ? ', gelu' : ''}`,
        }),
      );
    const out = at(y);
    return scope.keep([
      await matmulQ(gpu, { M: N, N: nOut, K: nIn, a: x, w: packed, c: out, label: `${label} x·W` }),
      await add(gpu, { rows: N, cols: nOut, out, b: P(`${w}.bias`), bStrides: [0, 1], label: `${label} +b` }),
      ...(then.residual
        ? [await add(gpu, { rows: N, cols: nOut, out, b: at(then.residual), label: `${label} +x` })]
        : []),
      ...(then.gelu
        ? [await geluForward(gpu, { n: N * nOut, x: out, out: at(then.gelu), label: `${label} gelu` })]
        : []),
    ]);
  };
  const norm = async (x: GPUBuffer, w: 'ln_1' | 'ln_2', y: GPUBuffer, stats: GPUBuffer) =>
    scope.keep(
      await layerNormForward(gpu, {
        rows: N,
        cols: d,
        eps,
        x: at(x),
        weight: P(`${w}.weight`),
        bias: P(`${w}.bias`),
        out: at(y),
        mean: at(stats),
        rstd: at(stats, N),
        label: `${h} ${w}`,
      }),
    );
  if (!hw || !hx)
    return [
      await norm(a.x, 'ln_1', a.ln1, a.ln1Stats),
      ...(await linear(at(a.ln1), 'attn.c_attn', a.qkv, d, 3 * d, `${h} c_attn`)),
      ...(await s.attention.forward(l, at(a.qkv), a.y, `${h} attn`)),
      ...(await linear(at(a.y), 'attn.c_proj', a.xm, d, d, `${h} attn.c_proj`, { residual: a.x })),
      await norm(a.xm, 'ln_2', a.ln2, a.ln2Stats),
      ...(await linear(at(a.ln2), 'mlp.c_fc', a.fc, d, 4 * d, `${h} c_fc`, { gelu: a.gelu })),
      ...(await linear(at(a.gelu), 'mlp.c_proj', out, 4 * d, d, `${h} mlp.c_proj`, { residual: a.xm })),
    ];
  return [
    await norm(a.x, 'ln_1', a.ln1, a.ln1Stats),
    ...(await toHalf(a.ln1, hx.ln1, N * d, 'ln_1')),
    ...(await linear(half(hx.ln1), 'attn.c_attn', a.qkv, d, 3 * d, `${h} c_attn`)),
    ...(await toHalf(a.qkv, hx.qkv, N * 3 * d, 'qkv')),
    ...(await s.attention.forward(l, half(hx.qkv), a.y, `${h} attn`)),
    ...(await toHalf(a.y, hx.y, N * d, 'attn out')),
    ...(await linear(half(hx.y), 'attn.c_proj', a.xm, d, d, `${h} attn.c_proj`, { residual: a.x })),
    await norm(a.xm, 'ln_2', a.ln2, a.ln2Stats),
    ...(await toHalf(a.ln2, hx.ln2, N * d, 'ln_2')),
    ...(await linear(half(hx.ln2), 'mlp.c_fc', a.fc, d, 4 * d, `${h} c_fc`, { gelu: a.gelu })),
    ...(await toHalf(a.gelu, hx.gelu, N * 4 * d, 'gelu')),
    ...(await linear(half(hx.gelu), 'mlp.c_proj', out, 4 * d, d, `${h} mlp.c_proj`, { residual: a.xm })),
  ];
}

/**
 * Layer l's backward. On entry g.dres holds dL/d(the block's output); on return dL/d(a.x).
 * The layer's weight gradients accumulate into weights.grad.
 */
export async function blockBackward(s: BlockSpec, l: number, a: BlockActs, g: BlockGradScratch): Promise<Command[]> {
  const { gpu, scope, rows: N, d, weights } = s;
  const P = (name: BlockTensorName) => weights.param(l, name);
  const G = (name: BlockTensorName) => weights.grad(l, name);
  const h = `${s.label ?? ''}h${l}`;
  const hw = weights.half;
  const hx = a.half;
  if (hw && !(hx && g.dHalf)) throw new HlmError(`${h}: f16 weights need the block's f16 activations and scratch`);
  // Gradients of y = x·W + b given dy: dx (overwritten), dW += xᵀ·dy, db += 1ᵀ·dy. Mixed precision: x is the
  // forward's f16 copy, and dy is rounded to f16 for the two products (the bias gradient sums the f32 dy).
  const linearBack = async (
    x: TensorRef,
    dy: GPUBuffer,
    w: LinearName,
    dx: GPUBuffer,
    nIn: number,
    nOut: number,
    label: string,
  ) => [
    ...(hw
      ? scope.keep([await castF16(gpu, { n: N * nOut, src: at(dy), dst: half(g.dHalf!), label: `${label} dy to f16` })])
      : []),
    ...scope.keep(
      await matmul(gpu, {
        M: N,
        N: nIn,
        K: nOut,
        transB: true,
        a: hw ? half(g.dHalf!) : at(dy),
        b: hw ? hw(l, `${w}.weight`) : P(`${w}.weight`),
        c: at(dx),
        label: `${label} dx`,
      }),
    ),
    ...scope.keep(
      await matmul(gpu, {
        M: nIn,
        N: nOut,
        K: N,
        transA: true,
        beta: 1,
        a: x,
        b: hw ? half(g.dHalf!) : at(dy),
        c: G(`${w}.weight`),
        label: `${label} dW`,
      }),
    ),
    ...scope.keep(
      await matmul(gpu, {
        M: 1,
        N: nOut,
        K: N,
        beta: 1,
        a: at(g.ones),
        b: at(dy),
        c: G(`${w}.bias`),
        label: `${label} db`,
      }),
    ),
  ];
  const normBack = async (dout: GPUBuffer, x: GPUBuffer, w: 'ln_1' | 'ln_2', stats: GPUBuffer) =>
    scope.keep(
      await layerNormBackward(gpu, {
        rows: N,
        cols: d,
        dout: at(dout),
        x: at(x),
        weight: P(`${w}.weight`),
        mean: at(stats),
        rstd: at(stats, N),
        dx: at(g.dres),
        dweight: G(`${w}.weight`),
        dbias: G(`${w}.bias`),
        label: `${h} ${w} backward`,
      }),
    );
  // What the products read: the forward's f16 copies under mixed precision.
  const X = (name: 'ln1' | 'y' | 'ln2' | 'gelu'): TensorRef => (hw ? half(hx![name]) : at(a[name]));
  const qkv = hw ? half(hx!.qkv) : at(a.qkv);
  // dres = dL/d(out): the MLP branch's output gradient, and (unchanged) dL/dxm's residual share.
  return [
    ...(await linearBack(X('gelu'), g.dres, 'mlp.c_proj', g.dfc, 4 * d, d, `${h} mlp.c_proj`)),
    scope.keep(
      await geluBackward(gpu, {
        n: N * 4 * d,
        x: at(a.fc),
        dout: at(g.dfc),
        dx: at(g.dfc),
        label: `${h} gelu backward`,
      }),
    ),
    ...(await linearBack(X('ln2'), g.dfc, 'mlp.c_fc', g.dln, d, 4 * d, `${h} c_fc`)),
    ...(await normBack(g.dln, a.xm, 'ln_2', a.ln2Stats)),
    ...(await linearBack(X('y'), g.dres, 'attn.c_proj', g.dy, d, d, `${h} attn.c_proj`)),
    ...(await s.attention.backward(l, qkv, a.y, g.dy, g.dqkv, `${h} attn backward`)),
    ...(await linearBack(X('ln1'), g.dqkv, 'attn.c_attn', g.dln, d, 3 * d, `${h} c_attn`)),
    ...(await normBack(g.dln, a.x, 'ln_1', a.ln1Stats)),
  ];
}

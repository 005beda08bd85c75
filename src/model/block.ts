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
import { geluBackward, geluForward } from '../kernels/gelu.js';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm.js';
import { matmul, type MatmulTile } from '../kernels/matmul.js';
import { matmulQ, type QuantizedRef } from '../kernels/matmul-q.js';
import type { TensorRef } from '../kernels/types.js';
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
}

export function createBlockActs(scope: GpuScope, N: number, d: number, name: string): BlockActs {
  const b = (what: string, floats: number) => scope.buffer(`${name}.${what}`, floats * F32);
  return {
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
}

export function createBlockGradScratch(gpu: Gpu, scope: GpuScope, N: number, d: number): BlockGradScratch {
  const ones = scope.buffer('ones', N * F32);
  gpu.write(ones, new Float32Array(N).fill(1));
  return {
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
  forward(l: number, qkv: GPUBuffer, out: GPUBuffer, label: string): Promise<Command[]>;
  /** dqkv (overwritten) from dout, given what the forward read (qkv) and wrote (out). */
  backward(
    l: number,
    qkv: GPUBuffer,
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
  const common = (l: number, qkv: GPUBuffer, label: string) => ({
    ...shape,
    causal: o.causal,
    lengths: o.lengths,
    qkv: at(qkv),
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

  async forward(l: number, qkv: GPUBuffer, out: GPUBuffer, label: string): Promise<Command[]> {
    const { d, nHead, maxLen, length } = this.o;
    const append: Copy = {
      copy: { from: qkv, fromOffset: d * F32, to: this.kv[l], toOffset: 0, size: 2 * d * F32 },
    };
    this.appends.push(append);
    const attend = await attentionDecode(this.gpu, {
      d,
      nHead,
      maxLen,
      q: at(qkv),
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
  const linear = async (
    x: GPUBuffer,
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
          a: at(x),
          b: P(`${w}.weight`),
          c: at(y),
          bias: P(`${w}.bias`),
          residual: then.residual && at(then.residual),
          gelu: then.gelu && at(then.gelu),
          label: `${label} x·W+b${then.residual ? ' +x' : ''}${then.gelu ? ', gelu' : ''}`,
        }),
      );
    const out = at(y);
    return scope.keep([
      await matmulQ(gpu, { M: N, N: nOut, K: nIn, a: at(x), w: packed, c: out, label: `${label} x·W` }),
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
  return [
    await norm(a.x, 'ln_1', a.ln1, a.ln1Stats),
    ...(await linear(a.ln1, 'attn.c_attn', a.qkv, d, 3 * d, `${h} c_attn`)),
    ...(await s.attention.forward(l, a.qkv, a.y, `${h} attn`)),
    ...(await linear(a.y, 'attn.c_proj', a.xm, d, d, `${h} attn.c_proj`, { residual: a.x })),
    await norm(a.xm, 'ln_2', a.ln2, a.ln2Stats),
    ...(await linear(a.ln2, 'mlp.c_fc', a.fc, d, 4 * d, `${h} c_fc`, { gelu: a.gelu })),
    ...(await linear(a.gelu, 'mlp.c_proj', out, 4 * d, d, `${h} mlp.c_proj`, { residual: a.xm })),
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
  // Gradients of y = x·W + b given dy: dx (overwritten), dW += xᵀ·dy, db += 1ᵀ·dy.
  const linearBack = async (
    x: GPUBuffer,
    dy: GPUBuffer,
    w: LinearName,
    dx: GPUBuffer,
    nIn: number,
    nOut: number,
    label: string,
  ) => [
    ...scope.keep(
      await matmul(gpu, {
        M: N,
        N: nIn,
        K: nOut,
        transB: true,
        a: at(dy),
        b: P(`${w}.weight`),
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
        a: at(x),
        b: at(dy),
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
  // dres = dL/d(out): the MLP branch's output gradient, and (unchanged) dL/dxm's residual share.
  return [
    ...(await linearBack(a.gelu, g.dres, 'mlp.c_proj', g.dfc, 4 * d, d, `${h} mlp.c_proj`)),
    scope.keep(
      await geluBackward(gpu, {
        n: N * 4 * d,
        x: at(a.fc),
        dout: at(g.dfc),
        dx: at(g.dfc),
        label: `${h} gelu backward`,
      }),
    ),
    ...(await linearBack(a.ln2, g.dfc, 'mlp.c_fc', g.dln, d, 4 * d, `${h} c_fc`)),
    ...(await normBack(g.dln, a.xm, 'ln_2', a.ln2Stats)),
    ...(await linearBack(a.y, g.dres, 'attn.c_proj', g.dy, d, d, `${h} attn.c_proj`)),
    ...(await s.attention.backward(l, a.qkv, a.y, g.dy, g.dqkv, `${h} attn backward`)),
    ...(await linearBack(a.ln1, g.dqkv, 'attn.c_attn', g.dln, d, 3 * d, `${h} c_attn`)),
    ...(await normBack(g.dln, a.x, 'ln_1', a.ln1Stats)),
  ];
}

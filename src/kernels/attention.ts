// Multi-head self-attention on GPT-2's packed c_attn output, forward and backward, llm.c's
// way: permute qkv [B, T, 3d] into head-major q, k, v [B, H, T, hd]; scores = scale·q·kᵀ
// (batched matmul over B·H); a masked, stable softmax in place → att [B, H, T, T]; y = att·v;
// merge the heads back into out [B, T, d]. Backward: dy permuted; datt = dy·vᵀ, dv = attᵀ·dy;
// softmax backward in place, ds = att ⊙ (datt − rowsum(att ⊙ datt)); dq = scale·ds·k,
// dk = scale·dsᵀ·q; dq, dk, dv merged back into dqkv [B, T, 3d] (overwritten).
//
// Memory: a layer keeps only its probabilities att (B·H·T² floats) from forward to backward;
// backward re-derives the head-major q, k, v from qkv (which the caller keeps anyway), so
// everything else is scratch that all layers share (AttentionScratch). Inference (no backward)
// can hand every layer the same AttentionBuffers.
//
// The caller's tensors (qkv, out, dout, dqkv, lengths) are never bound together in one
// dispatch, so they may live in one buffer (an activation arena) as long as what is written
// (out, dqkv) overlaps nothing else.
//
// Causal scores are computed in full and masked by the softmax (half the products wasted);
// a fused flash-attention kernel can replace the middle of both passes later without
// changing this interface.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { matmul, TILES, type MatmulSpec, type MatmulTile } from './matmul.js';
import { elementGrid, grid, off, type TensorRef } from './types.js';

export interface AttentionShape {
  /** Batch rows. */
  B: number;
  /** Sequence length. */
  T: number;
  /** Model width; heads are d / nHead wide. */
  d: number;
  nHead: number;
}

/** What one layer keeps from its forward to its backward. */
export interface AttentionBuffers {
  shape: AttentionShape;
  /** Attention probabilities [B, H, T, T] (0 at hidden keys). */
  att: GPUBuffer;
  bytes: number;
}

/** Work space shared by every layer (a layer's forward or backward uses it only while it runs). */
export interface AttentionScratch {
  shape: AttentionShape;
  /** Head-major q, k, v: [3, B, H, T, hd]. */
  qkvh: GPUBuffer;
  /** Head-major dq, dk, dv: [3, B, H, T, hd]. */
  dqkvh: GPUBuffer;
  /** Head-major y (forward) or dy (backward): [B, H, T, hd]. */
  yh: GPUBuffer;
  /** Gradient of att, then of the scores, in place: [B, H, T, T]. */
  datt: GPUBuffer;
  bytes: number;
}

export interface AttentionSpec extends AttentionShape {
  /** Decoder (key j visible to query i only when j ≤ i) or encoder (all keys). */
  causal: boolean;
  /** Packed c_attn output [B, T, 3d]. */
  qkv: TensorRef;
  layer: AttentionBuffers;
  scratch: AttentionScratch;
  /**
   * Key padding mask: B u32 valid lengths (keys j ≥ lengths[b] hidden; above T acts as T). Rows with no visible key
   * output 0.
   */
  lengths?: TensorRef;
  /** Score scale; default 1/√(d / nHead). */
  scale?: number;
  /** Softmax row layout; default ROW_LAYOUTS[adapter kind]. */
  rowLayout?: RowLayout;
  /** Matmul tile; default TILES[adapter kind]. Products with N = hd use it narrowed to hd (fewer idle columns). */
  tile?: MatmulTile;
  label?: string;
}

export interface AttentionForwardSpec extends AttentionSpec {
  /** Output [B, T, d], heads side by side (the input of c_proj). */
  out: TensorRef;
}

export interface AttentionBackwardSpec extends AttentionSpec {
  /** Gradient of out [B, T, d]. */
  dout: TensorRef;
  /** Gradient of qkv [B, T, 3d], overwritten (not accumulated). */
  dqkv: TensorRef;
}

const F32 = 4;

/** Bytes one layer keeps between forward and backward: 4·B·H·T². */
export function attentionBuffersBytes(s: AttentionShape): number {
  return F32 * s.B * s.nHead * s.T * s.T;
}

/** Bytes of the shared scratch: 4·(7·B·T·d + B·H·T²). */
export function attentionScratchBytes(s: AttentionShape): number {
  return F32 * (7 * s.B * s.T * s.d + s.B * s.nHead * s.T * s.T);
}

function checkShape(s: AttentionShape, label: string): number {
  for (const [k, v] of Object.entries({ B: s.B, T: s.T, d: s.d, nHead: s.nHead })) {
    if (!Number.isInteger(v) || v < 1) throw new HlmError(`${label}: ${k} must be a positive integer, got ${v}`);
  }
  if (s.d % s.nHead !== 0) throw new HlmError(`${label}: d = ${s.d} is not a multiple of nHead = ${s.nHead}`);
  return s.d / s.nHead;
}

export function createAttentionBuffers(gpu: Gpu, s: AttentionShape & { label?: string }): AttentionBuffers {
  const label = s.label ?? 'attention';
  checkShape(s, label);
  const bytes = attentionBuffersBytes(s);
  return { shape: { B: s.B, T: s.T, d: s.d, nHead: s.nHead }, att: gpu.buffer(`${label} att`, bytes), bytes };
}

export function freeAttentionBuffers(gpu: Gpu, layer: AttentionBuffers): void {
  gpu.free(layer.att);
}

/** Scratch for the largest shape the layers will run (smaller B or T fit in it too). */
export function createAttentionScratch(gpu: Gpu, s: AttentionShape & { label?: string }): AttentionScratch {
  const label = s.label ?? 'attention scratch';
  checkShape(s, label);
  const n = s.B * s.T * s.d;
  return {
    shape: { B: s.B, T: s.T, d: s.d, nHead: s.nHead },
    qkvh: gpu.buffer(`${label} qkv heads`, 3 * n * F32),
    dqkvh: gpu.buffer(`${label} dqkv heads`, 3 * n * F32),
    yh: gpu.buffer(`${label} y heads`, n * F32),
    datt: gpu.buffer(`${label} datt`, s.B * s.nHead * s.T * s.T * F32),
    bytes: attentionScratchBytes(s),
  };
}

export function freeAttentionScratch(gpu: Gpu, scratch: AttentionScratch): void {
  gpu.free(scratch.qkvh, scratch.dqkvh, scratch.yh, scratch.datt);
}

function need(label: string, what: string, buf: GPUBuffer, elements: number, offset = 0): void {
  if ((offset + elements) * F32 > buf.size) {
    throw new HlmError(
      `${label}: ${what} needs ${(offset + elements) * F32} bytes from its buffer's start, but "${buf.label}" has ` +
        `${buf.size}`,
    );
  }
}

function validate(s: AttentionSpec, label: string, outside: [string, TensorRef, number][]): number {
  const hd = checkShape(s, label);
  const { B, T, d, nHead: H } = s;
  need(label, 'layer att', s.layer.att, B * H * T * T);
  need(label, 'scratch qkv heads', s.scratch.qkvh, 3 * B * T * d);
  need(label, 'scratch dqkv heads', s.scratch.dqkvh, 3 * B * T * d);
  need(label, 'scratch y heads', s.scratch.yh, B * T * d);
  need(label, 'scratch datt', s.scratch.datt, B * H * T * T);
  const all: [string, TensorRef, number][] = [['qkv', s.qkv, 3 * B * T * d], ...outside];
  if (s.lengths) all.push(['lengths', s.lengths, B]);
  const internal = [s.layer.att, s.scratch.qkvh, s.scratch.dqkvh, s.scratch.yh, s.scratch.datt];
  for (const [name, t, n] of all) {
    need(label, name, t.buffer, n, t.offset ?? 0);
    if (internal.includes(t.buffer))
      throw new HlmError(`${label}: ${name} must not live in the attention's own layer or scratch buffers`);
  }
  // No dispatch binds two of the caller's tensors together (each goes through the scratch), so
  // they may share one buffer; but what is written (out, dqkv) must not overlap anything else.
  const written = (name: string) => name === 'out' || name === 'dqkv';
  for (let i = 1; i < all.length; i++) {
    for (let j = 0; j < i; j++) {
      const [ni, ti, ci] = all[i];
      const [nj, tj, cj] = all[j];
      if (ti.buffer !== tj.buffer || !(written(ni) || written(nj))) continue;
      const oi = ti.offset ?? 0;
      const oj = tj.offset ?? 0;
      if (oi < oj + cj && oj < oi + ci)
        throw new HlmError(
          `${label}: ${ni} [${oi}, ${oi + ci}) overlaps ${nj} [${oj}, ${oj + cj}) in buffer "${ti.buffer.label}"`,
        );
    }
  }
  return hd;
}

/** A tile no wider than needed for products with N = hd columns (the tile's BN halved while that still covers hd). */
function narrow(tile: MatmulTile, N: number): MatmulTile {
  let BN = tile.BN;
  while (BN / 2 >= N && (BN / 2) % tile.TN === 0 && (BN / 2) % 4 === 0) BN /= 2;
  return { ...tile, BN };
}

/** Token-major [B, T, S, H, hd] ↔ head-major [S, B, H, T, hd]. */
async function permute(
  gpu: Gpu,
  label: string,
  toHeads: boolean,
  s: AttentionShape,
  S: number,
  src: TensorRef,
  dst: TensorRef,
): Promise<Dispatch> {
  const hd = s.d / s.nHead;
  const n = S * s.B * s.T * s.d;
  const kernel = await gpu.kernel('attention_permute', { TO_HEADS: toHeads });
  return gpu.dispatch(label, kernel, {
    bind: { src: src.buffer, dst: dst.buffer },
    params: { B: s.B, T: s.T, H: s.nHead, hd, S, n, offSrc: off(src), offDst: off(dst) },
    groups: elementGrid(gpu, kernel, n),
  });
}

/** How the softmax kernels lay rows out: ROWS rows a workgroup, TPR invocations a row (a power of two). */
export interface RowLayout {
  ROWS: number;
  TPR: number;
}

/** Measured on llvmpipe (8-wide SIMD): 8 invocations a row beat 1 (gathers) and 32+ (barriers) by 3-4x. */
export const ROW_LAYOUTS: Record<'hardware' | 'software', RowLayout> = {
  hardware: { ROWS: 4, TPR: 32 },
  software: { ROWS: 8, TPR: 8 },
};

async function softmax(gpu: Gpu, label: string, s: AttentionSpec, backward: boolean): Promise<Dispatch> {
  const { B, T, nHead: H } = s;
  const rows = B * H * T;
  const layout = s.rowLayout ?? ROW_LAYOUTS[gpu.adapter.kind];
  if (!(
    layout.ROWS >= 1 &&
    layout.TPR >= 1 &&
    Number.isInteger(Math.log2(layout.TPR)) &&
    Number.isInteger(layout.ROWS)
  )) {
    throw new HlmError(`${label}: row layout ${JSON.stringify(layout)} needs ROWS ≥ 1 and TPR a power of two`);
  }
  const kernel = await gpu.kernel('attention_softmax', {
    ...layout,
    CAUSAL: s.causal,
    LENGTHS: !!s.lengths,
    BACKWARD: backward,
  });
  return gpu.dispatch(label, kernel, {
    bind: {
      att: s.layer.att,
      ...(backward ? { g: s.scratch.datt } : {}),
      ...(s.lengths ? { lengths: s.lengths.buffer } : {}),
    },
    params: { rows, T, rowsPerBatch: H * T, offAtt: 0, offLen: off(s.lengths), offG: 0 },
    groups: grid(gpu, rows, layout.ROWS),
  });
}

/** q, k and v in head-major [3, B, H, T, hd] (or their gradients): the thirds of the buffer, n elements each. */
function thirds(buffer: GPUBuffer, n: number): TensorRef[] {
  return [0, n, 2 * n].map((offset) => ({ buffer, offset }));
}

/**
 * A product batched over the B·H heads, each operand a packed T×T or T×hd matrix (matmul's default
 * strides): scores-like, C = T×T (K = hd), or value-like, C = T×hd (K = T) with the tile narrowed to hd.
 */
function headProduct(
  gpu: Gpu,
  s: AttentionSpec,
  label: string,
  scores: boolean,
  p: Pick<MatmulSpec, 'a' | 'b' | 'c' | 'transA' | 'transB' | 'alpha'>,
): Promise<Dispatch[]> {
  const { T, nHead: H } = s;
  const hd = s.d / H;
  const tile = s.tile ?? TILES[gpu.adapter.kind];
  const [N, K] = scores ? [T, hd] : [hd, T];
  return matmul(gpu, { ...p, label, M: T, N, K, batch: s.B * H, tile: scores ? tile : narrow(tile, hd) });
}

/**
 * out = attention(qkv): five dispatches (permute, scores, softmax, att·v, merge heads). Fills
 * layer.att for the backward; uses scratch.qkvh and scratch.yh. Build once, submit every step;
 * `gpu.release(...dispatches)` frees their parameter blocks.
 */
export async function attentionForward(gpu: Gpu, s: AttentionForwardSpec): Promise<Dispatch[]> {
  const label = s.label ?? 'attention';
  const hd = validate(s, label, [['out', s.out, s.B * s.T * s.d]]);
  const n = s.B * s.T * s.d; // elements of each of q, k, v
  const alpha = s.scale ?? 1 / Math.sqrt(hd);
  const { qkvh, yh } = s.scratch;
  const att = s.layer.att;
  const [q, k, v] = thirds(qkvh, n);
  return [
    await permute(gpu, `${label} split heads`, true, s, 3, s.qkv, { buffer: qkvh }),
    // scores = scale·q·kᵀ
    ...(await headProduct(gpu, s, `${label} scores`, true, { transB: true, alpha, a: q, b: k, c: { buffer: att } })),
    await softmax(gpu, `${label} softmax`, s, false),
    ...(await headProduct(gpu, s, `${label} att·v`, false, { a: { buffer: att }, b: v, c: { buffer: yh } })),
    await permute(gpu, `${label} merge heads`, false, s, 1, { buffer: yh }, s.out),
  ];
}

/**
 * dqkv = ∂L/∂qkv given dout = ∂L/∂out and the layer's att from its forward: eight dispatches.
 * qkv must hold what the forward saw. Overwrites scratch.qkvh, yh, datt and dqkvh.
 */
export async function attentionBackward(gpu: Gpu, s: AttentionBackwardSpec): Promise<Dispatch[]> {
  const name = s.label ?? 'attention';
  const label = `${name}.bw`;
  const hd = validate(s, name, [
    ['dout', s.dout, s.B * s.T * s.d],
    ['dqkv', s.dqkv, 3 * s.B * s.T * s.d],
  ]);
  const n = s.B * s.T * s.d;
  const alpha = s.scale ?? 1 / Math.sqrt(hd);
  const { qkvh, dqkvh, yh, datt } = s.scratch;
  const [q, k, v] = thirds(qkvh, n);
  const [dq, dk, dv] = thirds(dqkvh, n);
  // dy head-major, the probabilities, and their gradient (then the scores', in place).
  const [dy, att, ds] = [yh, s.layer.att, datt].map((buffer) => ({ buffer }));
  return [
    await permute(gpu, `${label} split heads`, true, s, 3, s.qkv, { buffer: qkvh }),
    await permute(gpu, `${label} split dout`, true, s, 1, s.dout, dy),
    // datt = dy·vᵀ
    ...(await headProduct(gpu, s, `${label} datt`, true, { transB: true, a: dy, b: v, c: ds })),
    // dv = attᵀ·dy
    ...(await headProduct(gpu, s, `${label} dv`, false, { transA: true, a: att, b: dy, c: dv })),
    await softmax(gpu, `${label} softmax`, s, true),
    // dq = scale·ds·k
    ...(await headProduct(gpu, s, `${label} dq`, false, { alpha, a: ds, b: k, c: dq })),
    // dk = scale·dsᵀ·q
    ...(await headProduct(gpu, s, `${label} dk`, false, { transA: true, alpha, a: ds, b: q, c: dk })),
    await permute(gpu, `${label} merge dqkv`, false, s, 3, { buffer: dqkvh }, s.dqkv),
  ];
}

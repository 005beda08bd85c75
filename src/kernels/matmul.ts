// C = alpha·op(A)·op(B) + beta·C, batched with strides. The building block of every linear
// layer (forward: x·W; backward: dY·Wᵀ and xᵀ·dY) and of attention's score and value products.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { packParams, type TensorRef } from './types.js';

export interface MatmulTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/** Large tiles for hardware GPUs; on llvmpipe 64x64 gave 7.8 GFLOP/s at 512³ and more workgroups for small products. */
export const TILES: Record<'hardware' | 'software', MatmulTile> = {
  hardware: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  software: { BM: 64, BN: 64, BK: 8, TM: 8, TN: 8 },
};

export interface MatmulSpec {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  a: TensorRef;
  b: TensorRef;
  c: TensorRef;
  /** Elements between consecutive batch items; default: packed (M·K, K·N, M·N). 0 broadcasts. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  tile?: MatmulTile;
  label?: string;
}

export function matmulFlops(s: Pick<MatmulSpec, 'M' | 'N' | 'K' | 'batch'>): number {
  return 2 * s.M * s.N * s.K * (s.batch ?? 1);
}

function checkTile(t: MatmulTile): void {
  const ok = t.BM % t.TM === 0 && t.BN % t.TN === 0 && [4, 8].includes(t.TM) && [4, 8].includes(t.TN) && t.BK % 4 === 0;
  if (!ok) throw new HlmError(`matmul tile ${JSON.stringify(t)}: BM/TM and BN/TN must divide, TM and TN be 4 or 8, and BK a multiple of 4`);
}

/**
 * On a hardware GPU a product whose output has few 128×128 tiles (the weight gradients:
 * d_in × d_out outputs, K = all tokens) would leave most of the GPU idle; 64×64 tiles give
 * 4× the workgroups. Below this many large tiles, the smaller one is used.
 */
export const FEW_TILES = 264;
export const SMALL_HARDWARE_TILE: MatmulTile = { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 };

/** The tile for a product when the caller names none. */
export function defaultTile(kind: 'hardware' | 'software', M: number, N: number, batch: number): MatmulTile {
  const big = TILES[kind];
  if (kind === 'hardware' && Math.ceil(M / big.BM) * Math.ceil(N / big.BN) * batch < FEW_TILES) return SMALL_HARDWARE_TILE;
  return big;
}

/**
 * Most K one dispatch covers on a software adapter: llvmpipe silently stops an invocation after
 * 65,535 loop iterations (Mesa's loop limiter), which a long K loop reaches; longer products
 * are split over several dispatches that accumulate (beta = 1 after the first).
 */
export const SOFTWARE_K_SPAN = 8192;

/** The dispatches of one product (several along K on a software adapter); release frees them. */
export async function matmul(gpu: Gpu, s: MatmulSpec): Promise<Dispatch[]> {
  const { M, N, K } = s;
  const batch = s.batch ?? 1;
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  const label = s.label ?? `matmul ${M}x${N}x${K}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}${batch > 1 ? ` ×${batch}` : ''}`;
  for (const [k, v] of Object.entries({ M, N, K, batch })) {
    if (!Number.isInteger(v) || v < 1) throw new HlmError(`${label}: ${k} must be a positive integer, got ${v}`);
  }
  if (s.c.buffer === s.a.buffer || s.c.buffer === s.b.buffer) {
    throw new HlmError(`${label}: C must not share a buffer with A or B (WebGPU forbids writable aliasing)`);
  }
  const tile = s.tile ?? defaultTile(gpu.adapter.kind, M, N, batch);
  checkTile(tile);
  const offA = s.a.offset ?? 0, offB = s.b.offset ?? 0, offC = s.c.offset ?? 0;
  const strideA = s.strideA ?? M * K, strideB = s.strideB ?? K * N, strideC = s.strideC ?? M * N;
  // vec4 loads need the contiguous dimension, the offset and the batch stride all divisible by 4.
  const vecA = (transA ? M : K) % 4 === 0 && offA % 4 === 0 && strideA % 4 === 0;
  const vecB = (transB ? K : N) % 4 === 0 && offB % 4 === 0 && strideB % 4 === 0;
  const pipeline = await gpu.pipeline('matmul', { ...tile, TRANS_A: transA, TRANS_B: transB, VEC_A: vecA, VEC_B: vecB });
  const span = gpu.adapter.kind === 'software' ? Math.max(tile.BK, Math.floor(SOFTWARE_K_SPAN / tile.BK) * tile.BK) : K;
  const out: Dispatch[] = [];
  for (let k0 = 0; k0 < K; k0 += span) {
    const kEnd = Math.min(K, k0 + span);
    const params = packParams([
      ['u32', M], ['u32', N], ['u32', K], ['u32', k0],
      ['u32', offA], ['u32', offB], ['u32', offC], ['u32', 0],
      ['u32', strideA], ['u32', strideB], ['u32', strideC], ['u32', 0],
      ['f32', s.alpha ?? 1], ['f32', k0 === 0 ? (s.beta ?? 0) : 1], ['u32', kEnd], ['u32', 0],
    ]);
    const part = span < K ? `${label} k ${k0}..${kEnd}` : label;
    const uniform = gpu.uniform(`${part} params`, params);
    out.push(gpu.dispatch(part, pipeline, [s.a.buffer, s.b.buffer, s.c.buffer, uniform], [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM), batch], [uniform]));
  }
  return out;
}

// C = alpha·op(A)·op(B) + beta·C, batched with strides. The building block of every linear
// layer (forward: x·W; backward: dY·Wᵀ and xᵀ·dY) and of attention's score and value products.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, elementGrid, off, type TensorRef } from './types.js';

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
  /** Split K into this many parts summed by a second dispatch (default: defaultPlan's, 1 with an explicit tile). */
  splitK?: number;
  label?: string;
}

export function matmulFlops(s: Pick<MatmulSpec, 'M' | 'N' | 'K' | 'batch'>): number {
  return 2 * s.M * s.N * s.K * (s.batch ?? 1);
}

function checkTile(t: MatmulTile): void {
  const ok = t.BM % t.TM === 0 && t.BN % t.TN === 0 && [4, 8].includes(t.TM) && [4, 8].includes(t.TN) && t.BK % 4 === 0;
  if (!ok)
    throw new HlmError(
      `matmul tile ${JSON.stringify(t)}: BM/TM and BN/TN must divide, TM and TN be 4 or 8, and BK a multiple of 4`,
    );
}

/**
 * On a hardware GPU a product whose output has few 128×128 tiles (the weight gradients:
 * d_in × d_out outputs, K = all tokens; the CE head's dh, K = V) leaves most of the GPU idle:
 * on an H200, c_fc's dW (512×2048, K = 8,192) ran at ~7 TFLOP/s in 64×64 tiles against
 * ~23 for the head's big products. Below FEW_TILES large tiles, K is split into parts that
 * run side by side (aiming at SPLIT_K_GROUPS workgroups, each part at least SPLIT_K_MIN_SPAN
 * long) and a second dispatch sums them; when K is too short to split, 64×64 tiles give 4×
 * the workgroups instead. 264 is twice an H100's or H200's 132 multiprocessors.
 */
export const FEW_TILES = 264;
export const SPLIT_K_GROUPS = 528;
export const SPLIT_K_MIN_SPAN = 512;
export const SPLIT_K_MAX_PARTS = 16;
export const SMALL_HARDWARE_TILE: MatmulTile = { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 };

/** The tile and the number of K parts for a product when the caller names neither. */
export function defaultPlan(
  kind: 'hardware' | 'software',
  M: number,
  N: number,
  K: number,
  batch: number,
): { tile: MatmulTile; parts: number } {
  const big = TILES[kind];
  const groups = Math.ceil(M / big.BM) * Math.ceil(N / big.BN) * batch;
  if (kind === 'software' || groups >= FEW_TILES) return { tile: big, parts: 1 };
  const parts = Math.min(SPLIT_K_MAX_PARTS, Math.ceil(SPLIT_K_GROUPS / groups), Math.floor(K / SPLIT_K_MIN_SPAN));
  return parts >= 2 ? { tile: big, parts } : { tile: SMALL_HARDWARE_TILE, parts: 1 };
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
  const label =
    s.label ?? `matmul ${M}x${N}x${K}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}${batch > 1 ? ` ×${batch}` : ''}`;
  checkSizes(label, { M, N, K, batch });
  if (s.c.buffer === s.a.buffer || s.c.buffer === s.b.buffer) {
    throw new HlmError(`${label}: C must not share a buffer with A or B (WebGPU forbids writable aliasing)`);
  }
  const plan = defaultPlan(gpu.adapter.kind, M, N, K, batch);
  const tile = s.tile ?? plan.tile;
  checkTile(tile);
  const offA = off(s.a);
  const offB = off(s.b);
  const offC = off(s.c);
  const strideA = s.strideA ?? M * K;
  const strideB = s.strideB ?? K * N;
  const strideC = s.strideC ?? M * N;
  // vec4 loads need the contiguous dimension, the offset and the batch stride all divisible by 4.
  const vecA = (transA ? M : K) % 4 === 0 && offA % 4 === 0 && strideA % 4 === 0;
  const vecB = (transB ? K : N) % 4 === 0 && offB % 4 === 0 && strideB % 4 === 0;
  const kernel = await gpu.kernel('matmul', {
    ...tile,
    TRANS_A: transA,
    TRANS_B: transB,
    VEC_A: vecA,
    VEC_B: vecB,
  });
  const workgroups = (z: number): [number, number, number] => [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM), z];
  // The parameters every dispatch of the product shares; each adds its K range, C and scaling.
  const shape = { M, N, K, offA, offB, strideA, strideB };
  const alpha = s.alpha ?? 1;
  const beta = s.beta ?? 0;

  const parts = s.splitK ?? (s.tile ? 1 : plan.parts);
  if (!(Number.isInteger(parts) && parts >= 1 && parts <= K))
    throw new HlmError(`${label}: splitK must be an integer from 1 to K = ${K}, got ${parts}`);
  if (parts > 1) {
    if (gpu.adapter.kind === 'software' && K > SOFTWARE_K_SPAN * parts)
      throw new HlmError(`${label}: K = ${K} in ${parts} parts is past llvmpipe's loop limit; use more parts`);
    // Each part's span is a multiple of BK, so that a part's vec4 loads never straddle its end.
    const kPart = Math.ceil(K / parts / tile.BK) * tile.BK;
    const used = Math.ceil(K / kPart);
    const scratch = gpu.shared('matmul split-K', used * batch * M * N * 4);
    const sum = await gpu.kernel('matmul_splitk_sum');
    return [
      gpu.dispatch(`${label} (${used} K parts)`, kernel, {
        bind: { A: s.a.buffer, B: s.b.buffer, C: scratch },
        // Part p of batch item b goes to scratch[(b·used + p)·M·N ..], unscaled.
        params: {
          ...shape,
          kBegin: 0,
          kEnd: K,
          kPart,
          parts: used,
          strideP: M * N,
          offC: 0,
          strideC: used * M * N,
          alpha: 1,
          beta: 0,
        },
        groups: workgroups(batch * used),
      }),
      gpu.dispatch(`${label} sum of K parts`, sum, {
        bind: { P: scratch, C: s.c.buffer },
        params: { MN: M * N, parts: used, total: batch * M * N, offC, strideC, alpha, beta },
        groups: elementGrid(gpu, sum, batch * M * N),
      }),
    ];
  }

  const span = gpu.adapter.kind === 'software' ? Math.max(tile.BK, Math.floor(SOFTWARE_K_SPAN / tile.BK) * tile.BK) : K;
  const out: Dispatch[] = [];
  for (let k0 = 0; k0 < K; k0 += span) {
    const kEnd = Math.min(K, k0 + span);
    const part = span < K ? `${label} k ${k0}..${kEnd}` : label;
    out.push(
      gpu.dispatch(part, kernel, {
        bind: { A: s.a.buffer, B: s.b.buffer, C: s.c.buffer },
        params: {
          ...shape,
          kBegin: k0,
          kEnd,
          kPart: kEnd - k0,
          parts: 1,
          strideP: 0,
          offC,
          strideC,
          alpha,
          beta: k0 ? 1 : beta,
        },
        groups: workgroups(batch),
      }),
    );
  }
  return out;
}

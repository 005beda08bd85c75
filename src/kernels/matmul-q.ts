// Weight-only quantized products for inference: C[M, N] = A[M, K] · Wᵀ with A f32 and W [N, K] stored by rows
// (output channels) in one of three packed formats, dequantized inside the kernel (src/wgsl/matmul_q.wgsl,
// src/wgsl/lib/quant.wgsl). This module owns the storage format; src/model/quantize.ts writes it on the host,
// src/reference/matmul-q.ts reads it back in float64.
//
// A matrix of R rows and K columns is R·rowWords u32 words of codes, row after row, then its scales:
//   f16   rowWords = ⌈K/2⌉: two IEEE halves a word, element 2i in the low half; no scales
//   int8  rowWords = ⌈K/4⌉: four two's-complement bytes a word, low byte first; then R f32 scales (one per
//         output channel, symmetric: w = q·s, q in −127..127)
//   q4    rowWords = 4·⌈K/32⌉: eight 4-bit codes a word, low nibble first; then ⌈R·G/2⌉ words of f16 scales,
//         G = ⌈K/32⌉ per row, two a word (scale i in the low half of word i/2): w = (q − 8)·s, q in 0..15
// A row whose K is not a multiple of the word (q4: the group of 32) is padded with codes of zero weight
// (f16/int8 0, q4 8), so the last q4 group has fewer than 32 real elements and its scale covers only those.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import type { MatmulTile } from './matmul.js';
import { checkSizes, off, type TensorRef } from './types.js';

export const WEIGHT_FORMATS = ['f32', 'f16', 'int8', 'q4'] as const;
export type WeightFormat = (typeof WEIGHT_FORMATS)[number];
export type QuantFormat = Exclude<WeightFormat, 'f32'>;
/** Elements per q4 scale. */
export const Q4_GROUP = 32;

/** A matrix [rows, cols] stored in a packed format inside a u32 buffer; offsets in words. */
export interface QuantizedRef {
  format: QuantFormat;
  rows: number;
  cols: number;
  buffer: GPUBuffer;
  /** The first word of the codes. */
  offset: number;
  /** The first word of the scales (unused by f16). */
  scales: number;
}

/** A weight as the inference products take it: f32 inside a float buffer, or packed. */
export type WeightRef = TensorRef | QuantizedRef;

export function isQuantized(w: WeightRef): w is QuantizedRef {
  return 'format' in w;
}

/** Code words of one row of `cols` elements. */
export function rowWords(format: QuantFormat, cols: number): number {
  switch (format) {
    case 'f16':
      return Math.ceil(cols / 2);
    case 'int8':
      return Math.ceil(cols / 4);
    case 'q4':
      return 4 * Math.ceil(cols / Q4_GROUP);
  }
}

/** Scale words of a [rows, cols] matrix. */
export function scaleWords(format: QuantFormat, rows: number, cols: number): number {
  switch (format) {
    case 'f16':
      return 0;
    case 'int8':
      return rows;
    case 'q4':
      return Math.ceil((rows * Math.ceil(cols / Q4_GROUP)) / 2);
  }
}

/** Words of a packed [rows, cols] matrix: codes then scales. */
export function quantizedWords(format: QuantFormat, rows: number, cols: number): number {
  return rows * rowWords(format, cols) + scaleWords(format, rows, cols);
}

/** Bytes one row of `cols` weights takes in a format (its codes and its share of the scales). */
export function rowBytes(format: WeightFormat, cols: number): number {
  if (format === 'f32') return 4 * cols;
  return 4 * rowWords(format, cols) + (format === 'int8' ? 4 : format === 'q4' ? 2 * Math.ceil(cols / Q4_GROUP) : 0);
}

export interface QuantTile extends Omit<MatmulTile, 'BK'> {
  /** A multiple of 8 (whole words of every format). */
  BK: number;
}

/**
 * Tiles by the number of rows: one-row products (a decode step, the next-token logits) get 4-row tiles, so
 * most of the work is not padding; on llvmpipe 8 columns an invocation keep its 8-wide vectors busy. Every
 * tile's staging (4·BK·(BM + BN) bytes) fits WebGPU's default 16 KiB of workgroup memory.
 */
export const QUANT_TILES: Record<'hardware' | 'software', { rows: QuantTile; big: QuantTile }> = {
  hardware: { rows: { BM: 4, BN: 128, BK: 16, TM: 4, TN: 4 }, big: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 4 } },
  software: { rows: { BM: 4, BN: 64, BK: 32, TM: 4, TN: 8 }, big: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 } },
};
/** Rows below which the one-row tile is used. */
export const FEW_ROWS = 16;
/**
 * Longest K on a software adapter: llvmpipe stops an invocation after 65,535 loop iterations, and each of the
 * K / BK slices runs BK steps plus its loads. Inference products have K = d or 4d.
 */
export const SOFTWARE_QUANT_K = 8192;

export interface MatmulQSpec {
  M: number;
  N: number;
  K: number;
  /** f32 [M, K]. */
  a: TensorRef;
  /** [N, K] packed. */
  w: QuantizedRef;
  /** f32 [M, N], overwritten. */
  c: TensorRef;
  tile?: QuantTile;
  label?: string;
}

function checkTile(t: QuantTile): void {
  const ok = t.BM % t.TM === 0 && t.BN % t.TN === 0 && [4, 8].includes(t.TM) && [4, 8].includes(t.TN) && t.BK % 8 === 0;
  if (!ok)
    throw new HlmError(
      `quantized matmul tile ${JSON.stringify(t)}: BM/TM and BN/TN must divide, TM and TN be 4 or 8, BK a ` +
        'multiple of 8',
    );
}

/** C = A·Wᵀ with W packed: one dispatch. */
export async function matmulQ(gpu: Gpu, s: MatmulQSpec): Promise<Dispatch> {
  const { M, N, K, w } = s;
  const label = s.label ?? `matmul ${w.format} ${M}x${N}x${K}`;
  checkSizes(label, { M, N, K });
  if (w.rows !== N || w.cols !== K)
    throw new HlmError(`${label}: the weight is [${w.rows}, ${w.cols}], the product needs [N, K] = [${N}, ${K}]`);
  if (s.c.buffer === s.a.buffer || s.c.buffer === w.buffer)
    throw new HlmError(`${label}: C must not share a buffer with A or W (WebGPU forbids writable aliasing)`);
  if (gpu.adapter.kind === 'software' && K > SOFTWARE_QUANT_K)
    throw new HlmError(`${label}: K = ${K} is past llvmpipe's loop limit for this kernel (${SOFTWARE_QUANT_K})`);
  const tiles = QUANT_TILES[gpu.adapter.kind];
  const tile = s.tile ?? (M < FEW_ROWS ? tiles.rows : tiles.big);
  checkTile(tile);
  const offA = off(s.a);
  const kernel = await gpu.kernel('matmul_q', {
    ...tile,
    F16: w.format === 'f16',
    INT8: w.format === 'int8',
    Q4: w.format === 'q4',
    VEC_A: K % 4 === 0 && offA % 4 === 0,
  });
  return gpu.dispatch(label, kernel, {
    bind: { A: s.a.buffer, W: w.buffer, C: s.c.buffer },
    params: { M, N, K, offA, offC: off(s.c), offQ: w.offset, offS: w.scales, rowWords: rowWords(w.format, K) },
    groups: [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM)],
  });
}

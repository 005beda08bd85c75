// The float64 reference of the quantized products: unpack a packed [rows, cols] matrix (codes then scales, the
// layout src/kernels/matmul-q.ts documents) into float64 weights, then multiply in float64. Decoding here is
// written from the format's description, not shared with the GPU or the host packer, so each checks the other.
import { f16Value, f32FromBits } from '../util/f16.js';
import { matmul } from './matmul.js';
import type { Vec } from './shapes.js';

export type PackedFormat = 'f16' | 'int8' | 'q4';

const GROUP = 32;

/** Weights [rows, cols] in float64 from a packed matrix that starts at words[0]. */
export function dequantize(format: PackedFormat, words: Uint32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  const perWord = format === 'f16' ? 2 : format === 'int8' ? 4 : 8;
  const groups = Math.ceil(cols / GROUP);
  const wordsPerRow = format === 'q4' ? (groups * GROUP) / 8 : Math.ceil(cols / perWord);
  const scalesAt = rows * wordsPerRow;
  for (let r = 0; r < rows; r++) {
    const rowScale = format === 'int8' ? f32FromBits(words[scalesAt + r]) : 1;
    for (let c = 0; c < cols; c++) {
      const word = words[r * wordsPerRow + Math.floor(c / perWord)];
      const j = c % perWord;
      let v: number;
      if (format === 'f16') {
        v = f16Value((word >>> (16 * j)) & 0xffff);
      } else if (format === 'int8') {
        const byte = (word >>> (8 * j)) & 0xff;
        v = (byte >= 128 ? byte - 256 : byte) * rowScale;
      } else {
        const i = r * groups + Math.floor(c / GROUP);
        const scale = f16Value((words[scalesAt + Math.floor(i / 2)] >>> (16 * (i % 2))) & 0xffff);
        v = (((word >>> (4 * j)) & 0xf) - 8) * scale;
      }
      out[r * cols + c] = v;
    }
  }
  return out;
}

/** C[M, N] = A[M, K] · Wᵀ, W [N, K] packed: quantize → dequantize (float64) → matmul (float64). */
export function matmulQ(format: PackedFormat, A: Vec, words: Uint32Array, M: number, N: number, K: number) {
  return matmul(A, dequantize(format, words, N, K), M, N, K, false, true);
}

/** Where a packed tensor of a model sits in its word buffer (src/model/quantize.ts's QuantizedTensor). */
export interface PackedTensorInfo {
  rows: number;
  cols: number;
  /** Stored as the transpose of the tensor (Conv1D weights [in, out] packed as [out, in]). */
  transposed: boolean;
  offset: number;
}

/**
 * A model's weights by name in float64 as a packed model computes with them: the f32 tensors of the flat
 * parameters as they are, the packed ones unpacked from `words` (and transposed back to the tensor's layout).
 */
export function unpackParams(
  format: PackedFormat,
  tensors: readonly { name: string; offset: number; size: number }[],
  params: Float32Array,
  packed: ReadonlyMap<string, PackedTensorInfo>,
  words: Uint32Array,
): Record<string, Float64Array> {
  const out: Record<string, Float64Array> = {};
  for (const t of tensors) {
    const p = packed.get(t.name);
    if (!p) {
      out[t.name] = Float64Array.from(params.subarray(t.offset, t.offset + t.size));
      continue;
    }
    const w = dequantize(format, words.subarray(p.offset), p.rows, p.cols);
    if (!p.transposed) {
      out[t.name] = w;
      continue;
    }
    const back = new Float64Array(w.length);
    for (let r = 0; r < p.rows; r++) for (let c = 0; c < p.cols; c++) back[c * p.rows + r] = w[r * p.cols + c];
    out[t.name] = back;
  }
  return out;
}

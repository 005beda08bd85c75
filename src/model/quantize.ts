// Weight-only quantization of a model for inference, done once on the host when the weights are loaded
// (`--weights f16|int8|q4`). Quantized: every linear layer's weight and the token embedding table (which the tied
// LM head also reads), and an untied lm_head. Kept f32: layer norms, biases, the position embeddings (one row is
// read per token) and a classifier's score layer.
//
// Matrices are packed by output channel, along the input dimension (the format is src/kernels/matmul-q.ts's):
//   - Conv1D weights [in, out] are stored transposed, one row per output;
//   - wte [V, d] and lm_head [V, d] as they are: one row per token, which is also the embedding's row.
// Schemes (both symmetric, no zero point):
//   int8  per output channel: s = max|w| / 127, q = round(w / s) in −127..127
//   q4    llama.cpp's Q4_0 per group of 32 inputs: m = the signed value of largest magnitude, s = f16(m / −8),
//         q = clamp(round(w / s) + 8, 0, 15); m itself maps to q = 0 exactly, −m clips to 7·s
//   f16   round to nearest even (subnormals kept, overflow to ±Inf)
// Rounding is half away from zero. The scale actually stored (f16 for q4) is the one the codes are computed with.
import { HlmError } from '../errors.js';
import { f16Bits, f16Value, f32Bits } from '../util/f16.js';
import {
  Q4_GROUP,
  quantizedWords,
  rowBytes,
  rowWords,
  type QuantFormat,
  type WeightFormat,
} from '../kernels/matmul-q.js';
import { PARAM_ALIGN, alignUp, outputWeight, type ParamLayout, type ParamTensor } from './params.js';

export { WEIGHT_FORMATS, type WeightFormat } from '../kernels/matmul-q.js';

const roundAway = (x: number) => (x < 0 ? -Math.round(-x) : Math.round(x));

/**
 * Pack a [rows, cols] matrix; element (r, c) is at(r, c). Returns codes then scales
 * (quantizedWords(format, rows, cols) words).
 */
export function quantizeMatrix(
  format: QuantFormat,
  rows: number,
  cols: number,
  at: (r: number, c: number) => number,
): Uint32Array {
  const rw = rowWords(format, cols);
  const out = new Uint32Array(quantizedWords(format, rows, cols));
  const scales = rows * rw;
  const row = new Float64Array(rw * (format === 'f16' ? 2 : format === 'int8' ? 4 : 8));
  for (let r = 0; r < rows; r++) {
    row.fill(0);
    for (let c = 0; c < cols; c++) {
      const v = at(r, c);
      if (!Number.isFinite(v)) throw new HlmError(`cannot quantize: element (${r}, ${c}) is ${v}`);
      row[c] = v;
    }
    const base = r * rw;
    if (format === 'f16') {
      for (let i = 0; i < rw; i++) out[base + i] = (f16Bits(row[2 * i]) | (f16Bits(row[2 * i + 1]) << 16)) >>> 0;
    } else if (format === 'int8') {
      let amax = 0;
      for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(row[c]));
      const s = Math.fround(amax / 127);
      out[scales + r] = f32Bits(s);
      for (let i = 0; i < rw; i++) {
        let w = 0;
        for (let j = 0; j < 4; j++) {
          const q = s > 0 ? Math.max(-127, Math.min(127, roundAway(row[4 * i + j] / s))) : 0;
          w |= (q & 0xff) << (8 * j);
        }
        out[base + i] = w >>> 0;
      }
    } else {
      const groups = rw / 4;
      for (let g = 0; g < groups; g++) {
        let m = 0;
        for (let c = g * Q4_GROUP; c < (g + 1) * Q4_GROUP; c++) if (Math.abs(row[c]) > Math.abs(m)) m = row[c];
        const h = f16Bits(m / -8);
        const s = f16Value(h);
        const si = r * groups + g;
        out[scales + (si >> 1)] |= h << (16 * (si & 1));
        for (let i = 0; i < 4; i++) {
          let w = 0;
          for (let j = 0; j < 8; j++) {
            const x = row[g * Q4_GROUP + 8 * i + j];
            const q = s !== 0 ? Math.max(0, Math.min(15, roundAway(x / s) + 8)) : 8;
            w |= q << (4 * j);
          }
          out[base + 4 * g + i] = w >>> 0;
        }
      }
    }
  }
  return out;
}

/** One quantized tensor of a model: the matrix it is stored as, and where its words are. */
export interface QuantizedTensor {
  name: string;
  rows: number;
  cols: number;
  /** A Conv1D weight [in, out], stored as its transpose [out, in]. */
  transposed: boolean;
  /** Word offsets in the quantized buffer (each tensor starts on PARAM_ALIGN words). */
  offset: number;
  scales: number;
  words: number;
}

/** Where a model's weights live in inference with a packed format: the packed ones, and the f32 rest. */
export interface QuantLayout {
  format: QuantFormat;
  quantized: ReadonlyMap<string, QuantizedTensor>;
  /** Words of the packed buffer. */
  words: number;
  /** The f32 tensors: offset in a compact float buffer of `floats` floats. */
  floatOffsets: ReadonlyMap<string, number>;
  floats: number;
}

const LINEAR = /^transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/** Is this tensor packed when the model's weights are quantized? */
export function isQuantizedTensor(name: string): boolean {
  return LINEAR.test(name) || name === 'transformer.wte.weight' || name === 'lm_head.weight';
}

export function quantLayout(layout: ParamLayout, format: QuantFormat): QuantLayout {
  const quantized = new Map<string, QuantizedTensor>();
  const floatOffsets = new Map<string, number>();
  let words = 0;
  let floats = 0;
  for (const t of layout.tensors) {
    if (!isQuantizedTensor(t.name)) {
      floatOffsets.set(t.name, floats);
      floats = alignUp(floats + t.size);
      continue;
    }
    const transposed = LINEAR.test(t.name);
    const [rows, cols] = transposed ? [t.shape[1], t.shape[0]] : [t.shape[0], t.shape[1]];
    const n = quantizedWords(format, rows, cols);
    const codes = rows * rowWords(format, cols);
    quantized.set(t.name, { name: t.name, rows, cols, transposed, offset: words, scales: words + codes, words: n });
    words = alignUp(words + n, PARAM_ALIGN);
  }
  return { format, quantized, words, floatOffsets, floats };
}

/** Pack a model's flat f32 parameters (paramLayout order) into the packed words and the compact f32 rest. */
export function quantizeParams(
  q: QuantLayout,
  layout: ParamLayout,
  params: Float32Array,
): { words: Uint32Array; floats: Float32Array } {
  if (params.length !== layout.total) throw new HlmError(`expected ${layout.total} parameters, got ${params.length}`);
  const words = new Uint32Array(q.words);
  const floats = new Float32Array(q.floats);
  for (const t of layout.tensors) {
    const src = params.subarray(t.offset, t.offset + t.size);
    const qt = q.quantized.get(t.name);
    if (!qt) {
      floats.set(src, q.floatOffsets.get(t.name)!);
      continue;
    }
    const { rows, cols } = qt;
    // Conv1D [in, out]: element (output r, input c) is src[c·out + r].
    const at = qt.transposed
      ? (r: number, c: number) => src[c * rows + r]
      : (r: number, c: number) => src[r * cols + c];
    words.set(quantizeMatrix(q.format, rows, cols, at), qt.offset);
  }
  return { words, floats };
}

/** Bytes a format keeps on the GPU for a model's weights (f32: the flat buffer's tensors, padding excluded). */
export function weightBytes(layout: ParamLayout, format: WeightFormat): number {
  let bytes = 0;
  for (const t of layout.tensors) bytes += tensorBytes(t, format);
  return bytes;
}

function tensorBytes(t: ParamTensor, format: WeightFormat): number {
  if (format === 'f32' || !isQuantizedTensor(t.name)) return 4 * t.size;
  const [rows, cols] = LINEAR.test(t.name) ? [t.shape[1], t.shape[0]] : [t.shape[0], t.shape[1]];
  return rows * rowBytes(format, cols);
}

/**
 * Bytes of weights one forward pass over `rows` positions reads, counting each weight once: every block
 * tensor, ln_f and the output projection (the logits of one position), plus per position one row of the token
 * table and one of the position table. A classifier's score layer is not read. Divided by rows, the weight
 * traffic per token: a decode step is rows = 1.
 */
export function weightBytesPerPass(layout: ParamLayout, format: WeightFormat, rows: number): number {
  const d = layout.config.n_embd;
  const head = outputWeight(layout.config);
  let bytes = rows * (rowBytes(format, d) + 4 * d);
  for (const t of layout.tensors) {
    if (t.name === 'transformer.wpe.weight' || t.name.startsWith('score.')) continue;
    if (t.name === 'transformer.wte.weight' && head !== t.name) continue;
    bytes += tensorBytes(t, format);
  }
  return bytes;
}

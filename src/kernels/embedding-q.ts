// Token + position embeddings (GPT-2's input) with the token table packed (src/kernels/matmul-q.ts's formats):
// inference only, so no backward. The position table stays f32.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { rowWords, type QuantizedRef } from './matmul-q.js';
import { checkSizes, elementGrid, off, type TensorRef } from './types.js';

export interface EmbeddingQSpec {
  B: number;
  T: number;
  d: number;
  /** [B, T] token ids, u32. */
  tokens: TensorRef;
  /** wte [V, d] packed. */
  wte: QuantizedRef;
  /** wpe [P ≥ T, d] f32. */
  wpe: TensorRef;
  /** [B, T, d] f32. */
  out: TensorRef;
  label?: string;
  maxGroupsX?: number;
}

export async function embeddingForwardQ(gpu: Gpu, s: EmbeddingQSpec): Promise<Dispatch> {
  const { B, T, d, wte } = s;
  const label = s.label ?? `embedding ${wte.format} ${B}x${T}x${d}`;
  checkSizes(label, { B, T, d });
  if (wte.cols !== d)
    throw new HlmError(`${label}: the token table is [${wte.rows}, ${wte.cols}], rows of ${d} needed`);
  for (const [name, buffer] of [
    ['tokens', s.tokens.buffer],
    ['wte', wte.buffer],
    ['wpe', s.wpe.buffer],
  ] as const)
    if (buffer === s.out.buffer)
      throw new HlmError(`${label}: out must not share a buffer with ${name} (WebGPU forbids writable aliasing)`);
  const kernel = await gpu.kernel('embedding_forward', {
    QUANT: true,
    VEC4: false,
    F16: wte.format === 'f16',
    INT8: wte.format === 'int8',
    Q4: wte.format === 'q4',
  });
  return gpu.dispatch(label, kernel, {
    bind: { tokens: s.tokens.buffer, W: wte.buffer, wpe: s.wpe.buffer, out: s.out.buffer },
    params: {
      n: B * T * d,
      T,
      d,
      offTok: off(s.tokens),
      offWpe: off(s.wpe),
      offOut: off(s.out),
      offQ: wte.offset,
      offS: wte.scales,
      rowWords: rowWords(wte.format, d),
    },
    groups: elementGrid(gpu, kernel, B * T * d, s.maxGroupsX),
  });
}

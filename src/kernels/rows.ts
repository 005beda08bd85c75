// Moving whole rows by an index: gather the embedding rows of a batch's target tokens (the CWT
// head's negatives), or the hidden states at masked positions, and scatter their gradients back.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, elementGrid, off, type TensorRef } from './types.js';

export interface RowsSpec {
  /** Rows moved. */
  n: number;
  /** Row width. */
  d: number;
  src: TensorRef;
  /** u32 [n] row indices: into src (gather) or into dst (scatter, all distinct). */
  index: TensorRef;
  dst: TensorRef;
  label?: string;
}

async function rows(gpu: Gpu, s: RowsSpec, gather: boolean): Promise<Dispatch> {
  const { n, d } = s;
  const label = s.label ?? `${gather ? 'gather' : 'scatter'} rows ${n}x${d}`;
  checkSizes(label, { n, d });
  if (s.dst.buffer === s.src.buffer || s.dst.buffer === s.index.buffer)
    throw new HlmError(`${label}: dst must not share a buffer with src or index`);
  // 4 elements an invocation where d and the offsets allow.
  const vec4 = d % 4 === 0 && off(s.src) % 4 === 0 && off(s.dst) % 4 === 0;
  const kernel = await gpu.kernel('rows', { GATHER: gather, VEC4: vec4 });
  return gpu.dispatch(label, kernel, {
    bind: { src: s.src.buffer, idx: s.index.buffer, dst: s.dst.buffer },
    params: { n, d, offSrc: off(s.src), offDst: off(s.dst), offIdx: off(s.index) },
    groups: elementGrid(gpu, kernel, (n * d) / (vec4 ? 4 : 1)),
  });
}

/** dst[i, :] = src[index[i], :] */
export function gatherRows(gpu: Gpu, s: RowsSpec): Promise<Dispatch> {
  return rows(gpu, s, true);
}

/** dst[index[i], :] = src[i, :] (indices distinct; other rows of dst untouched). */
export function scatterRows(gpu: Gpu, s: RowsSpec): Promise<Dispatch> {
  return rows(gpu, s, false);
}

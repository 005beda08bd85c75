// Moving whole rows by an index: gather the embedding rows of a batch's target tokens (the CWT
// head's negatives), or the hidden states at masked positions, and scatter their gradients back.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, packParams, type TensorRef } from './types.js';

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

const WG = 256; // matches WG in rows.wgsl

async function rows(gpu: Gpu, s: RowsSpec, gather: boolean): Promise<Dispatch> {
  const label = s.label ?? `${gather ? 'gather' : 'scatter'} rows ${s.n}x${s.d}`;
  if (!(Number.isInteger(s.n) && s.n > 0 && Number.isInteger(s.d) && s.d > 0))
    throw new HlmError(`${label}: n and d must be positive integers`);
  if (s.dst.buffer === s.src.buffer || s.dst.buffer === s.index.buffer)
    throw new HlmError(`${label}: dst must not share a buffer with src or index`);
  const pipeline = await gpu.pipeline('rows', { GATHER: gather });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.n],
      ['u32', s.d],
      ['u32', s.src.offset ?? 0],
      ['u32', s.dst.offset ?? 0],
      ['u32', s.index.offset ?? 0],
      ['u32', 0],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  return gpu.dispatch(
    label,
    pipeline,
    [s.src.buffer, s.index.buffer, s.dst.buffer, uniform],
    grid(gpu, s.n * s.d, WG),
    [uniform],
  );
}

/** dst[i, :] = src[index[i], :] */
export function gatherRows(gpu: Gpu, s: RowsSpec): Promise<Dispatch> {
  return rows(gpu, s, true);
}

/** dst[index[i], :] = src[i, :] (indices distinct; other rows of dst untouched). */
export function scatterRows(gpu: Gpu, s: RowsSpec): Promise<Dispatch> {
  return rows(gpu, s, false);
}

// Row-wise sum, max and argmax: the reductions behind softmax, LayerNorm statistics, losses and
// greedy decoding (whose argmax reads back one u32 a row instead of a row of logits).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, grid, off, type TensorRef } from './types.js';

export interface ReduceRowsSpec {
  /** argmax: the first index of the row's largest value, NaN counting as largest (u32 out). */
  op: 'sum' | 'max' | 'argmax';
  rows: number;
  cols: number;
  x: TensorRef;
  out: TensorRef;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

export async function reduceRows(gpu: Gpu, s: ReduceRowsSpec): Promise<Dispatch> {
  const { op, rows, cols } = s;
  const label = s.label ?? `${op} rows ${rows}x${cols}`;
  checkSizes(label, { rows, cols });
  if (s.x.buffer === s.out.buffer)
    throw new HlmError(`${label}: out must not share a buffer with x (WebGPU forbids writable aliasing)`);
  return gpu.dispatch(label, await gpu.kernel('reduce_rows', { MAX: op === 'max', ARGMAX: op === 'argmax' }), {
    bind: { x: s.x.buffer, out: s.out.buffer },
    params: { rows, cols, offX: off(s.x), offOut: off(s.out) },
    groups: grid(gpu, rows, 1, s.maxGroupsX),
  });
}

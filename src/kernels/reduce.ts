// Row-wise sum and max: the reductions behind softmax, LayerNorm statistics and losses.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, packParams, type TensorRef } from './types.js';

export interface ReduceRowsSpec {
  op: 'sum' | 'max';
  rows: number;
  cols: number;
  x: TensorRef;
  out: TensorRef;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

export async function reduceRows(gpu: Gpu, s: ReduceRowsSpec): Promise<Dispatch> {
  const label = s.label ?? `${s.op} rows ${s.rows}x${s.cols}`;
  if (!(Number.isInteger(s.rows) && s.rows > 0 && Number.isInteger(s.cols) && s.cols > 0))
    throw new HlmError(`${label}: rows and cols must be positive integers`);
  if (s.x.buffer === s.out.buffer) throw new HlmError(`${label}: out must not share a buffer with x`);
  const pipeline = await gpu.pipeline('reduce_rows', { MAX: s.op === 'max' });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.rows],
      ['u32', s.cols],
      ['u32', s.x.offset ?? 0],
      ['u32', s.out.offset ?? 0],
    ]),
  );
  return gpu.dispatch(label, pipeline, [s.x.buffer, s.out.buffer, uniform], grid(gpu, s.rows, 1, s.maxGroupsX), [
    uniform,
  ]);
}

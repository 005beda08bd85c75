// Row argmax over a [rows, n] f32 tensor: the first index of each row's largest value (NaN
// counts as largest). Greedy decoding's last step, so only one u32 per row comes back.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { reduceRows } from './reduce.js';
import type { TensorRef } from './types.js';

export interface ArgmaxSpec {
  rows: number;
  n: number;
  x: TensorRef;
  /** u32 [rows] out. */
  out: TensorRef;
  label?: string;
}

export function argmaxRows(gpu: Gpu, s: ArgmaxSpec): Promise<Dispatch> {
  return reduceRows(gpu, { op: 'argmax', rows: s.rows, cols: s.n, x: s.x, out: s.out, label: s.label });
}

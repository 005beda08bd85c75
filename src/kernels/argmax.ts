// Row argmax over a [rows, n] f32 tensor: the first index of each row's largest value (NaN
// counts as largest). Greedy decoding's last step, so only one u32 per row comes back.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, packParams, type TensorRef } from './types.js';

export interface ArgmaxSpec {
  rows: number;
  n: number;
  x: TensorRef;
  /** u32 [rows] out. */
  out: TensorRef;
  label?: string;
}

export async function argmaxRows(gpu: Gpu, s: ArgmaxSpec): Promise<Dispatch> {
  const label = s.label ?? `argmax ${s.rows}x${s.n}`;
  if (!(Number.isInteger(s.rows) && s.rows > 0 && Number.isInteger(s.n) && s.n > 0))
    throw new HlmError(`${label}: rows and n must be positive integers, got ${s.rows} x ${s.n}`);
  if (s.out.buffer === s.x.buffer)
    throw new HlmError(`${label}: out must not share a buffer with x (WebGPU forbids writable aliasing)`);
  const pipeline = await gpu.pipeline('argmax');
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.rows],
      ['u32', s.n],
      ['u32', s.x.offset ?? 0],
      ['u32', s.out.offset ?? 0],
    ]),
  );
  return gpu.dispatch(label, pipeline, [s.x.buffer, s.out.buffer, uniform], grid(gpu, s.rows, 1), [uniform]);
}

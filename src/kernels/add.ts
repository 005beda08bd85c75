// Broadcast add (residual connections, bias adds): out = a + alpha·broadcast(b).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, packParams, type TensorRef } from './types.js';

export interface AddSpec {
  rows: number;
  cols: number;
  out: TensorRef;
  /** Omit, or pass `out` itself, to add in place. */
  a?: TensorRef;
  b: TensorRef;
  /** b's strides in elements: [cols, 1] elementwise (default), [0, 1] row vector, [1, 0] column vector. */
  bStrides?: [number, number];
  alpha?: number;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

const WG = 256; // matches WG in add.wgsl

export async function add(gpu: Gpu, s: AddSpec): Promise<Dispatch> {
  const label = s.label ?? `add ${s.rows}x${s.cols}`;
  if (!(Number.isInteger(s.rows) && s.rows > 0 && Number.isInteger(s.cols) && s.cols > 0))
    throw new HlmError(`${label}: rows and cols must be positive integers`);
  const inPlace = !s.a || (s.a.buffer === s.out.buffer && (s.a.offset ?? 0) === (s.out.offset ?? 0));
  if (!inPlace && s.a!.buffer === s.out.buffer)
    throw new HlmError(`${label}: a and out share a buffer at different offsets (WebGPU forbids writable aliasing)`);
  if (s.b.buffer === s.out.buffer) throw new HlmError(`${label}: b must not share a buffer with out`);
  const [sbr, sbc] = s.bStrides ?? [s.cols, 1];
  const pipeline = await gpu.pipeline('add', { IN_PLACE: inPlace });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.rows],
      ['u32', s.cols],
      ['u32', sbr],
      ['u32', sbc],
      ['u32', s.out.offset ?? 0],
      ['u32', s.a?.offset ?? 0],
      ['u32', s.b.offset ?? 0],
      ['f32', s.alpha ?? 1],
    ]),
  );
  const bindings = [s.out.buffer, s.b.buffer, uniform, ...(inPlace ? [] : [s.a!.buffer])];
  return gpu.dispatch(label, pipeline, bindings, grid(gpu, s.rows * s.cols, WG, s.maxGroupsX), [uniform]);
}

// Broadcast add (residual connections, bias adds): out = a + alpha·broadcast(b).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, elementGrid, off, type TensorRef } from './types.js';

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

export async function add(gpu: Gpu, s: AddSpec): Promise<Dispatch> {
  const { rows, cols } = s;
  const label = s.label ?? `add ${rows}x${cols}`;
  checkSizes(label, { rows, cols });
  const inPlace = !s.a || (s.a.buffer === s.out.buffer && off(s.a) === off(s.out));
  if (!inPlace && s.a!.buffer === s.out.buffer)
    throw new HlmError(`${label}: a and out share a buffer at different offsets (WebGPU forbids writable aliasing)`);
  if (s.b.buffer === s.out.buffer) throw new HlmError(`${label}: b must not share a buffer with out`);
  const [sbr, sbc] = s.bStrides ?? [cols, 1];
  const kernel = await gpu.kernel('add', { IN_PLACE: inPlace });
  return gpu.dispatch(label, kernel, {
    bind: { out: s.out.buffer, b: s.b.buffer, ...(inPlace ? {} : { a: s.a!.buffer }) },
    params: { rows, cols, sbr, sbc, offOut: off(s.out), offA: off(s.a), offB: off(s.b), alpha: s.alpha ?? 1 },
    groups: elementGrid(gpu, kernel, rows * cols, s.maxGroupsX),
  });
}

// GELU (tanh approximation, GPT-2's gelu_new), forward and backward, elementwise.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, packParams, type TensorRef } from './types.js';

export interface GeluForwardSpec {
  n: number;
  x: TensorRef;
  /** May be `x` itself (same buffer and offset): computed in place. */
  out: TensorRef;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

export interface GeluBackwardSpec {
  n: number;
  x: TensorRef;
  dout: TensorRef;
  /** Overwritten with gelu'(x)·dout; may be `dout` itself (same buffer and offset). */
  dx: TensorRef;
  label?: string;
  maxGroupsX?: number;
}

const WG = 256; // matches WG in gelu.wgsl

const same = (a: TensorRef, b: TensorRef) => a.buffer === b.buffer && (a.offset ?? 0) === (b.offset ?? 0);

function checkN(label: string, n: number): void {
  if (!(Number.isInteger(n) && n > 0)) throw new HlmError(`${label}: n must be a positive integer, got ${n}`);
}

export async function geluForward(gpu: Gpu, s: GeluForwardSpec): Promise<Dispatch> {
  const label = s.label ?? `gelu ${s.n}`;
  checkN(label, s.n);
  const inPlace = same(s.x, s.out);
  if (!inPlace && s.x.buffer === s.out.buffer)
    throw new HlmError(`${label}: x and out share a buffer at different offsets (WebGPU forbids writable aliasing)`);
  const pipeline = await gpu.pipeline('gelu', { BACKWARD: false, IN_PLACE: inPlace });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.n],
      ['u32', s.x.offset ?? 0],
      ['u32', 0],
      ['u32', s.out.offset ?? 0],
    ]),
  );
  const bindings = [s.out.buffer, uniform, ...(inPlace ? [] : [s.x.buffer])];
  return gpu.dispatch(label, pipeline, bindings, grid(gpu, s.n, WG, s.maxGroupsX), [uniform]);
}

export async function geluBackward(gpu: Gpu, s: GeluBackwardSpec): Promise<Dispatch> {
  const label = s.label ?? `gelu backward ${s.n}`;
  checkN(label, s.n);
  const inPlace = same(s.dout, s.dx);
  if (!inPlace && s.dout.buffer === s.dx.buffer)
    throw new HlmError(`${label}: dout and dx share a buffer at different offsets (WebGPU forbids writable aliasing)`);
  if (s.x.buffer === s.dx.buffer) throw new HlmError(`${label}: x must not share a buffer with dx`);
  const pipeline = await gpu.pipeline('gelu', { BACKWARD: true, IN_PLACE: inPlace });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.n],
      ['u32', s.x.offset ?? 0],
      ['u32', s.dout.offset ?? 0],
      ['u32', s.dx.offset ?? 0],
    ]),
  );
  const bindings = [s.dx.buffer, uniform, s.x.buffer, ...(inPlace ? [] : [s.dout.buffer])];
  return gpu.dispatch(label, pipeline, bindings, grid(gpu, s.n, WG, s.maxGroupsX), [uniform]);
}

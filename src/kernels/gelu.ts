// GELU (tanh approximation, GPT-2's gelu_new), forward and backward, elementwise.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, elementGrid, off, type TensorRef } from './types.js';

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

const same = (a: TensorRef, b: TensorRef) => a.buffer === b.buffer && off(a) === off(b);

/** Either pass: `out` is written; in place, the forward's x or the backward's dout is `out` itself. */
async function gelu(
  gpu: Gpu,
  label: string,
  n: number,
  pass: { backward: boolean; inPlace: boolean; out: TensorRef; x: TensorRef; dout?: TensorRef },
  maxGroupsX?: number,
): Promise<Dispatch> {
  const { backward, inPlace, out, x, dout } = pass;
  // 4 values an invocation where n and every offset allow.
  const vec4 = n % 4 === 0 && [out, x, dout].every((r) => off(r) % 4 === 0);
  const kernel = await gpu.kernel('gelu', { BACKWARD: backward, IN_PLACE: inPlace, VEC4: vec4 });
  const bind: Record<string, GPUBuffer> = { out: out.buffer };
  if (backward || !inPlace) bind.x = x.buffer;
  if (backward && !inPlace) bind.dout = dout!.buffer;
  return gpu.dispatch(label, kernel, {
    bind,
    params: { n, offX: off(x), offDout: off(dout), offOut: off(out) },
    groups: elementGrid(gpu, kernel, vec4 ? n / 4 : n, maxGroupsX),
  });
}

export async function geluForward(gpu: Gpu, s: GeluForwardSpec): Promise<Dispatch> {
  const label = s.label ?? `gelu ${s.n}`;
  checkSizes(label, { n: s.n });
  const inPlace = same(s.x, s.out);
  if (!inPlace && s.x.buffer === s.out.buffer)
    throw new HlmError(`${label}: x and out share a buffer at different offsets (WebGPU forbids writable aliasing)`);
  return gelu(gpu, label, s.n, { backward: false, inPlace, out: s.out, x: s.x }, s.maxGroupsX);
}

export async function geluBackward(gpu: Gpu, s: GeluBackwardSpec): Promise<Dispatch> {
  const label = s.label ?? `gelu backward ${s.n}`;
  checkSizes(label, { n: s.n });
  const inPlace = same(s.dout, s.dx);
  if (!inPlace && s.dout.buffer === s.dx.buffer)
    throw new HlmError(`${label}: dout and dx share a buffer at different offsets (WebGPU forbids writable aliasing)`);
  if (s.x.buffer === s.dx.buffer) throw new HlmError(`${label}: x must not share a buffer with dx`);
  return gelu(gpu, label, s.n, { backward: true, inPlace, out: s.dx, x: s.x, dout: s.dout }, s.maxGroupsX);
}

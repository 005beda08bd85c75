// f32 → packed f16 copies (the mixed-precision weights and activations that feed matmuls), with an optional scalar
// multiplier read on the GPU (the loss scale), rounded to nearest even with overflow to ±Inf (src/wgsl/cast_f16.wgsl).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, elementGrid, isF16, off, offAny, type TensorRef } from './types.js';

export interface CastF16Spec {
  n: number;
  /** f32 values. */
  src: TensorRef;
  /** dtype 'f16'; its offset (in halves) may be odd: the halves around it are left as they were. */
  dst: TensorRef;
  /** An f32 scalar on the GPU multiplying every value before rounding. */
  scale?: TensorRef;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

export async function castF16(gpu: Gpu, s: CastF16Spec): Promise<Dispatch> {
  const { n } = s;
  const label = s.label ?? `castF16 ${n}`;
  checkSizes(label, { n });
  if (!isF16(s.dst)) throw new HlmError(`${label}: dst must be an f16 tensor (dtype 'f16')`);
  if (isF16(s.src) || isF16(s.scale)) throw new HlmError(`${label}: src and scale must be f32`);
  // WebGPU forbids binding a buffer read-only and writable in one dispatch.
  if (s.src.buffer === s.dst.buffer || s.scale?.buffer === s.dst.buffer)
    throw new HlmError(`${label}: dst must not share a buffer with src or scale`);
  const offDst = offAny(s.dst);
  const words = Math.ceil((offDst + n) / 2) - Math.floor(offDst / 2);
  const kernel = await gpu.kernel('cast_f16', { SCALE: Boolean(s.scale) });
  return gpu.dispatch(label, kernel, {
    bind: { dst: s.dst.buffer, src: s.src.buffer, ...(s.scale ? { scale: s.scale.buffer } : {}) },
    params: { n, offSrc: off(s.src), offDst, offScale: off(s.scale), words },
    groups: elementGrid(gpu, kernel, words, s.maxGroupsX),
  });
}

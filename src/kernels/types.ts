import type { Gpu, Kernel } from '../gpu/device.js';
import { HlmError } from '../errors.js';

// How kernels are called. A kernel module exports an async factory that checks its spec, gets its
// compiled kernel (gpu.kernel, cached) and returns gpu.dispatch's Dispatch: buffers bound by the
// shader's variable names, parameters given by the names of its `struct Params` fields and written
// into a small uniform the dispatch owns. Training code builds every Dispatch of a step once and
// re-submits the same list each step (llm.c style: nothing allocated per step). Kernel modules
// only bind and dispatch: submitting work and reading back are their callers'.

/**
 * How a tensor's elements are stored. 'f16': IEEE binary16, two to a u32 word in pack2x16float's order (element 2i
 * in the low half of word i), the storage of the mixed-precision copies that feed matmuls (--precision f16).
 */
export type Dtype = 'f32' | 'f16';

/** A tensor inside a GPU buffer: `offset` is in elements (f32, u32, or halves for f16), not bytes. */
export interface TensorRef {
  buffer: GPUBuffer;
  offset?: number;
  /** Default f32. Only kernels that say so read f16 (offAny); the others refuse it (off). */
  dtype?: Dtype;
}

export function ref(buffer: GPUBuffer, offset = 0): TensorRef {
  return { buffer, offset };
}

/**
 * Workgroups for `n` items at `perGroup` each, folded into y past the x limit (shaders rebuild the index from
 * num_workgroups).
 */
export function grid(
  gpu: Gpu,
  n: number,
  perGroup: number,
  maxX = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535,
): [number, number] {
  const groups = Math.ceil(n / perGroup);
  return groups <= maxX ? [groups, 1] : [maxX, Math.ceil(groups / maxX)];
}

/** Workgroups for a kernel with one invocation per element (src/wgsl/lib/elementwise.wgsl, WG a workgroup). */
export function elementGrid(gpu: Gpu, kernel: Kernel, n: number, maxX?: number): [number, number] {
  return grid(gpu, n, kernel.constant('WG'), maxX);
}

/** Refuse sizes that are not positive integers, naming the first such. */
export function checkSizes(label: string, sizes: Record<string, number>): void {
  for (const [k, v] of Object.entries(sizes))
    if (!(Number.isInteger(v) && v > 0)) throw new HlmError(`${label}: ${k} must be a positive integer, got ${v}`);
}

/** A tensor's element offset in its buffer (0 when it has none), for kernels that read it as 32-bit elements. */
export function off(r: TensorRef | undefined): number {
  if (r?.dtype === 'f16')
    throw new HlmError(`an f16 tensor (offset ${r.offset ?? 0}) was given to a kernel that reads only f32 and u32`);
  return r?.offset ?? 0;
}

/** The element offset of a tensor a kernel reads in either dtype (it checks isF16 itself). */
export function offAny(r: TensorRef | undefined): number {
  return r?.offset ?? 0;
}

export function isF16(r: TensorRef | undefined): boolean {
  return r?.dtype === 'f16';
}

/** The buffers of named tensors, for gpu.dispatch's bindings by name. */
export function buffers(refs: Record<string, TensorRef>): Record<string, GPUBuffer> {
  return Object.fromEntries(Object.entries(refs).map(([name, r]) => [name, r.buffer]));
}

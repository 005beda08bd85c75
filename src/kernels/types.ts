import type { Gpu } from '../gpu/device.js';

// How kernels are called. A kernel module exports an async factory that compiles (or takes
// from the cache) its pipeline, writes its parameters into a small uniform buffer it owns,
// binds its buffers once and returns a Dispatch. Training code builds every Dispatch of a
// step once and re-submits the same list each step (llm.c style: nothing allocated per step).

/** A tensor inside a GPU buffer: `offset` is in elements (f32 or u32), not bytes. */
export interface TensorRef {
  buffer: GPUBuffer;
  offset?: number;
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

/** Pack kernel parameters for a WGSL uniform struct of u32/i32/f32 fields, each 4 bytes, padded to 16. */
export function packParams(
  fields: { u32?: number[]; f32?: number[] } | ['u32' | 'i32' | 'f32', number][],
): Uint32Array {
  const list = Array.isArray(fields)
    ? fields
    : [
        ...(fields.u32 ?? []).map((v) => ['u32', v] as ['u32', number]),
        ...(fields.f32 ?? []).map((v) => ['f32', v] as ['f32', number]),
      ];
  const words = new Uint32Array(Math.max(4, Math.ceil(list.length / 4) * 4));
  const view = new DataView(words.buffer);
  list.forEach(([type, v], i) => {
    if (type === 'f32') view.setFloat32(i * 4, v, true);
    else if (type === 'i32') view.setInt32(i * 4, v, true);
    else {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
        throw new Error(`kernel parameter ${i} must be a u32, got ${v}`);
      view.setUint32(i * 4, v, true);
    }
  });
  return words;
}

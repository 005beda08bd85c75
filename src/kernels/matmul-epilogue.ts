// The host side of lib/matmul_epilogue.wgsl, which every matmul kernel writes C through (matmul.ts's tiled and
// register kernels, the split-K sum, matmul-subgroup.ts): which of bias, residual and GELU apply, their offsets, and
// their bindings, with a small shared placeholder for each one unused (a shader's every binding must be bound).
import type { Binding, Gpu } from '../gpu/device.js';
import { off, type TensorRef } from './types.js';

export interface EpilogueBindings {
  params: Record<string, number>;
  bind: Record<string, Binding>;
}

/** The epilogue of a product with these tensors; `on` false (a partial product) applies none of them. */
export function epilogueBindings(
  gpu: Gpu,
  s: { bias?: TensorRef; residual?: TensorRef; gelu?: TensorRef },
  on: boolean,
): EpilogueBindings {
  const none = gpu.shared('matmul epilogue placeholder', 16);
  const noneOut = gpu.shared('matmul epilogue placeholder out', 16);
  const ep = on ? (s.bias ? 1 : 0) | (s.residual ? 2 : 0) | (s.gelu ? 4 : 0) : 0;
  return {
    params: { ep, offBias: on ? off(s.bias) : 0, offR: on ? off(s.residual) : 0, offG: on ? off(s.gelu) : 0 },
    bind: {
      bias: (on && s.bias?.buffer) || none,
      R: (on && s.residual?.buffer) || none,
      G: (on && s.gelu?.buffer) || noneOut,
    },
  };
}

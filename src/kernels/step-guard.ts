// The step guard (step_guard.wgsl): one invocation, after the gradient norm and before the
// optimizer, that sets the flag the optimizers read to skip an update whose loss or gradient norm
// is not finite. The decision stays on the GPU, so a step costs no readback for it.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { off, type TensorRef } from './types.js';

/** Bytes of a guard buffer: u32 [0] skip this step, [1] steps skipped so far, f32 [2] this step's loss. */
export const GUARD_BYTES = 16;
/** Byte offset in the guard buffer where each step's loss is copied before the guard runs. */
export const GUARD_LOSS_OFFSET = 8;

export interface StepGuardSpec {
  /** GUARD_BYTES, zeroed at the start of training; its element 0 is the optimizers' `skip`. */
  guard: GPUBuffer;
  /** f32 gradient norm of the step (gradClip's normOut). */
  norm: TensorRef;
  /** Once a step was skipped, skip every later one until the guard is cleared (default true). */
  sticky?: boolean;
  label?: string;
}

export async function stepGuard(gpu: Gpu, s: StepGuardSpec): Promise<Dispatch> {
  const label = s.label ?? 'step guard';
  if (s.guard.size < GUARD_BYTES) throw new HlmError(`${label}: the guard buffer needs ${GUARD_BYTES} bytes`);
  if (s.norm.buffer === s.guard) throw new HlmError(`${label}: the norm must not be in the guard buffer`);
  const kernel = await gpu.kernel('step_guard', { STICKY: s.sticky ?? true });
  return gpu.dispatch(label, kernel, {
    bind: { guard: s.guard, norm: s.norm.buffer },
    params: { offNorm: off(s.norm) },
    groups: [1],
  });
}

// The step guard (step_guard.wgsl): one invocation, after the gradient norm and before the
// optimizer, that sets the flag the optimizers read to skip an update whose loss or gradient norm
// is not finite, and with loss scaling keeps the scale. The decision stays on the GPU, so a step
// costs no readback for it.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { off, type TensorRef } from './types.js';

/**
 * Bytes of a guard buffer: u32 [0] skip this step, [1] steps skipped as non-finite so far, f32 [2] this step's loss,
 * f32 [3] the loss scale, u32 [4] applied steps since the scale last changed, [5] steps skipped for an overflow.
 */
export const GUARD_BYTES = 32;
/** Byte offset in the guard buffer where each step's loss is copied before the guard runs. */
export const GUARD_LOSS_OFFSET = 8;
/** Element (f32) of the guard buffer holding the loss scale: the heads multiply their gradients by it. */
export const GUARD_SCALE = 3;
/** Largest dynamic loss scale (2^24): past it the scale stops growing. */
export const MAX_LOSS_SCALE = 2 ** 24;

/** Loss scaling: the first (or fixed) scale, and after how many applied steps a dynamic one doubles (0: fixed). */
export interface LossScaling {
  scale: number;
  growth: number;
}

/** The loss-scaling state kept in the guard buffer (and in checkpoints, so that resume is bit for bit). */
export interface LossScaleState {
  scale: number;
  goodSteps: number;
  overflows: number;
}

export interface StepGuardSpec {
  /** GUARD_BYTES, zeroed at the start of training; its element 0 is the optimizers' `skip`. */
  guard: GPUBuffer;
  /** f32 gradient norm of the step (gradClip's normOut; unscaled by it under loss scaling). */
  norm: TensorRef;
  /** Once a step was skipped as non-finite, skip every later one until the guard is cleared (default true). */
  sticky?: boolean;
  /** Loss scaling: a finite loss with a non-finite norm is an overflow (skip, halve a dynamic scale). */
  scaling?: LossScaling;
  label?: string;
}

export function checkLossScaling(s: LossScaling): void {
  if (!(Number.isFinite(s.scale) && s.scale >= 1 && s.scale <= MAX_LOSS_SCALE))
    throw new HlmError(`the loss scale must be in 1..${MAX_LOSS_SCALE}, got ${s.scale}`);
  if (!(Number.isInteger(s.growth) && s.growth >= 0))
    throw new HlmError(`the loss-scale growth interval must be a whole number of steps (0 = fixed), got ${s.growth}`);
}

export async function stepGuard(gpu: Gpu, s: StepGuardSpec): Promise<Dispatch> {
  const label = s.label ?? 'step guard';
  if (s.guard.size < GUARD_BYTES) throw new HlmError(`${label}: the guard buffer needs ${GUARD_BYTES} bytes`);
  if (s.norm.buffer === s.guard) throw new HlmError(`${label}: the norm must not be in the guard buffer`);
  if (s.scaling) checkLossScaling(s.scaling);
  const kernel = await gpu.kernel('step_guard', { STICKY: s.sticky ?? true, SCALING: Boolean(s.scaling) });
  return gpu.dispatch(label, kernel, {
    bind: { guard: s.guard, norm: s.norm.buffer },
    params: { offNorm: off(s.norm), growth: s.scaling?.growth ?? 0 },
    groups: [1],
  });
}

/** Start (or restore) loss scaling in a guard buffer: the skip flags cleared, the scale state written. */
export function writeLossScale(gpu: Gpu, guard: GPUBuffer, state: LossScaleState): void {
  const w = new Uint32Array(GUARD_BYTES / 4);
  new Float32Array(w.buffer)[GUARD_SCALE] = state.scale;
  w[4] = state.goodSteps;
  w[5] = state.overflows;
  gpu.write(guard, w);
}

/** Read the loss-scaling state back from a guard buffer. */
export async function readLossScale(gpu: Gpu, guard: GPUBuffer): Promise<LossScaleState> {
  const w = await gpu.read(guard, Uint32Array, 0, GUARD_BYTES / 4);
  return { scale: new Float32Array(w.buffer)[GUARD_SCALE], goodSteps: w[4], overflows: w[5] };
}

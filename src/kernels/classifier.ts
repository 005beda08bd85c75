// The sequence classifier's per-row loss and its gradient (src/wgsl/classifier_loss.wgsl):
// softmax cross-entropy over C classes, or squared error when C = 1 (STS-B's regression).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { buffers, checkSizes, elementGrid, off, type TensorRef } from './types.js';

export interface ClassifierLossSpec {
  rows: number;
  /** Classes, or 1 for regression. */
  C: number;
  /** f32 [rows, C]. */
  logits: TensorRef;
  /** f32 [rows]: class index (as a float) or regression target. */
  targets: TensorRef;
  /** f32 [rows]: each row's weight divided by the batch's total (0 drops a row). */
  weights: TensorRef;
  /** f32 [rows] out: weighted losses (their sum is the batch loss). */
  losses: TensorRef;
  /** f32 [rows, C] out: d loss / d logits (times gradScale). */
  dlogits: TensorRef;
  /**
   * f32 scalar multiplying dlogits (not the losses): dynamic loss scaling's scale, kept on the GPU where the step guard
   * changes it. Not in the losses' or dlogits' buffer.
   */
  gradScale?: TensorRef;
  label?: string;
}

export async function classifierLoss(gpu: Gpu, s: ClassifierLossSpec): Promise<Dispatch> {
  const label = s.label ?? `classifier loss ${s.rows}x${s.C}`;
  checkSizes(label, { rows: s.rows, C: s.C });
  const written = [s.losses.buffer, s.dlogits.buffer];
  if (
    s.losses.buffer === s.dlogits.buffer ||
    [s.logits, s.targets, s.weights, s.gradScale].some((r) => r && written.includes(r.buffer))
  ) {
    throw new HlmError(`${label}: losses and dlogits need their own buffers (WebGPU forbids writable aliasing)`);
  }
  for (const r of [s.targets, s.weights, s.losses])
    if (r.offset) throw new HlmError(`${label}: targets, weights and losses start at offset 0`);
  // A batch's rows are few: 64 invocations a workgroup.
  const kernel = await gpu.kernel('classifier_loss', { WG: 64, GRAD_SCALE: Boolean(s.gradScale) });
  const { logits, targets, weights, losses, dlogits, gradScale } = s;
  return gpu.dispatch(label, kernel, {
    bind: buffers({ logits, targets, weights, losses, dlogits, ...(gradScale ? { gradScale } : {}) }),
    params: {
      rows: s.rows,
      C: s.C,
      offLogits: off(logits),
      offDlogits: off(dlogits),
      offGradScale: off(gradScale),
    },
    groups: elementGrid(gpu, kernel, s.rows),
  });
}

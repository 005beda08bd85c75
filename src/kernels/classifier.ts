// The sequence classifier's per-row loss and its gradient (src/wgsl/classifier_loss.wgsl):
// softmax cross-entropy over C classes, or squared error when C = 1 (STS-B's regression).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { packParams, type TensorRef } from './types.js';

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
  /** f32 [rows, C] out: d loss / d logits. */
  dlogits: TensorRef;
  label?: string;
}

const WG = 64; // matches WG in classifier_loss.wgsl

export async function classifierLoss(gpu: Gpu, s: ClassifierLossSpec): Promise<Dispatch> {
  const label = s.label ?? `classifier loss ${s.rows}x${s.C}`;
  if (!(Number.isInteger(s.rows) && s.rows > 0 && Number.isInteger(s.C) && s.C > 0))
    throw new HlmError(`${label}: rows and C must be positive integers`);
  const written = [s.losses.buffer, s.dlogits.buffer];
  if (
    s.losses.buffer === s.dlogits.buffer ||
    [s.logits, s.targets, s.weights].some((r) => written.includes(r.buffer))
  ) {
    throw new HlmError(`${label}: losses and dlogits need their own buffers (WebGPU forbids writable aliasing)`);
  }
  for (const r of [s.targets, s.weights, s.losses])
    if (r.offset) throw new HlmError(`${label}: targets, weights and losses start at offset 0`);
  const groups = Math.ceil(s.rows / WG);
  if (groups > (gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535))
    throw new HlmError(`${label}: ${s.rows} rows is more than one dispatch covers`);
  const pipeline = await gpu.pipeline('classifier_loss');
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.rows],
      ['u32', s.C],
      ['u32', s.logits.offset ?? 0],
      ['u32', s.dlogits.offset ?? 0],
    ]),
  );
  return gpu.dispatch(
    label,
    pipeline,
    [s.logits.buffer, s.targets.buffer, s.weights.buffer, s.losses.buffer, s.dlogits.buffer, uniform],
    [groups],
    [uniform],
  );
}

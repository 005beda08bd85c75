// Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ over all parameters as one
// vector) without a readback: two fixed-order reduction passes compute ‖g‖₂ and write
// scale = min(1, maxNorm / (‖g‖₂ + 1e-6)) into a GPU buffer, and the optimizer multiplies
// each gradient by it as it reads it. The gradients themselves are left untouched.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { rangePieces } from './optimizer.js';
import { grid, packParams, type TensorRef } from './types.js';

/** Elements per workgroup of the first pass (WG·PER in gradclip_partial.wgsl). */
export const GRADCLIP_CHUNK = 256 * 16;

export interface GradClipSpec {
  /** Number of gradient elements. */
  n: number;
  grads: TensorRef;
  /** Largest allowed global norm; 0 turns clipping off (scale 1; the norm is still computed). */
  maxNorm: number;
  /** f32 scalar out: the factor to multiply every gradient by. */
  scaleOut: TensorRef;
  /** f32 scalar out: the norm before clipping (for metrics). May share scaleOut's buffer. */
  normOut?: TensorRef;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
  /** Cap on a binding's size below the adapter's; tests lower it to exercise windowed dispatches. */
  maxBindingBytes?: number;
}

/**
 * The dispatches: partial sums of squares (one, or one per window where the gradients exceed
 * the storage-binding limit; the sums are the same either way), then norm and scale.
 * gpu.release frees their scratch.
 */
export async function gradClip(gpu: Gpu, s: GradClipSpec): Promise<Dispatch[]> {
  const label = s.label ?? `grad clip ${s.n}`;
  if (!Number.isInteger(s.n) || s.n < 1) throw new HlmError(`${label}: n must be a positive integer, got ${s.n}`);
  if (!(Number.isFinite(s.maxNorm) && s.maxNorm >= 0))
    throw new HlmError(`${label}: maxNorm must be ≥ 0 (0 = off), got ${s.maxNorm}`);
  for (const [name, r] of [
    ['scaleOut', s.scaleOut],
    ['normOut', s.normOut],
  ] as const) {
    if (r && r.buffer === s.grads.buffer)
      throw new HlmError(`${label}: ${name} must not share the gradients' buffer (WebGPU forbids writable aliasing)`);
  }
  const sameBuffer = s.normOut?.buffer === s.scaleOut.buffer;
  if (sameBuffer && (s.normOut!.offset ?? 0) === (s.scaleOut.offset ?? 0))
    throw new HlmError(`${label}: normOut and scaleOut are the same element`);
  const count = Math.ceil(s.n / GRADCLIP_CHUNK);
  const partials = gpu.buffer(`${label} partial sums`, count * 4);
  const p1 = await gpu.pipeline('gradclip_partial');
  const pieces = rangePieces(gpu, s.n, [s.grads], GRADCLIP_CHUNK, s.maxBindingBytes);
  const first = pieces.map((piece, k) => {
    const name = `${label} partial sums${pieces.length > 1 ? ` [${k + 1}/${pieces.length}]` : ''}`;
    const u1 = gpu.uniform(
      `${name} params`,
      packParams([
        ['u32', piece.count],
        ['u32', piece.binds[0].offset],
        ['u32', piece.start / GRADCLIP_CHUNK],
      ]),
    );
    return gpu.dispatch(
      name,
      p1,
      [piece.binds[0].binding, partials, u1],
      grid(gpu, Math.ceil(piece.count / GRADCLIP_CHUNK), 1, s.maxGroupsX),
      [u1, partials],
    );
  });
  const normBinding = Boolean(s.normOut) && !sameBuffer;
  const p2 = await gpu.pipeline('gradclip_finish', { NORM: Boolean(s.normOut), NORM_BINDING: normBinding });
  const u2 = gpu.uniform(
    `${label} finish params`,
    packParams([
      ['u32', count],
      ['u32', s.scaleOut.offset ?? 0],
      ['u32', s.normOut?.offset ?? 0],
      ['f32', s.maxNorm],
    ]),
  );
  const d2 = gpu.dispatch(
    `${label} norm and scale`,
    p2,
    [partials, s.scaleOut.buffer, u2, ...(normBinding ? [s.normOut!.buffer] : [])],
    [1],
    [u2, partials],
  );
  return [...first, d2];
}

// Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ over all parameters as one
// vector) without a readback: two fixed-order reduction passes compute ‖g‖₂ and write
// scale = min(1, maxNorm / (‖g‖₂ + 1e-6)) into a GPU buffer, and the optimizer multiplies
// each gradient by it as it reads it. The gradients themselves are left untouched.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { rangePieces } from './optimizer.js';
import { checkSizes, grid, off, type TensorRef } from './types.js';

/** Elements per workgroup of the first pass (the same on every adapter, so that the sums are). */
export const GRADCLIP_CHUNK = 4096;

/**
 * The first pass's workgroups: WG invocations, each summing PER elements of the workgroup's block. Software: 8
 * invocations (llvmpipe's SIMD width) keep the tree, whose every level is a barrier, 3 levels deep.
 */
const PARTIAL: Record<'hardware' | 'software', { WG: number; PER: number }> = {
  hardware: { WG: 256, PER: GRADCLIP_CHUNK / 256 },
  software: { WG: 8, PER: GRADCLIP_CHUNK / 8 },
};

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
  /** Loss scaling: f32 scalar S the gradients carry; the norm written is ‖g‖/S and the scale includes 1/S. */
  unscale?: TensorRef;
  /**
   * u32 out, one per GRADCLIP_CHUNK elements (ceil(n / GRADCLIP_CHUNK)): 1 where the chunk holds a gradient that is
   * not ±0 (NaN included), else 0. The optimizer's `zeroChunks` reads them to skip all-zero chunks' gradients.
   */
  chunkFlags?: TensorRef;
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
  checkSizes(label, { n: s.n });
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
  if (sameBuffer && off(s.normOut) === off(s.scaleOut))
    throw new HlmError(`${label}: normOut and scaleOut are the same element`);
  const count = Math.ceil(s.n / GRADCLIP_CHUNK);
  const flags = s.chunkFlags;
  if (flags) {
    if (flags.buffer === s.grads.buffer)
      throw new HlmError(
        `${label}: chunkFlags must not share the gradients' buffer (WebGPU forbids writable aliasing)`,
      );
    if ((off(flags) + count) * 4 > flags.buffer.size)
      throw new HlmError(`${label}: chunkFlags holds fewer than the ${count} flags of ${s.n} gradients`);
  }
  const vec4 = s.n % 4 === 0 && off(s.grads) % 4 === 0;
  const partial = await gpu.kernel('gradclip_partial', {
    ...PARTIAL[gpu.adapter.kind],
    VEC4: vec4,
    FLAGS: Boolean(flags),
  });
  const partials = gpu.buffer(`${label} partial sums`, count * 4);
  const pieces = rangePieces(gpu, s.n, [s.grads], GRADCLIP_CHUNK, s.maxBindingBytes);
  const first = pieces.map((piece, k) =>
    gpu.dispatch(`${label} partial sums${pieces.length > 1 ? ` [${k + 1}/${pieces.length}]` : ''}`, partial, {
      bind: { grads: piece.binds[0].binding, partials, ...(flags ? { flags: flags.buffer } : {}) },
      params: {
        n: piece.count,
        offG: piece.binds[0].offset,
        firstGroup: piece.start / GRADCLIP_CHUNK,
        offFlags: off(flags),
      },
      groups: grid(gpu, Math.ceil(piece.count / GRADCLIP_CHUNK), 1, s.maxGroupsX),
      owned: [partials],
    }),
  );
  const normBinding = Boolean(s.normOut) && !sameBuffer;
  const finish = await gpu.kernel('gradclip_finish', {
    NORM: Boolean(s.normOut),
    NORM_BINDING: normBinding,
    UNSCALE: Boolean(s.unscale),
  });
  const d2 = gpu.dispatch(`${label} norm and scale`, finish, {
    bind: {
      partials,
      scaleOut: s.scaleOut.buffer,
      ...(normBinding ? { normOut: s.normOut!.buffer } : {}),
      ...(s.unscale ? { unscale: s.unscale.buffer } : {}),
    },
    params: {
      count,
      offScale: off(s.scaleOut),
      offNorm: off(s.normOut),
      maxNorm: s.maxNorm,
      offUnscale: off(s.unscale),
    },
    groups: [1],
    owned: [partials],
  });
  return [...first, d2];
}

// The parameter update after a backward pass, shared by pretraining and fine-tuning: global
// gradient-norm clipping, the step guard, then AdamW or SGD as one kernel over the flat
// parameter buffer. Everything stays on the GPU; `scalars` holds [0] the clip scale and [1] the
// gradient norm. The guard decides on the GPU whether the update is applied: a step whose loss
// or gradient norm is not finite is skipped (so is every later one, until reset), and the host
// learns of it from the loss history it reads every few steps. A divergence therefore costs no
// readback per step, and the weights on the GPU stay the last finite ones. The guard is the one
// "skip this update" of training: a loss-scaling overflow check (mixed precision) sets the same
// flag in the same kernel, and with gradient accumulation it runs once per update, on the
// accumulated gradients' norm and the update's loss.
import type { Command, Dispatch, Gpu } from '../gpu/device.js';
import { GRADCLIP_CHUNK, gradClip } from '../kernels/gradclip.js';
import { AdamW, Sgd, decayMask, type Optimizer } from '../kernels/optimizer.js';
import {
  GUARD_BYTES,
  GUARD_LOSS_OFFSET,
  GUARD_SCALE,
  readLossScale,
  stepGuard,
  writeLossScale,
  type LossScaleState,
  type LossScaling,
} from '../kernels/step-guard.js';
import type { TensorRef } from '../kernels/types.js';
import type { Gpt2 } from '../model/gpt2.js';
import { HlmError } from '../errors.js';

export const OPTIMIZERS = ['adamw', 'sgd'] as const;

export interface UpdateOptions {
  optimizer: (typeof OPTIMIZERS)[number];
  weightDecay: number;
  /** Global gradient-norm clip; 0 = off. */
  gradClip: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /**
   * Loss scaling (mixed precision): the heads multiply their gradients by the scale kept in the guard buffer
   * (`Update.lossScale`), the clip unscales the norm and the step, the guard skips overflows and keeps the scale.
   */
  lossScaling?: LossScaling;
}

export interface Update {
  readonly optimizer: Optimizer;
  /** AdamW moments (undefined for SGD). */
  readonly m?: GPUBuffer;
  readonly v?: GPUBuffer;
  /** f32 [0] clip scale, [1] gradient norm of the last step. */
  readonly scalars: GPUBuffer;
  /** The step guard's buffer (kernels/step-guard.ts): u32 [1] counts the skipped steps. */
  readonly guard: GPUBuffer;
  /** Clip, guard, step (append after the backward); `loss` is the f32 loss of the step, at byte `offset`. */
  commands(loss: GPUBuffer, offset?: number): Command[];
  /** The gradient norm alone, into scalars[1] (to check a state without changing it). */
  readonly norm: Dispatch[];
  /** Zero the guard: updates apply again (and loss scaling starts over from its first scale). */
  resetGuard(): void;
  /** With loss scaling: the f32 scale in the guard buffer, for the heads' gradients. */
  readonly lossScale?: TensorRef;
  /** With loss scaling: its state, read back (checkpoints and metrics keep it). */
  readLossScale(): Promise<LossScaleState | undefined>;
  /** With loss scaling: restore a state (resume), clearing the skip flags. */
  writeLossScale(state: LossScaleState): void;
  destroy(): void;
}

/** The update of `model`'s parameters, allocated under its scope (freed with it, or by destroy). */
export async function createUpdate(gpu: Gpu, model: Gpt2, o: UpdateOptions, guardBuffer?: GPUBuffer): Promise<Update> {
  const n = model.layout.total;
  const scope = model.scope.scope('update');
  const scalars = scope.buffer('grad scalars', 16);
  const guard = guardBuffer ?? scope.buffer('step guard', GUARD_BYTES);
  const scaling = o.lossScaling;
  const lossScale = scaling ? { buffer: guard, offset: GUARD_SCALE } : undefined;
  const firstState = scaling && { scale: scaling.scale, goodSteps: 0, overflows: 0 };
  if (firstState) writeLossScale(gpu, guard, firstState);
  const mask = scope.upload('decay mask', decayMask(model.layout));
  const grads = { buffer: model.grads! };
  const common = {
    n,
    params: { buffer: model.params },
    grads,
    decayMask: { buffer: mask },
    gradScale: { buffer: scalars, offset: 0 },
    skip: guard,
    weightDecay: o.weightDecay,
  };
  let m: GPUBuffer | undefined;
  let v: GPUBuffer | undefined;
  let optimizer: Optimizer;
  // The norm's first pass flags the chunks whose gradients are all zero (most of a large vocabulary's embedding
  // rows in a step), and AdamW steps those without reading their gradients.
  const flags =
    o.optimizer === 'adamw' ? scope.buffer('zero chunk flags', Math.ceil(n / GRADCLIP_CHUNK) * 4) : undefined;
  if (o.optimizer === 'adamw') {
    m = scope.buffer('adam m', n * 4);
    v = scope.buffer('adam v', n * 4);
    optimizer = await AdamW.create(gpu, {
      ...common,
      m: { buffer: m },
      v: { buffer: v },
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      zeroChunks: { flags: { buffer: flags! }, chunk: GRADCLIP_CHUNK },
    });
  } else {
    optimizer = await Sgd.create(gpu, common);
  }
  const clip = await gradClip(gpu, {
    n,
    grads,
    maxNorm: o.gradClip,
    scaleOut: { buffer: scalars, offset: 0 },
    normOut: { buffer: scalars, offset: 1 },
    unscale: lossScale,
    chunkFlags: flags && { buffer: flags },
  });
  const check = await stepGuard(gpu, { guard, norm: { buffer: scalars, offset: 1 }, scaling });
  const dispatches: Dispatch[] = scope.keep([...clip, check, ...optimizer.dispatches]);
  const norm = dispatches.slice(0, clip.length);
  return {
    optimizer,
    m,
    v,
    scalars,
    guard,
    commands: (loss, offset = 0) => [
      { copy: { from: loss, fromOffset: offset, to: guard, toOffset: GUARD_LOSS_OFFSET, size: 4 } },
      ...dispatches,
    ],
    norm,
    resetGuard: () =>
      firstState ? writeLossScale(gpu, guard, firstState) : gpu.submit([{ clear: guard }], 'reset step guard'),
    lossScale,
    readLossScale: async () => (scaling ? readLossScale(gpu, guard) : undefined),
    writeLossScale: (state) => {
      if (!scaling) throw new HlmError('this update has no loss scaling');
      writeLossScale(gpu, guard, state);
    },
    destroy: () => scope.release(),
  };
}

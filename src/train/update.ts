// The parameter update after a backward pass, shared by pretraining and fine-tuning: global
// gradient-norm clipping, then AdamW or SGD as one kernel over the flat parameter buffer.
// Everything stays on the GPU; `scalars` holds [0] the clip scale and [1] the gradient norm.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { gradClip } from '../kernels/gradclip.js';
import { AdamW, Sgd, decayMask, type Optimizer } from '../kernels/optimizer.js';
import type { Gpt2 } from '../model/gpt2.js';

export const OPTIMIZERS = ['adamw', 'sgd'] as const;

export interface UpdateOptions {
  optimizer: (typeof OPTIMIZERS)[number];
  weightDecay: number;
  /** Global gradient-norm clip; 0 = off. */
  gradClip: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface Update {
  /** Clip, then step (append after the backward). */
  readonly commands: Dispatch[];
  readonly optimizer: Optimizer;
  /** AdamW moments (undefined for SGD). */
  readonly m?: GPUBuffer;
  readonly v?: GPUBuffer;
  /** f32 [0] clip scale, [1] gradient norm of the last step. */
  readonly scalars: GPUBuffer;
  destroy(): void;
}

/** The update of `model`'s parameters, allocated under its scope (freed with it, or by destroy). */
export async function createUpdate(gpu: Gpu, model: Gpt2, o: UpdateOptions): Promise<Update> {
  const n = model.layout.total;
  const scope = model.scope.scope('update');
  const scalars = scope.buffer('grad scalars', 16);
  const mask = scope.upload('decay mask', decayMask(model.layout));
  const grads = { buffer: model.grads! };
  const common = {
    n,
    params: { buffer: model.params },
    grads,
    decayMask: { buffer: mask },
    gradScale: { buffer: scalars, offset: 0 },
    weightDecay: o.weightDecay,
  };
  let m: GPUBuffer | undefined;
  let v: GPUBuffer | undefined;
  let optimizer: Optimizer;
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
  });
  const commands = scope.keep([...clip, ...optimizer.dispatches]);
  return {
    commands,
    optimizer,
    m,
    v,
    scalars,
    destroy: () => scope.release(),
  };
}

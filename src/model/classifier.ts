// The GLUE head: a linear classifier (or, with one output, a regressor) on a pooled hidden
// state, trained through the whole network.
//   pool      pooled = P·hf, P [B, B·T] a pooling matrix the host writes per batch: row b holds
//             1/len over its row's real positions (mean), or a single 1 at the first or the
//             last real position. One matmul serves every pooling, and its transpose is the
//             backward (dhf = Pᵀ·dpooled), which is zero at padding positions.
//   score     logits = pooled·Wᵀ + b, W = score.weight [C, d], b = score.bias [C]
//   loss      per-row weighted softmax cross-entropy, or squared error for C = 1
//             (src/kernels/classifier.ts); row weights are normalised on the host, so the
//             losses sum to the batch's (weighted) mean, or with gradient accumulation to the
//             micro-batch's share of the step's (weights divided by the step's total).
import type { Command } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { classifierLoss } from '../kernels/classifier.js';
import { lossMean } from '../kernels/crossentropy.js';
import { matmul } from '../kernels/matmul.js';
import type { Gpt2 } from './gpt2.js';
import type { TensorRef } from '../kernels/types.js';

export type Pooling = 'mean' | 'first' | 'last';
export const POOLINGS: readonly Pooling[] = ['mean', 'first', 'last'];

export interface ClassifierBatch {
  /** Real tokens in each row (1..T); fewer rows than B leaves the rest as padding rows. */
  lengths: readonly number[];
  /** Per row: class index, or the regression target. */
  targets: readonly number[];
  /** Per row weight (class-balanced training); default 1. */
  weights?: readonly number[];
  /** What the weights are divided by: their sum over the step's micro-batches (default: this batch's sum). */
  weightTotal?: number;
}

export interface ClassifierHead {
  readonly numLabels: number;
  readonly pooling: Pooling;
  /** After model.forward: loss, dhf and the head's gradients (before model.backward); adds to loss[0]. */
  readonly train: Command[];
  /** After model.forward: logits only. */
  readonly eval: Command[];
  /** f32 [B, C]. */
  readonly logits: GPUBuffer;
  /** f32, element 0: what `train` adds the batch's weighted loss to (clear it before a step). */
  readonly loss: GPUBuffer;
  /** Write the pooling matrix and targets (and the model's row lengths when it pads). Returns the real rows. */
  setBatch(batch: ClassifierBatch): number;
  destroy(): void;
}

/** The pooling matrix P [B, B·T] for these row lengths (rows past lengths.length stay 0). */
export function poolingMatrix(pooling: Pooling, lengths: readonly number[], B: number, T: number): Float32Array {
  const P = new Float32Array(B * B * T);
  lengths.forEach((len, b) => {
    const row = b * B * T + b * T;
    if (pooling === 'mean') P.fill(1 / len, row, row + len);
    else P[row + (pooling === 'first' ? 0 : len - 1)] = 1;
  });
  return P;
}

/**
 * `loss`: a buffer for the loss to build up in (heads of several bucket lengths share one); default its own.
 * `gradScale`: loss scaling, an f32 scalar on the GPU multiplying the gradient (not the loss).
 */
export async function createClassifierHead(
  model: Gpt2,
  pooling: Pooling,
  loss?: GPUBuffer,
  gradScale?: TensorRef,
): Promise<ClassifierHead> {
  const { gpu, B, T, N } = model;
  const { n_embd: d, num_labels: C } = model.config;
  if (!(C >= 1)) throw new HlmError('the model has no classifier head (num_labels is 0)');
  if (!POOLINGS.includes(pooling)) throw new HlmError(`unknown pooling '${pooling}'; use ${POOLINGS.join(', ')}`);
  const scope = model.scope.scope('classifier head');
  const buf = (label: string, floats: number) => scope.buffer(label, floats * 4);
  const pool = buf('pooling matrix', B * N);
  const pooled = buf('pooled', B * d);
  const logits = buf('logits', B * C);
  const targets = buf('labels', B);
  const weights = buf('row weights', B);
  const losses = buf('row losses', B);
  const lossOut = loss ?? buf('loss', 4);
  const at = (buffer: GPUBuffer) => ({ buffer });
  const W = model.P('score.weight');
  const bias = model.P('score.bias');

  const forward: Command[] = [
    ...scope.keep(
      await matmul(gpu, { M: B, N: d, K: N, a: at(pool), b: at(model.hf), c: at(pooled), label: 'classifier pool' }),
    ),
    ...scope.keep(
      await matmul(gpu, {
        M: B,
        N: C,
        K: d,
        transB: true,
        a: at(pooled),
        b: W,
        c: at(logits),
        bias,
        label: 'classifier score +b',
      }),
    ),
  ];
  let train: Command[] = [];
  if (model.dhf) {
    const dlogits = buf('dlogits', B * C);
    const dpooled = buf('dpooled', B * d);
    const ones = buf('ones', B);
    gpu.write(ones, new Float32Array(B).fill(1));
    train = [
      ...forward,
      scope.keep(
        await classifierLoss(gpu, {
          rows: B,
          C,
          logits: at(logits),
          targets: at(targets),
          weights: at(weights),
          losses: at(losses),
          dlogits: at(dlogits),
          gradScale,
        }),
      ),
      scope.keep(
        await lossMean(gpu, {
          N: B,
          losses: at(losses),
          out: at(lossOut),
          accumulate: true,
          label: 'classifier loss sum',
        }),
      ),
      ...scope.keep(
        await matmul(gpu, {
          M: C,
          N: d,
          K: B,
          transA: true,
          beta: 1,
          a: at(dlogits),
          b: at(pooled),
          c: model.G('score.weight'),
          label: 'classifier dW',
        }),
      ),
      ...scope.keep(
        await matmul(gpu, {
          M: 1,
          N: C,
          K: B,
          beta: 1,
          a: at(ones),
          b: at(dlogits),
          c: model.G('score.bias'),
          label: 'classifier db',
        }),
      ),
      ...scope.keep(
        await matmul(gpu, { M: B, N: d, K: C, a: at(dlogits), b: W, c: at(dpooled), label: 'classifier dpooled' }),
      ),
      ...scope.keep(
        await matmul(gpu, {
          M: N,
          N: d,
          K: B,
          transA: true,
          a: at(pool),
          b: at(dpooled),
          c: at(model.dhf),
          label: 'classifier dhf',
        }),
      ),
    ];
  }
  return {
    numLabels: C,
    pooling,
    train,
    eval: forward,
    logits,
    loss: lossOut,
    setBatch(batch: ClassifierBatch): number {
      const n = batch.lengths.length;
      if (n < 1 || n > B) throw new HlmError(`a classifier batch has 1..${B} rows, got ${n}`);
      if (batch.targets.length !== n || (batch.weights && batch.weights.length !== n))
        throw new HlmError('classifier batch: lengths, targets and weights differ in length');
      const t = new Float32Array(B);
      const w = new Float32Array(B);
      let total = 0;
      for (let b = 0; b < n; b++) {
        const y = batch.targets[b];
        if (C > 1 ? !(Number.isInteger(y) && y >= 0 && y < C) : !Number.isFinite(y))
          throw new HlmError(`row ${b}: target ${y} is not ${C > 1 ? `a class in 0..${C - 1}` : 'a finite score'}`);
        t[b] = y;
        w[b] = batch.weights?.[b] ?? 1;
        if (!(w[b] >= 0)) throw new HlmError(`row ${b}: weight ${w[b]} must be non-negative`);
        total += w[b];
      }
      const norm = batch.weightTotal ?? total;
      if (!(norm > 0)) throw new HlmError('classifier batch: the row weights sum to 0');
      if (!(norm >= total * (1 - 1e-9)))
        throw new HlmError(`classifier batch: weightTotal ${norm} is below this batch's weights' sum ${total}`);
      for (let b = 0; b < n; b++) w[b] /= norm;
      const lengths = Array.from({ length: B }, (_, b) => (b < n ? batch.lengths[b] : 1));
      if (model.lengths) model.setLengths(lengths);
      else if (lengths.some((l) => l !== T)) throw new HlmError('rows shorter than T need a model built with padding');
      gpu.write(pool, poolingMatrix(pooling, batch.lengths, B, T));
      gpu.write(targets, t);
      gpu.write(weights, w);
      return n;
    },
    destroy: () => scope.release(),
  };
}

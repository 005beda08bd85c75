// Optimizer steps and gradient clipping with PyTorch's semantics, so that a training step
// here and one of torch.optim on the same numbers agree to rounding. Steps return new arrays
// and leave their inputs untouched.
import { type Vec, expectLength } from './shapes.js';

export interface AdamWHyper {
  lr: number;
  beta1?: number; // 0.9
  beta2?: number; // 0.999
  eps?: number; // 1e-8
  weightDecay?: number; // 0.01, torch.optim.AdamW's default
}

/**
 * One torch.optim.AdamW step; `step` is the 1-based count of steps including this one (the
 * bias corrections use it). Weight decay is decoupled: the parameter shrinks by lr·wd before
 * the Adam update, and eps is added to √v̂ (not inside the root):
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps)
 */
export function adamwStep(
  param: Vec,
  grad: Vec,
  m: Vec,
  v: Vec,
  step: number,
  hp: AdamWHyper,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const n = param.length;
  expectLength('adamw grad', grad, n);
  expectLength('adamw m', m, n);
  expectLength('adamw v', v, n);
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`adamw: step must be an integer ≥ 1, got ${step}`);
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = hp;
  const bc1 = 1 - beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const out = { param: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const p = param[i] * (1 - lr * weightDecay);
    out.m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
    out.v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
    out.param[i] = p - ((lr / bc1) * out.m[i]) / (Math.sqrt(out.v[i]) / bc2Sqrt + eps);
  }
  return out;
}

/**
 * One torch.optim.SGD step without momentum: p ← p − lr·(g + wd·p). Its weight decay is the
 * coupled (L2) kind, unlike AdamW's. With wd 0 this is the "one plain gradient step" that
 * `hlm pretrain --optimizer sgd --steps 1` must reproduce exactly.
 */
export function sgdStep(param: Vec, grad: Vec, hp: { lr: number; weightDecay?: number }): { param: Float64Array } {
  expectLength('sgd grad', grad, param.length);
  const wd = hp.weightDecay ?? 0;
  return { param: Float64Array.from(param, (p, i) => p - hp.lr * (grad[i] + wd * p)) };
}

/**
 * torch.nn.utils.clip_grad_norm_ (2-norm) over a list of gradient tensors taken as one
 * vector: norm = ‖g‖₂ over all of them, scale = min(1, maxNorm / (norm + 1e-6)), every
 * tensor multiplied by scale. Returns the norm before clipping, as PyTorch does.
 */
export function clipGradNorm(grads: Vec[], maxNorm: number): { norm: number; scale: number; grads: Float64Array[] } {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  const norm = Math.sqrt(sq);
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  return { norm, scale, grads: grads.map((g) => Float64Array.from(g, (x) => x * scale)) };
}

// Softmax cross-entropy, on given logits and with the vocabulary projection tied to the input
// embeddings (logits = h·Eᵀ, GPT-2's LM head). Targets < 0 (the convention is -1) are ignored
// and the loss is the mean over the rest, like PyTorch's ignore_index. With no target left
// the loss is 0 with zero gradients, rather than PyTorch's 0/0 = NaN, so a micro-batch whose
// targets are all masked adds nothing.
import { type Vec, expectDims, expectIndex, expectLength } from './shapes.js';
import { logSumExpRows } from './softmax.js';
import { matmul, matmulBackward } from './matmul.js';

function checkTargets(targets: Vec, N: number, V: number): number {
  expectLength('cross-entropy targets', targets, N);
  let count = 0;
  for (let n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    expectIndex(`cross-entropy targets[${n}]`, targets[n], V);
    count++;
  }
  return count;
}

/**
 * logits [N, V]. Returns the mean loss, count (targets ≥ 0), nll [N] (each row's −log p of
 * its target, 0 where ignored) and lse [N] (each row's log-sum-exp: log p = logit − lse).
 */
export function softmaxCrossEntropy(
  logits: Vec,
  targets: Vec,
  N: number,
  V: number,
): { loss: number; count: number; nll: Float64Array; lse: Float64Array } {
  expectDims({ N, V });
  expectLength('cross-entropy logits', logits, N * V);
  const count = checkTargets(targets, N, V);
  const lse = logSumExpRows(logits, N, V);
  const nll = new Float64Array(N);
  let total = 0;
  for (let n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    nll[n] = lse[n] - logits[n * V + targets[n]];
    total += nll[n];
  }
  return { loss: count > 0 ? total / count : 0, count, nll, lse };
}

/** dlogits = dLoss/count · (softmax(logits) − onehot(target)) on counted rows, 0 on ignored ones. */
export function softmaxCrossEntropyBackward(
  dLoss: number,
  logits: Vec,
  targets: Vec,
  N: number,
  V: number,
): { dlogits: Float64Array } {
  const { count, lse } = softmaxCrossEntropy(logits, targets, N, V);
  const dlogits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    for (let v = 0; v < V; v++)
      dlogits[n * V + v] = (dLoss / count) * (Math.exp(logits[n * V + v] - lse[n]) - (v === targets[n] ? 1 : 0));
  }
  return { dlogits };
}

/** h [N, d], E [V, d]: logits = h·Eᵀ [N, V], then softmaxCrossEntropy. Returns its fields and the logits. */
export function crossEntropyTied(
  h: Vec,
  E: Vec,
  targets: Vec,
  N: number,
  V: number,
  d: number,
): { loss: number; count: number; nll: Float64Array; lse: Float64Array; logits: Float64Array } {
  expectDims({ N, V, d });
  expectLength('cross-entropy h', h, N * d);
  expectLength('cross-entropy E', E, V * d);
  const logits = matmul(h, E, N, V, d, false, true);
  return { ...softmaxCrossEntropy(logits, targets, N, V), logits };
}

/** dh [N, d] and dE [V, d] (the head's share of the tied embedding's gradient). */
export function crossEntropyTiedBackward(
  dLoss: number,
  ...args: Parameters<typeof crossEntropyTied>
): { dh: Float64Array; dE: Float64Array } {
  const [h, E, targets, N, V, d] = args;
  const { logits } = crossEntropyTied(...args);
  const { dlogits } = softmaxCrossEntropyBackward(dLoss, logits, targets, N, V);
  const { dA, dB } = matmulBackward(dlogits, h, E, N, V, d, false, true);
  return { dh: dA, dE: dB };
}

// The contrastive weight tying (CWT) loss: a headless objective that asks each target
// position's hidden state to pick out its own target's input embedding among the K targets of
// the micro-batch. With o_k the hidden states (K×d), e_j = E[t_j] the targets' embedding rows,
//   s_kj = (o_k · e_j) / temperature,  loss = mean_k [ −s_kk + logsumexp_j s_kj ].
// Duplicates are NOT removed: when t_j = t_k (j ≠ k) the same embedding is a negative of row k
// as well as its positive, as in the mission's definition. That is exactly a softmax
// cross-entropy over the K×K score matrix with the diagonal as targets, so it is computed as
// one, inheriting its stability (row max subtracted: huge scores stay finite).
import { type Vec, expectDims, expectIndex, expectLength } from './shapes.js';
import { matmul, matmulBackward } from './matmul.js';
import { softmaxCrossEntropy, softmaxCrossEntropyBackward } from './crossentropy.js';

function gatherTargets(E: Vec, targets: Vec, K: number, d: number): Float64Array {
  expectLength('cwt targets', targets, K);
  if (d === 0 || E.length % d !== 0)
    throw new RangeError(`cwt: E has ${E.length} elements, not a multiple of d = ${d}`);
  const V = E.length / d;
  const e = new Float64Array(K * d);
  for (let k = 0; k < K; k++) {
    expectIndex(`cwt targets[${k}]`, targets[k], V);
    for (let c = 0; c < d; c++) e[k * d + c] = E[targets[k] * d + c];
  }
  return e;
}

const diagonal = (K: number) => Int32Array.from({ length: K }, (_, k) => k);

/**
 * h [K, d] hidden states at the target positions, E [V, d] the input embeddings, targets [K]
 * token ids. Returns the loss (0 when K is 0), scores [K, K] (already divided by the
 * temperature) and lse [K] (each row's log-sum-exp of scores).
 */
export function cwtLoss(
  h: Vec,
  E: Vec,
  targets: Vec,
  K: number,
  d: number,
  temperature = 1,
): { loss: number; scores: Float64Array; lse: Float64Array } {
  expectDims({ K, d });
  expectLength('cwt h', h, K * d);
  if (!(temperature > 0)) throw new RangeError(`cwt: temperature must be positive, got ${temperature}`);
  const e = gatherTargets(E, targets, K, d);
  const scores = matmul(h, e, K, K, d, false, true, { alpha: 1 / temperature });
  const { loss, lse } = softmaxCrossEntropy(scores, diagonal(K), K, K);
  return { loss, scores, lse };
}

/**
 * dh [K, d]; de [K, d], the gradient into each target's embedding row e_j before it is
 * scattered (d e_j = Σ_k dL/ds_kj · o_k / temperature); dE [V, d], that scatter-added over
 * duplicate targets.
 */
export function cwtLossBackward(
  dLoss: number,
  ...args: Parameters<typeof cwtLoss>
): { dh: Float64Array; de: Float64Array; dE: Float64Array } {
  const [h, E, targets, K, d, temperature = 1] = args;
  const { scores } = cwtLoss(...args);
  const e = gatherTargets(E, targets, K, d);
  const { dlogits } = softmaxCrossEntropyBackward(dLoss, scores, diagonal(K), K, K);
  const { dA: dh, dB: de } = matmulBackward(dlogits, h, e, K, K, d, false, true, { alpha: 1 / temperature });
  const dE = new Float64Array(E.length);
  for (let k = 0; k < K; k++) for (let c = 0; c < d; c++) dE[targets[k] * d + c] += de[k * d + c];
  return { dh, de, dE };
}

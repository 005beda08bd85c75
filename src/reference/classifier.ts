// Float64 reference of the GLUE head (src/model/classifier.ts): pool the final hidden states of
// each row (mean over its real positions, or its first or last one), score with W [C, d] and
// b [C], then the weighted mean softmax cross-entropy (C ≥ 2) or squared error (C = 1), with
// weights normalised to sum to 1. As a CustomHead it plugs into gpt2LossAndGrads.
import type { CustomHead } from './gpt2.js';
import type { Vec } from './shapes.js';

export type ReferencePooling = 'mean' | 'first' | 'last';

export interface ReferenceClassifier {
  W: Vec;
  b: Vec;
  C: number;
  d: number;
  T: number;
  pooling: ReferencePooling;
  /** Real length of each scored row (rows past it are not scored). */
  lengths: readonly number[];
  targets: readonly number[];
  weights?: readonly number[];
}

/** Positions and weights each row pools. */
function poolWeights(c: ReferenceClassifier, r: number): [number, number][] {
  const len = c.lengths[r];
  if (c.pooling === 'mean') return Array.from({ length: len }, (_, t) => [r * c.T + t, 1 / len]);
  return [[r * c.T + (c.pooling === 'first' ? 0 : len - 1), 1]];
}

/** Logits [rows, C] from hidden states [B·T, d]. */
export function classifierLogits(c: ReferenceClassifier, hidden: Float64Array): Float64Array {
  const { C, d } = c;
  const rows = c.lengths.length;
  const z = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    const pooled = new Float64Array(d);
    for (const [n, w] of poolWeights(c, r)) for (let i = 0; i < d; i++) pooled[i] += w * hidden[n * d + i];
    for (let k = 0; k < C; k++) {
      let s = c.b[k];
      for (let i = 0; i < d; i++) s += pooled[i] * c.W[k * d + i];
      z[r * C + k] = s;
    }
  }
  return z;
}

export function classifierHeadReference(
  c: ReferenceClassifier,
  names = { W: 'score.weight', b: 'score.bias' },
): CustomHead {
  return (hidden) => {
    const { C, d } = c;
    const rows = c.lengths.length;
    const z = classifierLogits(c, hidden);
    const raw = c.weights ?? c.lengths.map(() => 1);
    const total = raw.reduce((a, b) => a + b, 0);
    const dz = new Float64Array(rows * C);
    let loss = 0;
    for (let r = 0; r < rows; r++) {
      const w = raw[r] / total;
      const y = c.targets[r];
      if (C === 1) {
        const diff = z[r] - y;
        loss += w * diff * diff;
        dz[r] = 2 * w * diff;
        continue;
      }
      let m = -Infinity;
      for (let k = 0; k < C; k++) m = Math.max(m, z[r * C + k]);
      let s = 0;
      for (let k = 0; k < C; k++) s += Math.exp(z[r * C + k] - m);
      const lse = m + Math.log(s);
      loss += w * (lse - z[r * C + y]);
      for (let k = 0; k < C; k++) dz[r * C + k] = w * (Math.exp(z[r * C + k] - lse) - (k === y ? 1 : 0));
    }
    // Backward: dW = dzᵀ·pooled, db = Σ dz, dHidden = pool weights × (dz·W).
    const dW = new Float64Array(C * d);
    const db = new Float64Array(C);
    const dHidden = new Float64Array(hidden.length);
    for (let r = 0; r < rows; r++) {
      const pw = poolWeights(c, r);
      const pooled = new Float64Array(d);
      for (const [n, w] of pw) for (let i = 0; i < d; i++) pooled[i] += w * hidden[n * d + i];
      const dpooled = new Float64Array(d);
      for (let k = 0; k < C; k++) {
        const g = dz[r * C + k];
        db[k] += g;
        for (let i = 0; i < d; i++) {
          dW[k * d + i] += g * pooled[i];
          dpooled[i] += g * c.W[k * d + i];
        }
      }
      for (const [n, w] of pw) for (let i = 0; i < d; i++) dHidden[n * d + i] += w * dpooled[i];
    }
    return { loss, count: rows, dHidden, grads: { [names.W]: dW, [names.b]: db } };
  };
}

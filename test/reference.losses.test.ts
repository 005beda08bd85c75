// The loss references: softmax cross-entropy (plain and with the tied vocabulary projection)
// and the CWT loss, against hand-worked values, against their definitions written as naive
// loops, and their backward against central finite differences.
import { SEED, expectClose, makeRandom } from './helpers/check.js';
import { numericGrad } from '../src/reference/gradcheck.js';
import {
  softmaxCrossEntropy,
  softmaxCrossEntropyBackward,
  crossEntropyTied,
  crossEntropyTiedBackward,
  cwtLoss,
  cwtLossBackward,
} from '../src/reference/ops.js';

const r = makeRandom(SEED);
const randn = (n: number, std = 1) => Float64Array.from(r.normal(n, std));
const TOL = 1e-6;

function near(got: number, want: number, tol: number, what: string): void {
  if (!(Math.abs(got - want) <= tol)) throw new Error(`${what}: ${got} != ${want} (HLM_TEST_SEED=${SEED})`);
}

describe('softmax cross-entropy', () => {
  test('hand-worked: one row, and an ignored row that changes nothing', () => {
    const want = Math.log(Math.E + Math.E ** 2 + Math.E ** 3) - 3;
    near(softmaxCrossEntropy([1, 2, 3], [2], 1, 3).loss, want, 1e-15, 'one row');
    const two = softmaxCrossEntropy([1, 2, 3, 9, -4, 0], [2, -1], 2, 3);
    near(two.loss, want, 1e-15, 'with an ignored row');
    expect(two.count).toBe(1);
    expect(two.nll[1]).toBe(0);
    // dlogits = (softmax − onehot) / count
    const z = Math.E + Math.E ** 2 + Math.E ** 3;
    expectClose(
      softmaxCrossEntropyBackward(1, [1, 2, 3], [2], 1, 3).dlogits,
      [Math.E / z, Math.E ** 2 / z, Math.E ** 3 / z - 1],
      1e-15,
      'dlogits',
    );
  });

  test('no counted target: loss 0, gradient 0', () => {
    const { loss, count } = softmaxCrossEntropy([1, 2, 3, 4], [-1, -1], 2, 2);
    expect([loss, count]).toEqual([0, 0]);
    expect(Array.from(softmaxCrossEntropyBackward(1, [1, 2, 3, 4], [-1, -1], 2, 2).dlogits)).toEqual([0, 0, 0, 0]);
  });

  test('backward against finite differences, dLoss scaling included', () => {
    const N = 7;
    const V = 11;
    const logits = randn(N * V, 2);
    const targets = Int32Array.from([3, -1, 10, 0, 3, -1, 7]);
    const f = () => 2.5 * softmaxCrossEntropy(logits, targets, N, V).loss;
    expectClose(
      softmaxCrossEntropyBackward(2.5, logits, targets, N, V).dlogits,
      numericGrad(f, logits),
      TOL,
      'dlogits',
    );
  });

  test('finite for huge logits', () => {
    const logits = randn(3 * 5).map((v) => v * 1e5);
    const { loss } = softmaxCrossEntropy(logits, [0, 4, 2], 3, 5);
    if (!Number.isFinite(loss) || !(loss >= 0)) throw new Error(`loss ${loss}`);
  });
});

describe('cross-entropy with tied embeddings', () => {
  test('hand-worked tiny example', () => {
    // logits = h·Eᵀ: row 0 [1, 0, 1] target 0, row 1 [0, 1, 1] target 2, row 2 ignored:
    // each counted row's loss is log(1 + 2e) − 1.
    const h = [1, 0, 0, 1, 5, 5];
    const E = [1, 0, 0, 1, 1, 1];
    const { loss, count, logits } = crossEntropyTied(h, E, [0, 2, -1], 3, 3, 2);
    near(loss, Math.log(1 + 2 * Math.E) - 1, 1e-15, 'loss');
    expect(count).toBe(2);
    expect(Array.from(logits)).toEqual([1, 0, 1, 0, 1, 1, 5, 5, 10]);
  });

  test("backward against finite differences (dh and the head's dE)", () => {
    const N = 7;
    const V = 11;
    const d = 5;
    const h = randn(N * d);
    const E = randn(V * d);
    const targets = Int32Array.from([4, -1, 10, 0, 4, 2, -1]);
    const f = () => crossEntropyTied(h, E, targets, N, V, d).loss;
    const { dh, dE } = crossEntropyTiedBackward(1, h, E, targets, N, V, d);
    expectClose(dh, numericGrad(f, h), TOL, 'dh');
    expectClose(dE, numericGrad(f, E), TOL, 'dE');
  });
});

describe('CWT loss', () => {
  // The definition as naive loops, without the max subtraction (fine at small scale).
  function naive(
    h: ArrayLike<number>,
    E: ArrayLike<number>,
    t: ArrayLike<number>,
    K: number,
    d: number,
    tau: number,
  ): number {
    let total = 0;
    const s = (k: number, j: number) =>
      Array.from({ length: d }, (_, c) => h[k * d + c] * E[t[j] * d + c]).reduce((a, b) => a + b, 0) / tau;
    for (let k = 0; k < K; k++) {
      let z = 0;
      for (let j = 0; j < K; j++) z += Math.exp(s(k, j));
      total += -s(k, k) + Math.log(z);
    }
    return total / K;
  }

  test('hand-worked: distinct targets, then a duplicate that stays in the negatives', () => {
    const h = [1, 0, 0, 1];
    const E = [1, 0, 0, 1];
    // scores [[1,0],[0,1]]: each row −1 + log(e + 1)
    near(cwtLoss(h, E, [0, 1], 2, 2).loss, Math.log(1 + Math.E) - 1, 1e-15, 'distinct');
    // targets [0,0]: scores [[1,1],[0,0]]: rows −1 + log 2e and 0 + log 2, mean log 2
    near(cwtLoss(h, E, [0, 0], 2, 2).loss, Math.log(2), 1e-15, 'duplicate');
  });

  test('matches its definition, and the backward matches finite differences (duplicates, temperature)', () => {
    const K = 7;
    const d = 5;
    const V = 4;
    const tau = 0.7;
    const h = randn(K * d);
    const E = randn(V * d);
    const targets = Int32Array.from({ length: K }, (_, k) => [2, 0, 2, 3, 0, 2, 1][k]); // repeats on purpose
    const { loss, scores, lse } = cwtLoss(h, E, targets, K, d, tau);
    near(loss, naive(h, E, targets, K, d, tau), 1e-13, 'loss vs definition');
    expect([scores.length, lse.length]).toEqual([K * K, K]);
    const f = () => 1.5 * cwtLoss(h, E, targets, K, d, tau).loss;
    const { dh, dE, de } = cwtLossBackward(1.5, h, E, targets, K, d, tau);
    expectClose(dh, numericGrad(f, h), TOL, 'dh');
    expectClose(dE, numericGrad(f, E), TOL, 'dE');
    // de, row by row, is what dE scatters: summing it back gives dE.
    const summed = new Float64Array(V * d);
    for (let k = 0; k < K; k++) for (let c = 0; c < d; c++) summed[targets[k] * d + c] += de[k * d + c];
    expectClose(summed, dE, 1e-15, 'scatter of de');
  });

  test('finite on a row of huge scores, gradients too', () => {
    const K = 6;
    const d = 4;
    const V = 9;
    const h = randn(K * d);
    const E = randn(V * d);
    const targets = r.int(K, V);
    for (let c = 0; c < d; c++) h[2 * d + c] *= 1e4; // one row scores ~1e4
    const { loss, lse } = cwtLoss(h, E, targets, K, d);
    if (!Number.isFinite(loss) || !(loss >= 0)) throw new Error(`loss ${loss} (HLM_TEST_SEED=${SEED})`);
    if (!lse.every(Number.isFinite)) throw new Error('lse not finite');
    const { dh, dE } = cwtLossBackward(1, h, E, targets, K, d);
    if (!dh.every(Number.isFinite) || !dE.every(Number.isFinite)) throw new Error('gradient not finite');
    // Every row scaled by 1e4: each row's log-sum-exp is its max score up to log K, as an
    // overflowing exp would never give.
    const big = cwtLoss(
      h.map((v) => v * 1e4),
      E,
      targets,
      K,
      d,
    );
    if (!Number.isFinite(big.loss)) throw new Error(`loss ${big.loss} with every row huge`);
    for (let k = 0; k < K; k++) {
      const max = Math.max(...big.scores.subarray(k * K, (k + 1) * K));
      if (!(big.lse[k] >= max && big.lse[k] <= max + Math.log(K)))
        throw new Error(`row ${k}: lse ${big.lse[k]}, max ${max}`);
    }
  });

  test('no target: loss 0 and zero gradients', () => {
    expect(cwtLoss([], [1, 2], [], 0, 2).loss).toBe(0);
    expect(Array.from(cwtLossBackward(1, [], [1, 2], [], 0, 2).dE)).toEqual([0, 0]);
  });
});

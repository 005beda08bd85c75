// The float64 op references: each backward against central finite differences of its own
// forward (through Σ out·g for a random upstream gradient g), and each forward against a
// definition written another way. Odd sizes, so no loop bound can hide behind a power of two.
import { SEED, expectClose, makeRandom } from './helpers/check.js';
import { dot, numericGrad } from '../src/reference/gradcheck.js';
import {
  matmul,
  matmulBackward,
  addBroadcast,
  addBroadcastBackward,
  rowSum,
  rowSumBackward,
  rowMax,
  rowMaxBackward,
  softmaxRows,
  softmaxRowsBackward,
  logSumExpRows,
  logSumExpRowsBackward,
  layerNorm,
  layerNormBackward,
  gelu,
  geluBackward,
  linear,
  linearBackward,
  attention,
  attentionBackward,
  embedding,
  embeddingBackward,
  type MatmulOptions,
} from '../src/reference/ops.js';

const r = makeRandom(SEED);
const randn = (n: number, std = 1) => Float64Array.from(r.normal(n, std));
const TOL = 1e-6;

/** Fails unless the analytic gradient matches central differences of f over all of x. */
function gradCheck(what: string, f: () => number, x: Float64Array, analytic: ArrayLike<number>, tol = TOL): void {
  expectClose(analytic, numericGrad(f, x), tol, what);
}

describe('matmul', () => {
  test('a hand-worked product', () => {
    const C = matmul([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], 2, 2, 3);
    expect(Array.from(C)).toEqual([58, 64, 139, 154]);
  });

  // The naive definition: matrices as arrays of rows, transposed by building the transpose.
  const rows = (x: ArrayLike<number>, off: number, R: number, C: number) =>
    Array.from({ length: R }, (_, i) => Array.from({ length: C }, (_, j) => x[off + i * C + j]));
  const transpose = (m: number[][]) => m[0].map((_, j) => m.map((row) => row[j]));

  test.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('transA=%s transB=%s, batched, alpha and beta, against the naive definition', (transA, transB) => {
    const M = 5;
    const N = 7;
    const K = 3;
    const batch = 3;
    const alpha = 0.7;
    const beta = -1.3;
    const strideA = M * K + 2; // views with gaps between batches
    const A = randn((batch - 1) * strideA + M * K);
    const B = randn(batch * K * N);
    const C0 = randn(batch * M * N);
    const got = matmul(A, B, M, N, K, transA, transB, { batch, alpha, beta, C: C0, strideA });
    const want: number[] = [];
    for (let b = 0; b < batch; b++) {
      const opA = transA ? transpose(rows(A, b * strideA, K, M)) : rows(A, b * strideA, M, K);
      const opB = transB ? transpose(rows(B, b * K * N, N, K)) : rows(B, b * K * N, K, N);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          want.push(alpha * opA[m].reduce((s, a, k) => s + a * opB[k][n], 0) + beta * C0[b * M * N + m * N + n]);
        }
    }
    expectClose(got, want, 1e-14, 'matmul');
  });

  test('stride 0 shares one matrix across the batch', () => {
    const M = 3;
    const N = 5;
    const K = 4;
    const batch = 3;
    const A = randn(batch * M * K);
    const W = randn(K * N);
    const shared = matmul(A, W, M, N, K, false, false, { batch, strideB: 0 });
    const flat = matmul(A, W, batch * M, N, K); // the same product as one tall matrix
    expectClose(shared, flat, 1e-15, 'shared B');
  });

  test.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])('backward transA=%s transB=%s against finite differences', (transA, transB) => {
    const M = 3;
    const N = 5;
    const K = 7;
    const batch = 2;
    const opts: MatmulOptions = { batch, alpha: 1.7, beta: 0.6, strideB: 0 };
    const A = randn(batch * M * K);
    const B = randn(K * N);
    const C = randn(batch * M * N);
    const g = randn(batch * M * N);
    opts.C = C;
    const f = () => dot(matmul(A, B, M, N, K, transA, transB, opts), g);
    const { dA, dB, dC } = matmulBackward(g, A, B, M, N, K, transA, transB, opts);
    gradCheck('dA', f, A, dA);
    gradCheck('dB (shared, summed over the batch)', f, B, dB);
    gradCheck('dC', f, C, dC!);
  });
});

describe('broadcast add and row reductions', () => {
  const R = 5;
  const Cn = 7;
  test.each([
    ['bias row', 0, 1, Cn],
    ['per-row scalar', 1, 0, R],
    ['scalar', 0, 0, 1],
    ['full matrix', Cn, 1, R * Cn],
  ] as [string, number, number, number][])('%s: forward and backward', (_, sbr, sbc, bLen) => {
    const a = randn(R * Cn);
    const b = randn(bLen);
    const g = randn(R * Cn);
    const out = addBroadcast(a, b, R, Cn, sbr, sbc);
    for (let i = 0; i < R; i++)
      for (let j = 0; j < Cn; j++) {
        if (out[i * Cn + j] !== a[i * Cn + j] + b[i * sbr + j * sbc]) throw new Error(`addBroadcast (${i},${j})`);
      }
    const f = () => dot(addBroadcast(a, b, R, Cn, sbr, sbc), g);
    const { da, db } = addBroadcastBackward(g, a, b, R, Cn, sbr, sbc);
    gradCheck('da', f, a, da);
    gradCheck('db (summed over its broadcast)', f, b, db);
  });

  test('rowSum and rowMax forward and backward', () => {
    const x = randn(R * Cn);
    const g = randn(R);
    const s = rowSum(x, R, Cn);
    const m = rowMax(x, R, Cn);
    for (let i = 0; i < R; i++) {
      const row = Array.from(x.subarray(i * Cn, (i + 1) * Cn));
      if (!(Math.abs(s[i] - row.reduce((p, q) => p + q, 0)) <= 1e-14)) throw new Error(`rowSum ${i}`);
      if (m[i] !== Math.max(...row)) throw new Error(`rowMax ${i}`);
    }
    gradCheck('rowSum dx', () => dot(rowSum(x, R, Cn), g), x, rowSumBackward(g, x, R, Cn).dx);
    gradCheck('rowMax dx', () => dot(rowMax(x, R, Cn), g), x, rowMaxBackward(g, x, R, Cn).dx);
  });

  test('rowMax lets NaN through and gives an empty row -Infinity', () => {
    expect(Number.isNaN(rowMax([1, NaN, 3], 1, 3)[0])).toBe(true);
    expect(rowMax([], 2, 0)).toEqual(Float64Array.from([-Infinity, -Infinity]));
    expect(Array.from(rowMaxBackward([2], [1, 5, 5], 1, 3).dx)).toEqual([0, 2, 0]); // ties: the first
  });
});

describe('softmax and log-sum-exp', () => {
  const R = 4;
  const Cn = 9;
  test('backward against finite differences', () => {
    const x = randn(R * Cn, 2);
    const g = randn(R * Cn);
    const gr = randn(R);
    gradCheck('softmax dx', () => dot(softmaxRows(x, R, Cn), g), x, softmaxRowsBackward(g, x, R, Cn).dx);
    gradCheck('logsumexp dx', () => dot(logSumExpRows(x, R, Cn), gr), x, logSumExpRowsBackward(gr, x, R, Cn).dx);
  });

  test('stable for huge scores, and a fully masked row is zeros, not NaN', () => {
    const x = randn(R * Cn).map((v) => v * 1e4);
    const y = softmaxRows(x, R, Cn);
    const lse = logSumExpRows(x, R, Cn);
    for (let i = 0; i < R; i++) {
      const sum = y.subarray(i * Cn, (i + 1) * Cn).reduce((p, q) => p + q, 0);
      if (!(Math.abs(sum - 1) <= 1e-12) || !Number.isFinite(lse[i]))
        throw new Error(`row ${i}: sum ${sum}, lse ${lse[i]}`);
    }
    const masked = softmaxRows([-Infinity, -Infinity, 0, -Infinity], 2, 2);
    expect(Array.from(masked)).toEqual([0, 0, 1, 0]);
    expect(logSumExpRows([-Infinity, -Infinity], 1, 2)[0]).toBe(-Infinity);
  });
});

describe('LayerNorm', () => {
  const R = 5;
  const Cn = 11;
  test('forward normalises each row and returns its mean and 1/std', () => {
    const x = randn(R * Cn, 3).map((v) => v + 2);
    const { out, mean, rstd } = layerNorm(x, new Float64Array(Cn).fill(1), new Float64Array(Cn), R, Cn, 1e-5);
    for (let i = 0; i < R; i++) {
      const row = Array.from(x.subarray(i * Cn, (i + 1) * Cn));
      const mu = row.reduce((p, q) => p + q, 0) / Cn;
      const variance = row.reduce((p, q) => p + (q - mu) ** 2, 0) / Cn;
      const o = Array.from(out.subarray(i * Cn, (i + 1) * Cn));
      const oMean = o.reduce((p, q) => p + q, 0) / Cn;
      const oVar = o.reduce((p, q) => p + q * q, 0) / Cn;
      if (!(Math.abs(mean[i] - mu) <= 1e-13 && Math.abs(rstd[i] - 1 / Math.sqrt(variance + 1e-5)) <= 1e-12))
        throw new Error(`row ${i} stats`);
      if (!(Math.abs(oMean) <= 1e-12 && Math.abs(oVar - variance / (variance + 1e-5)) <= 1e-12))
        throw new Error(`row ${i} output`);
    }
  });

  test('backward against finite differences', () => {
    const x = randn(R * Cn);
    const w = randn(Cn).map((v) => 1 + 0.5 * v);
    const b = randn(Cn);
    const g = randn(R * Cn);
    const f = () => dot(layerNorm(x, w, b, R, Cn, 1e-5).out, g);
    const { dx, dweight, dbias } = layerNormBackward(g, x, w, b, R, Cn, 1e-5);
    gradCheck('dx', f, x, dx);
    gradCheck('dweight', f, w, dweight);
    gradCheck('dbias', f, b, dbias);
  });
});

describe('GELU (tanh approximation)', () => {
  test('values of gelu_new', () => {
    expectClose(gelu([0, 1, -0.5, 3]), [0, 0.8411919906082768, -0.15428599017485606, 2.996362607918227], 1e-15, 'gelu');
  });
  test('backward against finite differences', () => {
    const x = randn(13, 2);
    const g = randn(13);
    gradCheck('dx', () => dot(gelu(x), g), x, geluBackward(g, x).dx);
  });
});

describe('Conv1D linear', () => {
  const R = 5;
  const nIn = 3;
  const nOut = 7;
  test('y = x·W + b, W input-major; backward against finite differences', () => {
    const x = randn(R * nIn);
    const W = randn(nIn * nOut);
    const b = randn(nOut);
    const g = randn(R * nOut);
    const y = linear(x, W, b, R, nIn, nOut);
    const want = Array.from({ length: R * nOut }, (_, i) => {
      const [row, o] = [Math.floor(i / nOut), i % nOut];
      return (
        b[o] + Array.from({ length: nIn }, (_, k) => x[row * nIn + k] * W[k * nOut + o]).reduce((p, q) => p + q, 0)
      );
    });
    expectClose(y, want, 1e-15, 'linear');
    const f = () => dot(linear(x, W, b, R, nIn, nOut), g);
    const back = linearBackward(g, x, W, b, R, nIn, nOut);
    gradCheck('dx', f, x, back.dx);
    gradCheck('dW', f, W, back.dW);
    gradCheck('dbias', f, b, back.dbias);
    const noBias = linearBackward(g, x, W, null, R, nIn, nOut);
    expect('dbias' in noBias).toBe(false);
    expectClose(noBias.dW, back.dW, 0, 'dW without bias');
  });
});

describe('multi-head attention', () => {
  const B = 2;
  const T = 5;
  const d = 9;
  const H = 3;
  const hd = 3;

  // The same attention written per head with matmul and a -Infinity mask on the score matrix.
  function perHead(qkv: Float64Array, causal: boolean, lengths?: number[]): Float64Array {
    const out = new Float64Array(B * T * d);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const part = (which: number) =>
          Float64Array.from(
            { length: T * hd },
            (_, i) => qkv[(b * T + Math.floor(i / hd)) * 3 * d + which * d + h * hd + (i % hd)],
          );
        const s = matmul(part(0), part(1), T, T, hd, false, true, { alpha: 1 / Math.sqrt(hd) });
        for (let i = 0; i < T; i++)
          for (let j = 0; j < T; j++) {
            if ((causal && j > i) || (lengths && j >= lengths[b])) s[i * T + j] = -Infinity;
          }
        const o = matmul(softmaxRows(s, T, T), part(2), T, hd, T);
        for (let i = 0; i < T; i++) for (let c = 0; c < hd; c++) out[(b * T + i) * d + h * hd + c] = o[i * hd + c];
      }
    return out;
  }

  test.each([
    ['causal', true, undefined],
    ['bidirectional', false, undefined],
    ['bidirectional, key padding', false, [3, 5]],
    ['causal, key padding', true, [5, 2]],
  ] as [string, boolean, number[] | undefined][])(
    '%s: forward against per-head matmul+softmax, backward against finite differences',
    (_, causal, lengths) => {
      const qkv = randn(B * T * 3 * d);
      const g = randn(B * T * d);
      const opts = { causal, lengths };
      const { out, probs, lse } = attention(qkv, B, T, d, H, opts);
      expectClose(out, perHead(qkv, opts.causal, opts.lengths), 1e-13, 'attention out');
      for (let row = 0; row < B * H * T; row++) {
        const p = probs.subarray(row * T, (row + 1) * T);
        const sum = p.reduce((a, q) => a + q, 0);
        if (!(Math.abs(sum - 1) <= 1e-12) || !Number.isFinite(lse[row]))
          throw new Error(`probs row ${row} sums to ${sum}`);
        if (opts.causal)
          for (let j = (row % T) + 1; j < T; j++) if (p[j] !== 0) throw new Error(`row ${row} sees the future`);
      }
      gradCheck(
        'dqkv',
        () => dot(attention(qkv, B, T, d, H, opts).out, g),
        qkv,
        attentionBackward(g, qkv, B, T, d, H, opts).dqkv,
      );
    },
  );

  test('a row with no visible key outputs zeros and passes no gradient', () => {
    const qkv = randn(B * T * 3 * d);
    const g = randn(B * T * d);
    const opts = { causal: false, lengths: [0, 4] };
    const { out, lse } = attention(qkv, B, T, d, H, opts);
    expect(Array.from(out.subarray(0, T * d)).every((v) => v === 0)).toBe(true);
    expect(lse[0]).toBe(-Infinity);
    const { dqkv } = attentionBackward(g, qkv, B, T, d, H, opts);
    expect(Array.from(dqkv.subarray(0, T * 3 * d)).every((v) => v === 0)).toBe(true);
    expectClose(out.subarray(T * d), perHead(qkv, false, [0, 4]).subarray(T * d), 1e-13, 'second row');
  });
});

describe('token + position embedding', () => {
  test('gather, and scatter-add backward with repeated tokens', () => {
    const B = 2;
    const T = 5;
    const d = 3;
    const V = 4;
    const P = 7;
    const wte = randn(V * d);
    const wpe = randn(P * d);
    const g = randn(B * T * d);
    const tokens = Int32Array.from([1, 3, 1, 1, 0, 2, 3, 3, 0, 1]);
    const out = embedding(wte, wpe, tokens, B, T, d);
    for (let i = 0; i < B * T; i++)
      for (let c = 0; c < d; c++) {
        if (out[i * d + c] !== wte[tokens[i] * d + c] + wpe[(i % T) * d + c]) throw new Error(`embedding ${i},${c}`);
      }
    const f = () => dot(embedding(wte, wpe, tokens, B, T, d), g);
    const { dwte, dwpe } = embeddingBackward(g, wte, wpe, tokens, B, T, d);
    gradCheck('dwte', f, wte, dwte);
    gradCheck('dwpe', f, wpe, dwpe);
    expect(Array.from(dwpe.subarray(T * d)).every((v) => v === 0)).toBe(true); // positions past T untouched
    expect(() => embedding(wte, wpe, Int32Array.from([4, 0, 0, 0, 0, 0, 0, 0, 0, 0]), B, T, d)).toThrow(/index 4/);
  });
});

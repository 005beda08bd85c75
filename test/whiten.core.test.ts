// Zipfian whitening on the GPU: weighted moments against float64, the whitening property
// Σ p z zᵀ = I and Σ p z = 0 (uniform: plain mean and covariance), abtt and center, and the
// symmetry scores on constructed cases. Odd n and d throughout.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom, maxAbsErr, SEED } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { applyTransform, rowNorms } from '../src/kernels/whiten.js';
import { WhitenBuffers } from '../src/whiten/gpu.js';
import { align, spectralEntropy, symmetryScores, whiten, type WhitenMethod } from '../src/whiten/whiten.js';
import type { Embeddings } from '../src/whiten/formats.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();
const sqrt = Math.sqrt;

/** n×d rows with anisotropic scales, correlated columns and an offset mean. */
function makeRows(n: number, d: number): Float32Array {
  const g = rand.normal(n * d);
  const mix = rand.uniform(d * d, -0.3, 0.3);
  const scale = rand.uniform(d, 0.3, 2);
  const off = rand.uniform(d, -0.5, 0.5);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < d; c++) {
      let s = g[i * d + c] * scale[c];
      for (let k = 0; k < d; k++) s += g[i * d + k] * mix[k * d + c];
      x[i * d + c] = s + off[c];
    }
  return x;
}

function zipf(n: number): Float64Array {
  const perm = Array.from({ length: n }, (_, i) => i).sort(() => rand.next() - 0.5);
  const p = new Float64Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    p[perm[i]] = 1 / (i + 1);
    t += p[perm[i]];
  }
  return p.map((v) => v / t);
}

function refMoments(x: ArrayLike<number>, n: number, d: number, w: ArrayLike<number>) {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += w[i] * x[i * d + c];
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) {
      const xa = w[i] * (x[i * d + a] - mean[a]);
      for (let b = 0; b < d; b++) cov[a * d + b] += xa * (x[i * d + b] - mean[b]);
    }
  return { mean, cov };
}

function identity(d: number): Float64Array {
  const I = new Float64Array(d * d);
  for (let i = 0; i < d; i++) I[i * d + i] = 1;
  return I;
}

describe('weighted moments kernel', () => {
  test.each([
    [1, 1],
    [7, 3],
    [301, 17],
    [1031, 65],
    [9001, 5],
  ])('n %i, d %i: mean and covariance vs float64', async (n, d) => {
    const x = makeRows(n, d);
    const p = zipf(n);
    const b = WhitenBuffers.upload(gpu, x, n, d, p);
    const got = await b.moments('x', 'p');
    b.destroy();
    const want = refMoments(x, n, d, Float32Array.from(p));
    expectClose(got.mean, want.mean, 1e-5, `mean ${n}x${d}`);
    if (n > 1) expectClose(got.cov, want.cov, 1e-4, `cov ${n}x${d}`);
    else expect(maxAbsErr(got.cov, want.cov)).toBeLessThan(1e-6);
  });

  test('apply: (X − μ)·T against float64 (n 257, d 9, k 5)', async () => {
    const n = 257;
    const d = 9;
    const k = 5;
    const x = rand.uniform(n * d);
    const mu = rand.uniform(d);
    const t = rand.uniform(d * k);
    const [X, MU, T] = [gpu.upload('x', x), gpu.upload('mu', mu), gpu.upload('t', t)];
    const [S, Z] = [gpu.buffer('scratch', n * d * 4), gpu.buffer('z', n * k * 4)];
    const cmds = await applyTransform(gpu, { n, d, k, x: X, mean: MU, t: T, scratch: S, out: Z });
    await gpu.run(cmds);
    const got = await gpu.readF32(Z, 0, n * k);
    gpu.release(...cmds);
    gpu.free(X, MU, T, S, Z);
    const want = new Float64Array(n * k);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += (x[i * d + c] - mu[c]) * t[c * k + j];
        want[i * k + j] = s;
      }
    expectClose(got, want, 1e-5, 'apply');
  });

  test.each([
    [1, 1],
    [300, 7],
    [1031, 65],
  ])('row norms, n %i, d %i, and their weighted mean vs float64', async (n, d) => {
    const x = makeRows(n, d);
    const p = zipf(n);
    const [X, N] = [gpu.upload('x', x), gpu.buffer('norms', n * 4)];
    const cmd = await rowNorms(gpu, { n, d, x: X, out: N });
    await gpu.run([cmd]);
    const got = await gpu.readF32(N, 0, n);
    gpu.release(cmd);
    gpu.free(X, N);
    const want = Float64Array.from({ length: n }, (_, i) => Math.hypot(...x.subarray(i * d, (i + 1) * d)));
    expectClose(got, want, 1e-6, `row norms ${n}x${d}`);
    const b = WhitenBuffers.upload(gpu, x, n, d, p);
    const mean = await b.meanNorm('x', 'p');
    b.destroy();
    const p32 = Float32Array.from(p);
    expectClose([mean], [want.reduce((s, v, i) => s + p32[i] * v, 0)], 1e-5, `mean norm ${n}x${d}`);
  });
});

test('rows in blocks (when one binding cannot hold them): moments, mean norm and Z as in one block', async () => {
  const n = 301;
  const d = 17;
  const x = makeRows(n, d);
  const p = zipf(n);
  const want = refMoments(x, n, d, Float32Array.from(p));
  const t = rand.uniform(d * d);
  const mu = rand.uniform(d);
  const results = [];
  for (const blockRows of [n, 64, 7]) {
    const b = WhitenBuffers.upload(gpu, x, n, d, p, blockRows);
    try {
      const m = await b.moments('x', 'p');
      expectClose(m.mean, want.mean, 1e-5, `mean, blocks of ${blockRows}`);
      expectClose(m.cov, want.cov, 1e-4, `cov, blocks of ${blockRows}`);
      await b.apply(mu, t);
      results.push({ z: await b.readZ(), norm: await b.meanNorm('z', 'uniform'), zm: await b.moments('z', 'uniform') });
    } finally {
      b.destroy();
    }
  }
  const [one, ...blocked] = results;
  for (const r of blocked) {
    expectClose(r.z, one.z, 1e-6, 'Z');
    expectClose([r.norm], [one.norm], 1e-5, 'mean norm of Z');
    expectClose(r.zm.cov, one.zm.cov, 1e-4, 'covariance of Z');
  }
});

function emb(words: string[], d: number, vectors: Float32Array): Embeddings {
  return { words, dim: d, vectors, format: 'word2vec' };
}

describe('whitening', () => {
  const n = 403;
  const d = 19;
  const words = Array.from({ length: n }, (_, i) => `w${i}`);
  test.each(['zipfian', 'uniform'] as WhitenMethod[])('%s: Σ q z = 0 and Σ q z zᵀ = I within 1e-4', async (method) => {
    const x = makeRows(n, d);
    const p = zipf(n);
    const counts = new Map(words.map((w, i) => [w, p[i] * 1e6]));
    const r = await whiten(gpu, emb(words, d, x), counts, method);
    expect(r.out.words).toEqual(words);
    const q = method === 'zipfian' ? r.p : new Float64Array(n).fill(1 / n);
    const m = refMoments(r.out.vectors, n, d, q);
    const meanErr = maxAbsErr(m.mean, new Float64Array(d));
    const covErr = maxAbsErr(m.cov, identity(d));
    if (!(meanErr <= 1e-4 && covErr <= 1e-4))
      throw new Error(`${method}: mean err ${meanErr}, cov err ${covErr} (HLM_TEST_SEED=${SEED})`);
    // The other measure is not whitened: zipfian output is not uniform-white, and vice versa.
    const other = refMoments(r.out.vectors, n, d, method === 'zipfian' ? new Float64Array(n).fill(1 / n) : r.p);
    expect(maxAbsErr(other.cov, identity(d))).toBeGreaterThan(1e-2);
  });

  test('words missing from either side are dropped and p renormalised; an empty intersection fails', () => {
    const e = emb(['a', 'b', 'c'], 2, Float32Array.from([1, 2, 3, 4, 5, 6]));
    const a = align(
      e,
      new Map([
        ['c', 3],
        ['a', 1],
        ['z', 100],
      ]),
    );
    expect(a.emb.words).toEqual(['a', 'c']);
    expect(Array.from(a.emb.vectors)).toEqual([1, 2, 5, 6]);
    expect(Array.from(a.p)).toEqual([0.25, 0.75]);
    expect(a.dropped).toEqual({ noFrequency: 1, noVector: 1 });
    expect(() => align(e, new Map([['x', 1]]))).toThrow(/intersection is empty/);
  });

  test('a singular covariance fails without --epsilon and whitens with it', async () => {
    const d2 = 5;
    const n2 = 3; // 3 words in 5 dimensions: rank ≤ 2
    const e = emb(['a', 'b', 'c'], d2, rand.uniform(n2 * d2));
    const counts = new Map([
      ['a', 5],
      ['b', 3],
      ['c', 1],
    ]);
    await expect(whiten(gpu, e, counts, 'zipfian')).rejects.toThrow(/singular.*--epsilon/);
    const r = await whiten(gpu, e, counts, 'zipfian', { epsilon: 1e-3 });
    for (const v of r.out.vectors) expect(Number.isFinite(v)).toBe(true);
  });

  test('center removes the uniform mean; abtt also removes the top-k directions', async () => {
    const x = makeRows(n, d);
    const p = zipf(n);
    const counts = new Map(words.map((w, i) => [w, p[i]]));
    const c = await whiten(gpu, emb(words, d, x), counts, 'center');
    const u = new Float64Array(n).fill(1 / n);
    const ref = refMoments(x, n, d, u);
    const want = Float64Array.from(x, (v, i) => v - ref.mean[i % d]);
    expectClose(c.out.vectors, want, 1e-5, 'center');
    const k = 4;
    const a = await whiten(gpu, emb(words, d, x), counts, 'abtt', { abttK: k });
    const m = refMoments(a.out.vectors, n, d, u);
    expect(maxAbsErr(m.mean, new Float64Array(d))).toBeLessThan(1e-4);
    // The covariance after abtt has rank d − k, its spectrum the original's minus the top k.
    const ev = a.transform.eigenvalues!;
    let trace = 0;
    let rest = 0;
    for (let i = 0; i < d; i++) trace += m.cov[i * d + i];
    for (let i = k; i < d; i++) rest += ev[i];
    expectClose([trace], [rest], 1e-4, 'abtt trace');
  });
});

describe('symmetry scores', () => {
  test('spectral entropy: flat spectrum 1, one direction 0', () => {
    expect(spectralEntropy([2, 2, 2, 2])).toBeCloseTo(1, 12);
    expect(spectralEntropy([3, 0, 0])).toBeCloseTo(0, 12);
    const h = spectralEntropy([1, 1, 0, 0]);
    expect(h).toBeCloseTo(Math.log(2) / Math.log(4), 12);
  });

  test('isotropic centred data scores near 1; a shifted, squashed cloud scores low', async () => {
    const n = 4001;
    const d = 7;
    const x = rand.normal(n * d);
    const p = zipf(n);
    const scores = async (rows: Float32Array, w: Float64Array) => {
      const b = WhitenBuffers.upload(gpu, rows, n, d, w);
      try {
        return await symmetryScores(b, 'x');
      } finally {
        b.destroy();
      }
    };
    const iso = await scores(x, new Float64Array(n).fill(1 / n));
    expect(iso.uniform.sym1).toBeGreaterThan(0.9);
    expect(iso.uniform.sym2).toBeGreaterThan(0.99);
    const y = Float32Array.from(x, (v, i) => (i % d === 0 ? v * 5 + 20 : v * 0.1));
    const bad = await scores(y, p);
    expect(bad.uniform.sym1).toBeLessThan(0.1);
    expect(bad.p.sym1).toBeLessThan(0.1);
    expect(bad.uniform.sym2).toBeLessThan(0.2);
  });

  test('zipfian output is perfectly symmetric under p (Sym1 = Sym2 = 1), raw input is not', async () => {
    const n = 301;
    const d = 11;
    const words = Array.from({ length: n }, (_, i) => `w${i}`);
    const x = makeRows(n, d);
    const p = zipf(n);
    const r = await whiten(gpu, emb(words, d, x), new Map(words.map((w, i) => [w, p[i]])), 'zipfian', { report: true });
    const s = r.symmetry!;
    expect(s.output.p.sym2).toBeGreaterThan(1 - 1e-4);
    expect(s.output.p.sym1).toBeGreaterThan(1 - 1e-3);
    expect(s.input.p.sym2).toBeLessThan(s.output.p.sym2);
    void sqrt;
  });
});

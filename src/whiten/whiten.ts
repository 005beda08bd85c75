// Zipfian whitening (Yokoi et al., NeurIPS 2024) and its baselines. The rows stay on the GPU
// from upload to write-out (./gpu.ts): statistics (weighted mean, weighted covariance), applying
// the transform, its refinement and the symmetry scores run there; the d×d eigendecomposition
// runs in float64 on the CPU (ml-matrix).
//   zipfian: μ = Σ p x, C = Σ p (x−μ)(x−μ)ᵀ = V Λ Vᵀ, z = (x − μ) V Λ^(−1/2)  ⇒ Σ p z zᵀ = I, Σ p z = 0
//   uniform: the same with p uniform over the kept words (PCA whitening)
//   center:  z = x − mean (uniform mean)
//   abtt:    z = (x − mean)(I − U Uᵀ), U the top-k principal directions of the uniform covariance
//            ("all-but-the-top", Mu & Viswanath 2018)
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import type { Embeddings } from './formats.js';
import { WhitenBuffers, type Measure, type Rows } from './gpu.js';

export type WhitenMethod = 'zipfian' | 'uniform' | 'center' | 'abtt';
export const WHITEN_METHODS: readonly WhitenMethod[] = ['zipfian', 'uniform', 'center', 'abtt'];

const sqrt = Math.sqrt;
const log = Math.log;
const abs = Math.abs;

export interface Aligned {
  /** The kept words' embeddings (intersection with the frequency list, in embedding order). */
  emb: Embeddings;
  /** p(w) renormalised over the kept words. */
  p: Float64Array;
  dropped: { noFrequency: number; noVector: number };
}

/** Keep the words present in both inputs; p = count / total over them. */
export function align(
  emb: Embeddings,
  counts: Map<string, number>,
  what = { embeddings: 'embeddings', frequencies: 'frequencies' },
): Aligned {
  const keep: number[] = [];
  for (let i = 0; i < emb.words.length; i++) if (counts.has(emb.words[i])) keep.push(i);
  if (!keep.length)
    throw new HlmError(
      `no word of ${what.embeddings} (${emb.words.length} words, e.g. "${emb.words.slice(0, 3).join('", "')}") ` +
        `appears in ${what.frequencies} (${counts.size} words): the intersection is empty`,
    );
  const d = emb.dim;
  // Readers keep only words with a frequency: then every row is kept and the rows are not copied.
  const all = keep.length === emb.words.length;
  const vectors = all ? emb.vectors : new Float32Array(keep.length * d);
  const words: string[] = all ? emb.words : new Array(keep.length);
  const p = new Float64Array(keep.length);
  let total = 0;
  keep.forEach((i, r) => {
    if (!all) {
      words[r] = emb.words[i];
      vectors.set(emb.vectors.subarray(i * d, (i + 1) * d), r * d);
    }
    p[r] = counts.get(emb.words[i])!;
    total += p[r];
  });
  for (let r = 0; r < p.length; r++) p[r] /= total;
  return {
    emb: { ...emb, words, vectors },
    p,
    dropped: { noFrequency: emb.words.length - keep.length, noVector: counts.size - keep.length },
  };
}

/** Eigenvalues (descending) and the matching eigenvectors as columns of a d×d row-major array. */
export function symmetricEigen(cov: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const rows = Array.from({ length: d }, (_, i) => Array.from(cov.subarray(i * d, (i + 1) * d)));
  const e = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const vals = e.realEigenvalues;
  const V = e.eigenvectorMatrix;
  const order = vals.map((_, i) => i).sort((a, b) => vals[b] - vals[a]);
  const values = Float64Array.from(order, (i) => vals[i]);
  const vectors = new Float64Array(d * d);
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) vectors[r * d + c] = V.get(r, order[c]);
  return { values, vectors };
}

export interface Transform {
  method: WhitenMethod;
  mean: Float64Array;
  /** d×d, row-major: z = (x − mean)·T. */
  T: Float64Array;
  /** Eigenvalues of the covariance the method used (descending), when it used one. */
  eigenvalues?: Float64Array;
}

export interface FitOptions {
  /** Added to the eigenvalues before the inverse square root (zipfian, uniform). */
  epsilon?: number;
  /** Principal components removed by abtt (default 3). */
  abttK?: number;
}

/** Fit a method's transform on the rows X on the GPU: zipfian under p, the others under the uniform measure. */
export async function fitTransform(b: WhitenBuffers, method: WhitenMethod, o: FitOptions = {}): Promise<Transform> {
  const { n, d } = b;
  const measure: Measure = method === 'zipfian' ? 'p' : 'uniform';
  const { mean, cov } = await b.moments('x', measure);
  if (method === 'center') {
    const T = new Float64Array(d * d);
    for (let i = 0; i < d; i++) T[i * d + i] = 1;
    return { method, mean, T };
  }
  const { values, vectors } = symmetricEigen(cov, d);
  const T = new Float64Array(d * d);
  if (method === 'abtt') {
    const k = o.abttK ?? 3;
    if (!(Number.isInteger(k) && k >= 0 && k < d))
      throw new HlmError(`abtt: k must be an integer in [0, ${d - 1}], got ${k}`);
    for (let i = 0; i < d; i++) T[i * d + i] = 1;
    for (let j = 0; j < k; j++)
      for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) T[r * d + c] -= vectors[r * d + j] * vectors[c * d + j];
    return { method, mean, T, eigenvalues: values };
  }
  const eps = o.epsilon ?? 0;
  const covariance = `${method === 'zipfian' ? 'p-weighted ' : ''}covariance`;
  // n words span at most n − 1 dimensions around their mean. The eigenvalue test below cannot be relied on for
  // that case: the covariance is summed in f32, so its zero eigenvalues come out as rounding noise, not zeros.
  if (eps === 0 && n <= d)
    throw new HlmError(
      `${method} whitening: the ${covariance} is singular (${n} words span at most ${n - 1} of ${d} dimensions); ` +
        'pass --epsilon to regularise',
    );
  const scale = Float64Array.from(values, (l, j) => {
    const v = l + eps;
    if (!(v > 1e-12 * abs(values[0] + eps))) {
      throw new HlmError(
        `${method} whitening: the ${covariance} is singular (eigenvalue ` +
          `${j + 1} of ${d} is ${l.toExponential(3)}; ${n} words for ${d} dimensions); pass --epsilon to regularise`,
      );
    }
    return 1 / sqrt(v);
  });
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) T[r * d + c] = vectors[r * d + c] * scale[c];
  if (eps === 0) await refine(b, measure, mean, T);
  return { method, mean, T, eigenvalues: values };
}

/**
 * The covariance was accumulated in f32 on the GPU, so T whitens only to that rounding times
 * the covariance's condition number (seen: 2e-4 off the identity for κ ≈ 100). One refinement
 * measures the weighted covariance C' of the whitened rows, which is close to I and so well
 * conditioned, and right-multiplies T by C'^(−1/2) (symmetric, so the axes barely move).
 */
async function refine(b: WhitenBuffers, measure: Measure, mean: ArrayLike<number>, T: Float64Array): Promise<void> {
  const { d } = b;
  await b.apply(mean, T);
  const { values, vectors } = symmetricEigen((await b.moments('z', measure)).cov, d);
  const R = new Float64Array(d * d);
  for (let r = 0; r < d; r++)
    for (let c = 0; c < d; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (vectors[r * d + j] * vectors[c * d + j]) / sqrt(values[j]);
      R[r * d + c] = s;
    }
  const out = new Float64Array(d * d);
  for (let r = 0; r < d; r++)
    for (let c = 0; c < d; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += T[r * d + j] * R[j * d + c];
      out[r * d + c] = s;
    }
  T.set(out);
}

export interface Symmetry {
  /** 1 − ‖E[x]‖ / E‖x‖ */
  sym1: number;
  /** entropy of the normalised covariance eigenvalues / log d */
  sym2: number;
}

export interface SymmetryReport {
  p: Symmetry;
  uniform: Symmetry;
}

/** Normalised spectral entropy of a covariance's eigenvalues (negatives from rounding count as 0). */
export function spectralEntropy(values: ArrayLike<number>): number {
  const d = values.length;
  if (d < 2) return 1;
  let total = 0;
  for (let i = 0; i < d; i++) total += Math.max(0, values[i]);
  let h = 0;
  for (let i = 0; i < d; i++) {
    const q = Math.max(0, values[i]) / total;
    if (q > 0) h -= q * log(q);
  }
  return h / log(d);
}

/**
 * Sym1 and Sym2 of the rows X or Z on the GPU, under p and under the uniform measure: Sym1 from the weighted mean and
 * the weighted mean of the row norms, Sym2 from the covariance's eigenvalues.
 */
export async function symmetryScores(b: WhitenBuffers, which: Rows): Promise<SymmetryReport> {
  const out: Partial<SymmetryReport> = {};
  for (const measure of ['p', 'uniform'] as const) {
    const { mean, cov } = await b.moments(which, measure);
    let mm = 0;
    for (let c = 0; c < b.d; c++) mm += mean[c] * mean[c];
    out[measure] = {
      sym1: 1 - sqrt(mm) / (await b.meanNorm(which, measure)),
      sym2: spectralEntropy(symmetricEigen(cov, b.d).values),
    };
  }
  return out as SymmetryReport;
}

export interface WhitenResult {
  /** The kept words, transformed; same format as the input. */
  out: Embeddings;
  transform: Transform;
  p: Float64Array;
  dropped: Aligned['dropped'];
  symmetry?: { input: SymmetryReport; output: SymmetryReport };
  timings: { fitMs: number; applyMs: number; reportMs?: number };
}

/** Align, fit, apply (and score, with report) one method. */
export async function whiten(
  gpu: Gpu,
  emb: Embeddings,
  counts: Map<string, number>,
  method: WhitenMethod,
  o: FitOptions & { report?: boolean; names?: { embeddings: string; frequencies: string } } = {},
): Promise<WhitenResult> {
  const a = align(emb, counts, o.names);
  const b = WhitenBuffers.upload(gpu, a.emb.vectors, a.emb.words.length, a.emb.dim, a.p);
  try {
    const t0 = performance.now();
    const transform = await fitTransform(b, method, o);
    const t1 = performance.now();
    await b.apply(transform.mean, transform.T);
    const t2 = performance.now();
    const symmetry = o.report
      ? { input: await symmetryScores(b, 'x'), output: await symmetryScores(b, 'z') }
      : undefined;
    const t3 = performance.now();
    const out: Embeddings = { ...a.emb, vectors: await b.readZ() };
    const result: WhitenResult = {
      out,
      transform,
      p: a.p,
      dropped: a.dropped,
      timings: { fitMs: t1 - t0, applyMs: t2 - t1 + (performance.now() - t3) },
    };
    if (symmetry) {
      result.symmetry = symmetry;
      result.timings.reportMs = t3 - t2;
    }
    return result;
  } finally {
    b.destroy();
  }
}

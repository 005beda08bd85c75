// Zipfian whitening (Yokoi et al., NeurIPS 2024) and its baselines. Statistics (weighted mean,
// weighted covariance) and applying the transform run on the GPU (src/kernels/whiten.ts); the
// d×d eigendecomposition runs in float64 on the CPU (ml-matrix).
//   zipfian: μ = Σ p x, C = Σ p (x−μ)(x−μ)ᵀ = V Λ Vᵀ, z = (x − μ) V Λ^(−1/2)  ⇒ Σ p z zᵀ = I, Σ p z = 0
//   uniform: the same with p uniform over the kept words (PCA whitening)
//   center:  z = x − mean (uniform mean)
//   abtt:    z = (x − mean)(I − U Uᵀ), U the top-k principal directions of the uniform covariance
//            ("all-but-the-top", Mu & Viswanath 2018)
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { applyTransform, weightedMoments } from '../kernels/whiten.js';
import type { Embeddings } from './formats.js';

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
  const vectors = new Float32Array(keep.length * d);
  const words: string[] = new Array(keep.length);
  const p = new Float64Array(keep.length);
  let total = 0;
  keep.forEach((i, r) => {
    words[r] = emb.words[i];
    vectors.set(emb.vectors.subarray(i * d, (i + 1) * d), r * d);
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

export function uniformWeights(n: number): Float64Array {
  return new Float64Array(n).fill(1 / n);
}

/** Fit a method's transform on n×d rows already on the GPU, with word probabilities p. */
export async function fitTransform(
  gpu: Gpu,
  x: GPUBuffer,
  n: number,
  d: number,
  p: Float64Array,
  method: WhitenMethod,
  o: FitOptions = {},
): Promise<Transform> {
  const weights = method === 'zipfian' ? p : uniformWeights(n);
  const { mean, cov } = await weightedMoments(gpu, x, n, d, weights);
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
  const scale = Float64Array.from(values, (l, j) => {
    const v = l + eps;
    if (!(v > 1e-12 * abs(values[0] + eps))) {
      throw new HlmError(
        `${method} whitening: the ${method === 'zipfian' ? 'p-weighted ' : ''}covariance is singular (eigenvalue ` +
          `${j + 1} of ${d} is ${l.toExponential(3)}; ${n} words for ${d} dimensions); pass --epsilon to regularise`,
      );
    }
    return 1 / sqrt(v);
  });
  for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) T[r * d + c] = vectors[r * d + c] * scale[c];
  if (eps === 0) await refine(gpu, x, n, d, weights, mean, T);
  return { method, mean, T, eigenvalues: values };
}

/**
 * The covariance was accumulated in f32 on the GPU, so T whitens only to that rounding times
 * the covariance's condition number (seen: 2e-4 off the identity for κ ≈ 100). One refinement
 * measures the weighted covariance C' of the whitened rows, which is close to I and so well
 * conditioned, and right-multiplies T by C'^(−1/2) (symmetric, so the axes barely move).
 */
async function refine(
  gpu: Gpu,
  x: GPUBuffer,
  n: number,
  d: number,
  weights: ArrayLike<number>,
  mean: ArrayLike<number>,
  T: Float64Array,
): Promise<void> {
  const z = await applyTransform(gpu, x, n, d, mean, T, d);
  const Z = gpu.upload('whiten refinement', z);
  let cz: Float64Array;
  try {
    cz = (await weightedMoments(gpu, Z, n, d, weights)).cov;
  } finally {
    gpu.free(Z);
  }
  const { values, vectors } = symmetricEigen(cz, d);
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

function sym1(x: Float32Array, n: number, d: number, w: Float64Array): number {
  const m = new Float64Array(d);
  let meanNorm = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    const wi = w[i];
    for (let c = 0; c < d; c++) {
      const v = x[i * d + c];
      m[c] += wi * v;
      s += v * v;
    }
    meanNorm += wi * sqrt(s);
  }
  let mm = 0;
  for (let c = 0; c < d; c++) mm += m[c] * m[c];
  return 1 - sqrt(mm) / meanNorm;
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

/** Sym1 and Sym2 of n×d rows, under p and under the uniform measure (covariances on the GPU). */
export async function symmetryScores(
  gpu: Gpu,
  x: Float32Array,
  n: number,
  d: number,
  p: Float64Array,
): Promise<SymmetryReport> {
  const X = gpu.upload('symmetry rows', x);
  try {
    const u = uniformWeights(n);
    const out: Partial<SymmetryReport> = {};
    for (const [name, w] of [
      ['p', p],
      ['uniform', u],
    ] as const) {
      const { cov } = await weightedMoments(gpu, X, n, d, w);
      out[name] = { sym1: sym1(x, n, d, w), sym2: spectralEntropy(symmetricEigen(cov, d).values) };
    }
    return out as SymmetryReport;
  } finally {
    gpu.free(X);
  }
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
  const n = a.emb.words.length;
  const d = a.emb.dim;
  const X = gpu.upload('whiten input', a.emb.vectors);
  try {
    const t0 = performance.now();
    const transform = await fitTransform(gpu, X, n, d, a.p, method, o);
    const t1 = performance.now();
    const z = await applyTransform(gpu, X, n, d, transform.mean, transform.T, d);
    const t2 = performance.now();
    const out: Embeddings = { ...a.emb, vectors: z };
    const result: WhitenResult = {
      out,
      transform,
      p: a.p,
      dropped: a.dropped,
      timings: { fitMs: t1 - t0, applyMs: t2 - t1 },
    };
    if (o.report) {
      result.symmetry = {
        input: await symmetryScores(gpu, a.emb.vectors, n, d, a.p),
        output: await symmetryScores(gpu, z, n, d, a.p),
      };
      result.timings.reportMs = performance.now() - t2;
    }
    return result;
  } finally {
    gpu.free(X);
  }
}

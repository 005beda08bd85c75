// Whitening's kernels, deterministic (no float atomics): the weighted mean is the 1×n by n×d
// product wᵀX, and the weighted covariance Σ_i w_i (x_i − μ)(x_i − μ)ᵀ is WᵀW with
// W = diag(√w)(X − μ) built by a small elementwise kernel; both products use the tiled matmul,
// whose reduction order is fixed. Applying a transform, Z = (X − μ)·T, is centring then matmul.
// These only bind and dispatch; src/whiten/ owns the buffers, runs the dispatches and reads back.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { matmul } from './matmul.js';
import { checkSizes, elementGrid } from './types.js';

export interface CenterScaleSpec {
  n: number;
  d: number;
  /** n×d rows. */
  x: GPUBuffer;
  /** d means. */
  mu: GPUBuffer;
  /** n row weights (ignored unless scale). */
  w: GPUBuffer;
  /** n×d output; must not be x. */
  out: GPUBuffer;
  /** Multiply each centred row by √w_i (default true). */
  scale?: boolean;
  label?: string;
}

/** out = diag(√w)(X − 1μᵀ), or X − 1μᵀ when scale is false. */
export async function centerScale(gpu: Gpu, s: CenterScaleSpec): Promise<Dispatch> {
  const label = s.label ?? `whiten center ${s.n}x${s.d}`;
  checkSizes(label, { n: s.n, d: s.d });
  if (s.out === s.x || s.out === s.mu || s.out === s.w)
    throw new HlmError(`${label}: out must not share a buffer with an input`);
  const kernel = await gpu.kernel('whiten_center_scale', { SCALE: s.scale ?? true });
  return gpu.dispatch(label, kernel, {
    bind: { x: s.x, mu: s.mu, w: s.w, out: s.out },
    params: { n: s.n, d: s.d },
    groups: elementGrid(gpu, kernel, s.n * s.d),
  });
}

export interface MomentsSpec {
  n: number;
  d: number;
  /** n×d rows. */
  x: GPUBuffer;
  /** n row weights. */
  w: GPUBuffer;
  /** d outputs: the weighted mean wᵀX. */
  mean: GPUBuffer;
  /** n×d working rows: diag(√w)(X − 1μᵀ). */
  scratch: GPUBuffer;
  /** d×d output: the weighted covariance scratchᵀ·scratch. */
  cov: GPUBuffer;
  label?: string;
}

/** The weighted mean and covariance of n×d rows: three dispatches, to run in order. */
export async function weightedMoments(gpu: Gpu, s: MomentsSpec): Promise<Dispatch[]> {
  const { n, d } = s;
  const label = s.label ?? `whiten moments ${n}x${d}`;
  const [w, x, mean, scratch, cov] = [s.w, s.x, s.mean, s.scratch, s.cov].map((buffer) => ({ buffer }));
  return [
    ...(await matmul(gpu, { M: 1, N: d, K: n, a: w, b: x, c: mean, label: `${label}: mean` })),
    await centerScale(gpu, { n, d, x: s.x, mu: s.mean, w: s.w, out: s.scratch, label: `${label}: centre` }),
    ...(await matmul(gpu, {
      M: d,
      N: d,
      K: n,
      transA: true,
      a: scratch,
      b: scratch,
      c: cov,
      label: `${label}: covariance`,
    })),
  ];
}

export interface ApplySpec {
  n: number;
  d: number;
  /** Columns of the transform and the output. */
  k: number;
  /** n×d rows. */
  x: GPUBuffer;
  /** d means. */
  mean: GPUBuffer;
  /** d×k transform. */
  t: GPUBuffer;
  /** n×d working rows: X − 1μᵀ. */
  scratch: GPUBuffer;
  /** n×k output. */
  out: GPUBuffer;
  label?: string;
}

/** out = (X − 1μᵀ)·T: centring, then the matmul. */
export async function applyTransform(gpu: Gpu, s: ApplySpec): Promise<Dispatch[]> {
  const { n, d, k } = s;
  const label = s.label ?? `whiten apply ${n}x${k}x${d}`;
  const centre = { n, d, x: s.x, mu: s.mean, w: s.mean, out: s.scratch, scale: false, label: `${label}: centre` };
  const [scratch, t, out] = [s.scratch, s.t, s.out].map((buffer) => ({ buffer }));
  return [
    await centerScale(gpu, centre),
    ...(await matmul(gpu, { M: n, N: k, K: d, a: scratch, b: t, c: out, label })),
  ];
}

export interface RowNormsSpec {
  n: number;
  d: number;
  /** n×d rows. */
  x: GPUBuffer;
  /** n outputs: ‖x_i‖. */
  out: GPUBuffer;
  label?: string;
}

/** out[i] = ‖x[i, :]‖ (Euclidean). */
export async function rowNorms(gpu: Gpu, s: RowNormsSpec): Promise<Dispatch> {
  const label = s.label ?? `whiten row norms ${s.n}x${s.d}`;
  checkSizes(label, { n: s.n, d: s.d });
  if (s.out === s.x) throw new HlmError(`${label}: out must not be x`);
  const kernel = await gpu.kernel('whiten_row_norms');
  return gpu.dispatch(label, kernel, {
    bind: { x: s.x, out: s.out },
    params: { n: s.n, d: s.d },
    groups: elementGrid(gpu, kernel, s.n),
  });
}

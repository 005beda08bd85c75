// Weighted moments for whitening, deterministic (no float atomics): the weighted mean is the
// 1×n by n×d product pᵀX, and the weighted covariance Σ_i w_i (x_i − μ)(x_i − μ)ᵀ is WᵀW with
// W = diag(√w)(X − μ) built by a small elementwise kernel; both products use the tiled matmul,
// whose reduction order is fixed. Applying a transform, Z = (X − μ)·T, is centring then matmul.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { matmul } from './matmul.js';
import { grid, packParams } from './types.js';

const WG = 256; // matches WG in whiten_center_scale.wgsl

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
  if (!(Number.isInteger(s.n) && s.n > 0 && Number.isInteger(s.d) && s.d > 0))
    throw new HlmError(`${label}: n and d must be positive integers`);
  if (s.out === s.x || s.out === s.mu || s.out === s.w)
    throw new HlmError(`${label}: out must not share a buffer with an input`);
  const pipeline = await gpu.pipeline('whiten_center_scale', { SCALE: s.scale ?? true });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', s.n],
      ['u32', s.d],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  return gpu.dispatch(label, pipeline, [s.x, s.mu, s.w, s.out, uniform], grid(gpu, s.n * s.d, WG), [uniform]);
}

export interface Moments {
  /** Σ w_i x_i (float64 copy of the f32 result). */
  mean: Float64Array;
  /** d×d Σ w_i (x_i − μ)(x_i − μ)ᵀ, row-major, symmetrised. */
  cov: Float64Array;
}

/**
 * Weighted mean and covariance of the n×d rows in `x` (a GPU buffer) under weights `w`
 * (summing to 1; passed as f32). The mean used for centring is `center` when given.
 */
export async function weightedMoments(
  gpu: Gpu,
  x: GPUBuffer,
  n: number,
  d: number,
  w: ArrayLike<number>,
  center?: ArrayLike<number>,
): Promise<Moments> {
  if (w.length !== n) throw new HlmError(`weighted moments: ${w.length} weights for ${n} rows`);
  const W = gpu.upload('whiten weights', Float32Array.from(w));
  const MU = gpu.buffer('whiten mean', d * 4);
  const WX = gpu.buffer('whiten weighted rows', n * d * 4);
  const C = gpu.buffer('whiten covariance', d * d * 4);
  const cmds: Dispatch[] = [];
  try {
    if (center) gpu.write(MU, Float32Array.from(center));
    else
      cmds.push(
        ...(await matmul(gpu, {
          M: 1,
          N: d,
          K: n,
          a: { buffer: W },
          b: { buffer: x },
          c: { buffer: MU },
          label: `whiten mean 1x${d}x${n}`,
        })),
      );
    cmds.push(await centerScale(gpu, { n, d, x, mu: MU, w: W, out: WX }));
    cmds.push(
      ...(await matmul(gpu, {
        M: d,
        N: d,
        K: n,
        transA: true,
        a: { buffer: WX },
        b: { buffer: WX },
        c: { buffer: C },
        label: `whiten covariance ${d}x${d}x${n}`,
      })),
    );
    await gpu.run(cmds, 'whiten moments');
    const mean = center ? Float64Array.from(center) : Float64Array.from(await gpu.readF32(MU, 0, d));
    const c32 = await gpu.readF32(C, 0, d * d);
    const cov = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cov[i * d + j] = 0.5 * (c32[i * d + j] + c32[j * d + i]);
    return { mean, cov };
  } finally {
    gpu.release(...cmds);
    gpu.free(W, MU, WX, C);
  }
}

/** Z = (X − μ)·T for n×d rows X (GPU buffer) and a d×k transform T; returns Z (n×k) on the host. */
export async function applyTransform(
  gpu: Gpu,
  x: GPUBuffer,
  n: number,
  d: number,
  mu: ArrayLike<number>,
  t: ArrayLike<number>,
  k: number,
): Promise<Float32Array> {
  if (mu.length !== d || t.length !== d * k)
    throw new HlmError(`whiten apply: mean of ${mu.length} and transform of ${t.length} for d = ${d}, k = ${k}`);
  const MU = gpu.upload('whiten apply mean', Float32Array.from(mu));
  const T = gpu.upload('whiten transform', Float32Array.from(t));
  const XC = gpu.buffer('whiten centred', n * d * 4);
  const Z = gpu.buffer('whiten output', n * k * 4);
  const cmds: Dispatch[] = [];
  try {
    cmds.push(await centerScale(gpu, { n, d, x, mu: MU, w: MU, out: XC, scale: false }));
    cmds.push(
      ...(await matmul(gpu, {
        M: n,
        N: k,
        K: d,
        a: { buffer: XC },
        b: { buffer: T },
        c: { buffer: Z },
        label: `whiten apply ${n}x${k}x${d}`,
      })),
    );
    await gpu.run(cmds, 'whiten apply');
    return await gpu.readF32(Z, 0, n * k);
  } finally {
    gpu.release(...cmds);
    gpu.free(MU, T, XC, Z);
  }
}

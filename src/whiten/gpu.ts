// Whitening's data on the GPU, from upload to write-out: the rows X (n×d) and the two measures (word probabilities p,
// uniform) are uploaded once; the transformed rows Z are computed into a buffer beside X; moments, the transform, its
// refinement and the symmetry scores all run on these buffers (src/kernels/whiten.ts). The host reads back only what
// the float64 eigendecomposition and the scores need (d means, d×d covariances, one mean norm) and Z once, at the end.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { matmul } from '../kernels/matmul.js';
import { applyTransform, rowNorms, weightedMoments } from '../kernels/whiten.js';

export type Rows = 'x' | 'z';
export type Measure = 'p' | 'uniform';

export interface Moments {
  /** Σ w_i x_i (float64 copy of the f32 result). */
  mean: Float64Array;
  /** d×d Σ w_i (x_i − μ)(x_i − μ)ᵀ, row-major, symmetrised. */
  cov: Float64Array;
}

export function uniformWeights(n: number): Float64Array {
  return new Float64Array(n).fill(1 / n);
}

export class WhitenBuffers {
  private readonly weights: Record<Measure, GPUBuffer>;
  private readonly owned: GPUBuffer[];
  private readonly mean: GPUBuffer;
  private readonly cov: GPUBuffer;
  private readonly applyMean: GPUBuffer;
  private readonly transform: GPUBuffer;
  /** Allocated when first needed: n×d working rows (weighted or centred copies), Z, the row norms and their mean. */
  private scratchRows?: GPUBuffer;
  private z?: GPUBuffer;
  private norms?: GPUBuffer;
  private normMean?: GPUBuffer;

  private constructor(
    private readonly gpu: Gpu,
    readonly n: number,
    readonly d: number,
    readonly x: GPUBuffer,
    p: GPUBuffer,
    uniform: GPUBuffer,
  ) {
    this.weights = { p, uniform };
    this.owned = [x, p, uniform];
    this.mean = this.alloc('whiten mean', d);
    this.cov = this.alloc('whiten covariance', d * d);
    this.applyMean = this.alloc('whiten apply mean', d);
    this.transform = this.alloc('whiten transform', d * d);
  }

  /** Upload n×d rows and their word probabilities p (summing to 1), once. */
  static upload(gpu: Gpu, x: Float32Array, n: number, d: number, p: ArrayLike<number>): WhitenBuffers {
    if (x.length !== n * d) throw new HlmError(`whiten: ${x.length} values for ${n}×${d} rows`);
    if (p.length !== n) throw new HlmError(`whiten: ${p.length} weights for ${n} rows`);
    const up: GPUBuffer[] = [];
    try {
      up.push(gpu.upload('whiten rows', x));
      up.push(gpu.upload('whiten weights p', Float32Array.from(p)));
      up.push(gpu.upload('whiten weights uniform', Float32Array.from(uniformWeights(n))));
      return new WhitenBuffers(gpu, n, d, up[0], up[1], up[2]);
    } catch (e) {
      gpu.free(...up);
      throw e;
    }
  }

  private alloc(label: string, floats: number): GPUBuffer {
    const b = this.gpu.buffer(label, floats * 4);
    this.owned.push(b);
    return b;
  }

  private rows(which: Rows): GPUBuffer {
    if (which === 'x') return this.x;
    if (!this.z) throw new HlmError('whiten: no transformed rows yet (apply a transform first)');
    return this.z;
  }

  private async run(cmds: Dispatch[], label: string): Promise<void> {
    try {
      await this.gpu.run(cmds, label);
    } finally {
      this.gpu.release(...cmds);
    }
  }

  /** Weighted mean and covariance of X or Z under a measure. */
  async moments(which: Rows, measure: Measure): Promise<Moments> {
    const { n, d } = this;
    this.scratchRows ??= this.alloc('whiten working rows', n * d);
    const cmds = await weightedMoments(this.gpu, {
      n,
      d,
      x: this.rows(which),
      w: this.weights[measure],
      mean: this.mean,
      scratch: this.scratchRows,
      cov: this.cov,
      label: `whiten moments of ${which} under ${measure}`,
    });
    await this.run(cmds, 'whiten moments');
    const mean = Float64Array.from(await this.gpu.readF32(this.mean, 0, d));
    const c32 = await this.gpu.readF32(this.cov, 0, d * d);
    const cov = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cov[i * d + j] = 0.5 * (c32[i * d + j] + c32[j * d + i]);
    return { mean, cov };
  }

  /** Z = (X − μ)·T for d means and a d×d transform (row-major), kept on the GPU. */
  async apply(mean: ArrayLike<number>, t: ArrayLike<number>): Promise<void> {
    const { n, d } = this;
    if (mean.length !== d || t.length !== d * d)
      throw new HlmError(`whiten apply: mean of ${mean.length} and transform of ${t.length} for d = ${d}`);
    this.scratchRows ??= this.alloc('whiten working rows', n * d);
    this.z ??= this.alloc('whiten output', n * d);
    this.gpu.write(this.applyMean, Float32Array.from(mean));
    this.gpu.write(this.transform, Float32Array.from(t));
    const cmds = await applyTransform(this.gpu, {
      n,
      d,
      k: d,
      x: this.x,
      mean: this.applyMean,
      t: this.transform,
      scratch: this.scratchRows,
      out: this.z,
    });
    await this.run(cmds, 'whiten apply');
  }

  /** Σ w_i ‖row_i‖ under a measure: the mean norm of the symmetry score Sym1. */
  async meanNorm(which: Rows, measure: Measure): Promise<number> {
    const { n, d } = this;
    this.norms ??= this.alloc('whiten row norms', n);
    this.normMean ??= this.alloc('whiten mean norm', 1);
    const cmds = [
      await rowNorms(this.gpu, { n, d, x: this.rows(which), out: this.norms }),
      ...(await matmul(this.gpu, {
        M: 1,
        N: 1,
        K: n,
        a: { buffer: this.weights[measure] },
        b: { buffer: this.norms },
        c: { buffer: this.normMean },
        label: `whiten mean norm of ${which} under ${measure}`,
      })),
    ];
    await this.run(cmds, 'whiten mean norm');
    return (await this.gpu.readF32(this.normMean, 0, 1))[0];
  }

  /** The transformed rows, read back (n×d). */
  readZ(): Promise<Float32Array> {
    return this.gpu.readF32(this.rows('z'), 0, this.n * this.d);
  }

  destroy(): void {
    this.gpu.free(...this.owned.splice(0));
    this.scratchRows = this.z = this.norms = this.normMean = undefined;
  }
}

// Whitening's data on the GPU, from upload to write-out: the rows X (n×d) and the two measures (word probabilities p,
// uniform) are uploaded once; the transformed rows Z are computed into buffers beside X; moments, the transform, its
// refinement and the symmetry scores all run on these buffers (src/kernels/whiten.ts). The host reads back only what
// the float64 eigendecomposition and the scores need (d means, d×d covariances, one mean norm) and Z once, at the end.
// The rows are held in blocks that each fit one storage binding (llvmpipe binds at most 128 MiB: 111,848 rows of 300):
// sums over the rows (the weighted mean, the covariance, the mean norm) accumulate block by block in the matmul's
// output (beta = 1 after the first block), and the per-row steps run on each block.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { matmul } from '../kernels/matmul.js';
import { applyTransform, centerScale, rowNorms } from '../kernels/whiten.js';

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

/** Rows of one block: X, the two measures' weights, and (once computed) Z and the row norms. */
interface Block {
  /** First row. */
  at: number;
  rows: number;
  x: GPUBuffer;
  weights: Record<Measure, GPUBuffer>;
  z?: GPUBuffer;
  norms?: GPUBuffer;
}

/** Rows of d floats that one storage binding holds on this device. */
export function rowsPerBinding(gpu: Gpu, d: number): number {
  return Math.max(1, Math.floor((gpu.limits.maxStorageBufferBindingSize ?? 2 ** 27) / (4 * d)));
}

export class WhitenBuffers {
  private readonly owned: GPUBuffer[] = [];
  private readonly blocks: Block[] = [];
  private readonly mean: GPUBuffer;
  private readonly cov: GPUBuffer;
  private readonly applyMean: GPUBuffer;
  private readonly transform: GPUBuffer;
  /** Allocated when first needed: working rows (weighted or centred copies of a block), the mean norm. */
  private scratchRows?: GPUBuffer;
  private normMean?: GPUBuffer;
  private haveZ = false;

  private constructor(
    private readonly gpu: Gpu,
    readonly n: number,
    readonly d: number,
    /** Rows per block (the last may have fewer). */
    readonly blockRows: number,
  ) {
    this.mean = this.alloc('whiten mean', d);
    this.cov = this.alloc('whiten covariance', d * d);
    this.applyMean = this.alloc('whiten apply mean', d);
    this.transform = this.alloc('whiten transform', d * d);
  }

  /**
   * Upload n×d rows and their word probabilities p (summing to 1), once, in blocks of at most `blockRows` rows
   * (default: what one storage binding holds).
   */
  static upload(
    gpu: Gpu,
    x: Float32Array,
    n: number,
    d: number,
    p: ArrayLike<number>,
    blockRows = rowsPerBinding(gpu, d),
  ): WhitenBuffers {
    if (x.length !== n * d) throw new HlmError(`whiten: ${x.length} values for ${n}×${d} rows`);
    if (p.length !== n) throw new HlmError(`whiten: ${p.length} weights for ${n} rows`);
    if (!(Number.isInteger(blockRows) && blockRows >= 1))
      throw new HlmError(`whiten: rows per block must be a positive integer, got ${blockRows}`);
    const b = new WhitenBuffers(gpu, n, d, blockRows);
    try {
      const p32 = Float32Array.from(p);
      const u32 = new Float32Array(n).fill(1 / n);
      for (let at = 0; at < n; at += blockRows) {
        const rows = Math.min(blockRows, n - at);
        const part = (label: string, v: Float32Array, from: number, to: number) => {
          const buf = gpu.upload(label, v.subarray(from, to));
          b.owned.push(buf);
          return buf;
        };
        b.blocks.push({
          at,
          rows,
          x: part('whiten rows', x, at * d, (at + rows) * d),
          weights: {
            p: part('whiten weights p', p32, at, at + rows),
            uniform: part('whiten weights uniform', u32, at, at + rows),
          },
        });
      }
      return b;
    } catch (e) {
      b.destroy();
      throw e;
    }
  }

  private alloc(label: string, floats: number): GPUBuffer {
    const b = this.gpu.buffer(label, floats * 4);
    this.owned.push(b);
    return b;
  }

  private rows(block: Block, which: Rows): GPUBuffer {
    if (which === 'x') return block.x;
    if (!this.haveZ || !block.z) throw new HlmError('whiten: no transformed rows yet (apply a transform first)');
    return block.z;
  }

  private scratch(): GPUBuffer {
    return (this.scratchRows ??= this.alloc('whiten working rows', Math.min(this.n, this.blockRows) * this.d));
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
    const { d } = this;
    const label = `whiten moments of ${which} under ${measure}`;
    const mean = { buffer: this.mean };
    const cov = { buffer: this.cov };
    const cmds: Dispatch[] = [];
    try {
      // μ = Σ_blocks w_bᵀ X_b, then C = Σ_blocks W_bᵀ W_b with W_b = diag(√w_b)(X_b − μ).
      for (const b of this.blocks) {
        const [w, x] = [b.weights[measure], this.rows(b, which)].map((buffer) => ({ buffer }));
        const beta = b.at ? 1 : 0;
        cmds.push(
          ...(await matmul(this.gpu, { M: 1, N: d, K: b.rows, a: w, b: x, c: mean, beta, label: `${label}: mean` })),
        );
      }
      for (const b of this.blocks) {
        const scratch = { buffer: this.scratch() };
        const x = this.rows(b, which);
        const n = b.rows;
        const centre = {
          n,
          d,
          x,
          mu: this.mean,
          w: b.weights[measure],
          out: scratch.buffer,
          label: `${label}: centre`,
        };
        cmds.push(await centerScale(this.gpu, centre));
        const beta = b.at ? 1 : 0;
        const spec = { M: d, N: d, K: n, transA: true, a: scratch, b: scratch, c: cov, beta, label: `${label}: cov` };
        cmds.push(...(await matmul(this.gpu, spec)));
      }
    } catch (e) {
      this.gpu.release(...cmds);
      throw e;
    }
    await this.run(cmds, 'whiten moments');
    const m = Float64Array.from(await this.gpu.readF32(this.mean, 0, d));
    const c32 = await this.gpu.readF32(this.cov, 0, d * d);
    const c = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) c[i * d + j] = 0.5 * (c32[i * d + j] + c32[j * d + i]);
    return { mean: m, cov: c };
  }

  /** Z = (X − μ)·T for d means and a d×d transform (row-major), kept on the GPU. */
  async apply(mean: ArrayLike<number>, t: ArrayLike<number>): Promise<void> {
    const { d } = this;
    if (mean.length !== d || t.length !== d * d)
      throw new HlmError(`whiten apply: mean of ${mean.length} and transform of ${t.length} for d = ${d}`);
    this.gpu.write(this.applyMean, Float32Array.from(mean));
    this.gpu.write(this.transform, Float32Array.from(t));
    const cmds: Dispatch[] = [];
    try {
      for (const b of this.blocks) {
        b.z ??= this.alloc('whiten output', b.rows * d);
        const spec = { n: b.rows, d, k: d, x: b.x, mean: this.applyMean, t: this.transform, scratch: this.scratch() };
        cmds.push(...(await applyTransform(this.gpu, { ...spec, out: b.z })));
      }
    } catch (e) {
      this.gpu.release(...cmds);
      throw e;
    }
    await this.run(cmds, 'whiten apply');
    this.haveZ = true;
  }

  /** Σ w_i ‖row_i‖ under a measure: the mean norm of the symmetry score Sym1. */
  async meanNorm(which: Rows, measure: Measure): Promise<number> {
    const { d } = this;
    this.normMean ??= this.alloc('whiten mean norm', 1);
    const cmds: Dispatch[] = [];
    try {
      for (const b of this.blocks) {
        b.norms ??= this.alloc('whiten row norms', b.rows);
        cmds.push(await rowNorms(this.gpu, { n: b.rows, d, x: this.rows(b, which), out: b.norms }));
        cmds.push(
          ...(await matmul(this.gpu, {
            M: 1,
            N: 1,
            K: b.rows,
            a: { buffer: b.weights[measure] },
            b: { buffer: b.norms },
            c: { buffer: this.normMean },
            beta: b.at ? 1 : 0,
            label: `whiten mean norm of ${which} under ${measure}`,
          })),
        );
      }
    } catch (e) {
      this.gpu.release(...cmds);
      throw e;
    }
    await this.run(cmds, 'whiten mean norm');
    return (await this.gpu.readF32(this.normMean, 0, 1))[0];
  }

  /** The transformed rows, read back (n×d). */
  async readZ(): Promise<Float32Array> {
    const out = new Float32Array(this.n * this.d);
    for (const b of this.blocks) out.set(await this.gpu.readF32(this.rows(b, 'z'), 0, b.rows * this.d), b.at * this.d);
    return out;
  }

  destroy(): void {
    this.gpu.free(...this.owned.splice(0));
    for (const b of this.blocks) b.z = b.norms = undefined;
    this.scratchRows = this.normMean = undefined;
    this.haveZ = false;
  }
}

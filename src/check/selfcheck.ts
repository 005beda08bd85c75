// The device self-check behind `hlm check`: every kernel run on the chosen device against its
// float64 reference on small odd shapes with fresh random inputs, plus one timed matmul.
// It is how a user learns, on a new machine, that the GPU path computes the right numbers.
import type { Gpu } from '../gpu/device.js';
import { add } from '../kernels/add.js';
import { matmul, matmulFlops } from '../kernels/matmul.js';
import { reduceRows } from '../kernels/reduce.js';
import { addBroadcast } from '../reference/broadcast.js';
import { matmul as matmulRef } from '../reference/matmul.js';
import { rowMax, rowSum } from '../reference/reductions.js';
import { streamRng } from '../data/random.js';

export interface CheckRow {
  kernel: string;
  shape: string;
  relErr: number;
  tolerance: number;
  ok: boolean;
}

export interface Throughput {
  kernel: string;
  shape: string;
  ms: number;
  gflops: number;
}

export interface SelfCheckResult {
  device: string;
  checks: CheckRow[];
  throughput: Throughput[];
  ok: boolean;
}

function random(n: number, next: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * next() - 1);
}

function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (got[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num) / (den > 0 ? Math.sqrt(den) : 1);
}

export async function selfCheck(gpu: Gpu, opts: { size: number; reps: number; seed?: number }): Promise<SelfCheckResult> {
  const next = streamRng(opts.seed ?? Date.now());
  const checks: CheckRow[] = [];
  const record = (kernel: string, shape: string, got: ArrayLike<number>, ref: ArrayLike<number>, tolerance: number) => {
    const err = relErr(got, ref);
    checks.push({ kernel, shape, relErr: err, tolerance, ok: err <= tolerance }); // NaN is not ok
  };

  for (const [M, N, K] of [[127, 129, 65], [3, 5, 7]]) {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
      const a = random(M * K, next), b = random(K * N, next);
      const A = gpu.upload('check A', a), B = gpu.upload('check B', b), C = gpu.buffer('check C', M * N * 4);
      const d = await matmul(gpu, { M, N, K, transA, transB, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
      await gpu.run(d, 'check matmul');
      record(`matmul${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}`, `${M}x${N}x${K}`, await gpu.readF32(C, 0, M * N), matmulRef(a, b, M, N, K, transA, transB), 1e-5);
      gpu.release(...d);
      gpu.free(A, B, C);
    }
  }

  {
    const rows = 67, cols = 129;
    const x = random(rows * cols, next), bias = random(cols, next);
    const X = gpu.upload('check x', x), Bv = gpu.upload('check bias', bias), O = gpu.buffer('check out', rows * cols * 4);
    const S = gpu.buffer('check sum', rows * 4), Mx = gpu.buffer('check max', rows * 4);
    const ds = [
      await add(gpu, { rows, cols, out: { buffer: O }, a: { buffer: X }, b: { buffer: Bv }, bStrides: [0, 1] }),
      await reduceRows(gpu, { op: 'sum', rows, cols, x: { buffer: X }, out: { buffer: S } }),
      await reduceRows(gpu, { op: 'max', rows, cols, x: { buffer: X }, out: { buffer: Mx } }),
    ];
    await gpu.run(ds, 'check elementwise');
    record('broadcast add', `${rows}x${cols}`, await gpu.readF32(O, 0, rows * cols), addBroadcast(x, bias, rows, cols, 0, 1), 1e-6);
    record('row sum', `${rows}x${cols}`, await gpu.readF32(S, 0, rows), rowSum(x, rows, cols), 1e-6);
    record('row max', `${rows}x${cols}`, await gpu.readF32(Mx, 0, rows), rowMax(x, rows, cols), 0);
    gpu.release(...ds);
    gpu.free(X, Bv, O, S, Mx);
  }

  const throughput: Throughput[] = [];
  {
    const n = opts.size;
    const A = gpu.upload('bench A', random(n * n, next)), B = gpu.upload('bench B', random(n * n, next)), C = gpu.buffer('bench C', n * n * 4);
    const d = await matmul(gpu, { M: n, N: n, K: n, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
    await gpu.run(d, 'warm-up');
    const times: number[] = [];
    for (let r = 0; r < opts.reps; r++) {
      const t0 = performance.now();
      gpu.submit(d, 'timed matmul');
      await gpu.done();
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    const ms = times[Math.floor(times.length / 2)];
    throughput.push({ kernel: 'matmul', shape: `${n}x${n}x${n}`, ms, gflops: matmulFlops({ M: n, N: n, K: n }) / (ms * 1e6) });
    gpu.release(...d);
    gpu.free(A, B, C);
  }
  return { device: gpu.name, checks, throughput, ok: checks.every((c) => c.ok) };
}

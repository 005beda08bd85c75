// Products of two f16 operands on subgroup matrices (src/wgsl/matmul_subgroup.wgsl): the subgroup-matrix path of
// mixed precision (Gpu.f16Kernels), tensor cores where the adapter has them. matmul() sends f16 x f16 products here;
// this file holds the dispatch and the check a device's first such product runs, since the feature is experimental:
// where the kernel does not compile or gets a small exact product wrong, the device falls back to shader-f16 with a
// log line and matmul() takes its other kernels.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { f16MatrixConfig } from '../gpu/precision.js';
import { log } from '../log.js';
import { packF16 } from '../util/f16.js';
import { epilogueBindings, type EpilogueBindings } from './matmul-epilogue.js';
import { off, offAny, type TensorRef } from './types.js';

/** An f16 operand as stored: rows `ld` halves apart, batch items `stride` halves apart (0 broadcasts). */
export interface SubgroupOperand {
  ref: TensorRef;
  ld: number;
  stride: number;
}

export interface SubgroupProductSpec {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  a: SubgroupOperand;
  b: SubgroupOperand;
  c: TensorRef;
  ldC: number;
  strideC: number;
  alpha: number;
  beta: number;
  epilogue: EpilogueBindings;
  label: string;
}

/** The kernel's shape: result matrices of SM x SN (SK values of k a multiply), TM x TN of them a workgroup. */
export interface SubgroupTile {
  SM: number;
  SN: number;
  SK: number;
  TM: number;
  TN: number;
  KT: number;
  SG: number;
}

/**
 * 4 x 4 result matrices a workgroup and 32 values of k a staged tile, fewer matrices where the workgroup memory (the
 * two f16 tiles and the f32 results) would pass the adapter's limit. The subgroup size is the adapter's (fixed:
 * precisionPaths checks it).
 */
export function subgroupTile(gpu: Gpu): SubgroupTile {
  const config = f16MatrixConfig(gpu.adapter);
  if (!config) throw new Error(`${gpu.name}: no f16 subgroup-matrix configuration with f32 results`);
  const { M: SM, N: SN, K: SK } = config;
  const KT = Math.max(1, Math.floor(32 / SK));
  const limit = gpu.limits.maxComputeWorkgroupStorageSize ?? 16384;
  const bytes = (TM: number, TN: number) => 2 * (TM * SM + TN * SN) * KT * SK + 4 * TM * SM * TN * SN;
  const [TM, TN] = [
    [4, 4],
    [4, 2],
    [2, 2],
    [1, 1],
  ].find(([m, n]) => bytes(m, n) <= limit) ?? [1, 1];
  return { SM, SN, SK, TM, TN, KT, SG: gpu.adapter.subgroupMaxSize };
}

/** The product's one dispatch. */
export async function subgroupProduct(gpu: Gpu, s: SubgroupProductSpec): Promise<Dispatch> {
  const tile = subgroupTile(gpu);
  const kernel = await gpu.kernel('matmul_subgroup', { ...tile, TRANS_A: s.transA, TRANS_B: s.transB, C_VEC4: false });
  return gpu.dispatch(s.label, kernel, {
    bind: { A: s.a.ref.buffer, B: s.b.ref.buffer, C: s.c.buffer, ...s.epilogue.bind },
    params: {
      M: s.M,
      N: s.N,
      K: s.K,
      offA: offAny(s.a.ref),
      offB: offAny(s.b.ref),
      offC: off(s.c),
      ldA: s.a.ld,
      ldB: s.b.ld,
      strideA: s.a.stride,
      strideB: s.b.stride,
      ldC: s.ldC,
      strideC: s.strideC,
      alpha: s.alpha,
      beta: s.beta,
      ...s.epilogue.params,
    },
    groups: [Math.ceil(s.N / (tile.TN * tile.SN)), Math.ceil(s.M / (tile.TM * tile.SM)), s.batch],
  });
}

const checked = new WeakMap<Gpu, Promise<boolean>>();

/**
 * Whether `gpu` computes f16 x f16 products on subgroup matrices: its f16Kernels say so and, the first time it is
 * asked, a 37 x 29 x 45 product (Bᵀ, values exact in f16 and every sum exact in f32, so the answer is exact) compiles
 * and comes out right. Otherwise the device falls back to shader-f16, logged.
 */
export function subgroupMatmulUsable(gpu: Gpu): Promise<boolean> {
  if (gpu.f16Kernels !== 'subgroup-matrix') return Promise.resolve(false);
  let ok = checked.get(gpu);
  if (!ok) {
    ok = probe(gpu).then(
      (error) => {
        if (!error) return true;
        log.warn(`subgroup-matrix matmul failed its check on ${gpu.name} (${error}); f16 products use shader-f16`);
        gpu.f16Kernels = 'shader-f16';
        return false;
      },
      (e: Error) => {
        log.warn(`subgroup-matrix matmul failed on ${gpu.name} (${e.message}); f16 products use shader-f16`);
        gpu.f16Kernels = 'shader-f16';
        return false;
      },
    );
    checked.set(gpu, ok);
  }
  return ok;
}

/** The check's product; undefined when right, else what was wrong. */
async function probe(gpu: Gpu): Promise<string | undefined> {
  const [M, N, K] = [37, 29, 45];
  // Multiples of 1/8 in [-2, 2]: exact in f16, and sums of 45 products exact in f32.
  const value = (i: number, salt: number) => ((((i * 7919 + salt) * 104729) >>> 7) % 33) / 8 - 2;
  const a = Float64Array.from({ length: M * K }, (_, i) => value(i, 1));
  const b = Float64Array.from({ length: N * K }, (_, i) => value(i, 2)); // stored N x K
  const A = gpu.upload('subgroup-matrix check A', packF16(a));
  const B = gpu.upload('subgroup-matrix check B', packF16(b));
  const C = gpu.buffer('subgroup-matrix check C', 4 * M * N);
  try {
    const d = await subgroupProduct(gpu, {
      M,
      N,
      K,
      batch: 1,
      transA: false,
      transB: true,
      a: { ref: { buffer: A, dtype: 'f16' }, ld: K, stride: M * K },
      b: { ref: { buffer: B, dtype: 'f16' }, ld: K, stride: N * K },
      c: { buffer: C },
      ldC: N,
      strideC: M * N,
      alpha: 1,
      beta: 0,
      epilogue: epilogueBindings(gpu, {}, false),
      label: 'subgroup-matrix check',
    });
    await gpu.run([d], 'subgroup-matrix check');
    gpu.release(d);
    const c = await gpu.readF32(C);
    let wrong = 0;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += a[i * K + k] * b[j * K + k];
        if (!(c[i * N + j] === sum)) wrong++;
      }
    return wrong ? `${wrong} of ${M * N} elements of a ${M}x${N}x${K} product wrong` : undefined;
  } finally {
    gpu.free(A, B, C);
  }
}

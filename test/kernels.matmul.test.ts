// Matmul against float64 on odd shapes (no multiple of any tile), all four transposes,
// batched with strides and offsets, beta accumulation, for every tile configuration shipped.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { defaultPlan, matmul, SMALL_HARDWARE_TILE, TILES, type MatmulTile } from '../src/kernels/matmul.js';
import { matmul as matmulRef } from '../src/reference/matmul.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

async function check(
  M: number,
  N: number,
  K: number,
  o: {
    transA?: boolean;
    transB?: boolean;
    batch?: number;
    beta?: number;
    alpha?: number;
    offA?: number;
    offB?: number;
    offC?: number;
    tile?: MatmulTile;
    splitK?: number;
  },
) {
  const batch = o.batch ?? 1;
  const offA = o.offA ?? 0;
  const offB = o.offB ?? 0;
  const offC = o.offC ?? 0;
  const a = rand.uniform(offA + batch * M * K);
  const b = rand.uniform(offB + batch * K * N);
  const c0 = rand.uniform(offC + batch * M * N);
  const A = gpu.upload('A', a);
  const B = gpu.upload('B', b);
  const C = gpu.upload('C', c0);
  const d = await matmul(gpu, {
    M,
    N,
    K,
    batch,
    transA: o.transA,
    transB: o.transB,
    alpha: o.alpha,
    beta: o.beta,
    a: { buffer: A, offset: offA },
    b: { buffer: B, offset: offB },
    c: { buffer: C, offset: offC },
    tile: o.tile,
    splitK: o.splitK,
  });
  await gpu.run(d);
  const got = await gpu.readF32(C, offC, batch * M * N);
  gpu.release(...d);
  gpu.free(A, B, C);
  const want = matmulRef(a.subarray(offA), b.subarray(offB), M, N, K, o.transA ?? false, o.transB ?? false, {
    batch,
    alpha: o.alpha,
    beta: o.beta,
    C: c0.subarray(offC, offC + batch * M * N),
  });
  expectClose(got, want, 1e-5, `matmul ${M}x${N}x${K} ${JSON.stringify(o)}`);
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [127, 129, 65],
  [256, 384, 200],
  [4, 8, 12],
  [65, 3, 131],
];
const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

// The shipped tiles, plus TM != TN both ways, so the GPU's tiles are checked here on the CPU adapter too.
const CHECKED_TILES: [string, MatmulTile][] = [
  ...Object.entries(TILES),
  ['hardware, few tiles', SMALL_HARDWARE_TILE],
  ['4x8 blocks', { BM: 32, BN: 64, BK: 4, TM: 4, TN: 8 }],
  ['8x4 blocks', { BM: 64, BN: 32, BK: 8, TM: 8, TN: 4 }],
];

test(
  'hardware products with few large tiles split K, or take the small tile when K is short; ' + 'llvmpipe never',
  async () => {
    expect(defaultPlan('hardware', 4096, 4096, 4096, 1)).toEqual({ tile: TILES.hardware, parts: 1 });
    // c_fc's dW: 64 tiles
    expect(defaultPlan('hardware', 512, 2048, 8192, 1)).toEqual({ tile: TILES.hardware, parts: 9 });
    expect(defaultPlan('hardware', 512, 512, 8192, 1)).toEqual({ tile: TILES.hardware, parts: 16 }); // at most 16 parts
    // the CE head's dh
    expect(defaultPlan('hardware', 8192, 512, 50257, 1)).toEqual({ tile: TILES.hardware, parts: 3 });
    // K too short to split
    expect(defaultPlan('hardware', 512, 2048, 600, 1)).toEqual({ tile: SMALL_HARDWARE_TILE, parts: 1 });
    // batched attention products fill the GPU
    expect(defaultPlan('hardware', 512, 512, 64, 64)).toEqual({ tile: TILES.hardware, parts: 1 });
    expect(defaultPlan('software', 512, 2048, 8192, 1)).toEqual({ tile: TILES.software, parts: 1 });
    await expect(
      matmul(gpu, {
        M: 2,
        N: 2,
        K: 2,
        a: { buffer: gpu.buffer('a', 16) },
        b: { buffer: gpu.buffer('b', 16) },
        c: { buffer: gpu.buffer('c', 16) },
        tile: { BM: 12, BN: 12, BK: 4, TM: 12, TN: 12 },
      }),
    ).rejects.toThrow(/TM and TN be 4 or 8/);
    await expect(
      matmul(gpu, {
        M: 2,
        N: 2,
        K: 2,
        a: { buffer: gpu.buffer('a', 16) },
        b: { buffer: gpu.buffer('b', 16) },
        c: { buffer: gpu.buffer('c', 16) },
        splitK: 3,
      }),
    ).rejects.toThrow(/splitK must be an integer from 1 to K = 2/);
  },
);

// Split-K (forced here; by default only on hardware GPUs): parts of K side by side, then summed.
describe.each([
  ['hardware', TILES.hardware],
  ['software', TILES.software],
] as const)('split K, %s tile', (_kind, tile) => {
  test.each([[2], [3], [7]])('%i parts: odd shapes, all transposes', async (parts) => {
    for (const [transA, transB] of TRANSPOSES) await check(37, 29, 301, { transA, transB, tile, splitK: parts });
  });
  test('batched, with alpha, beta and offsets; more parts than K has tiles', async () => {
    await check(33, 17, 140, { batch: 3, alpha: -0.5, beta: 0.75, offA: 4, offB: 8, offC: 12, tile, splitK: 4 });
    await check(21, 23, 17, { alpha: 2, beta: 1, offA: 3, offB: 5, offC: 7, transA: true, tile, splitK: 5 });
  });
});
describe.each(CHECKED_TILES)('%s tile', (_kind, tile) => {
  test.each(SHAPES)('%i x %i x %i, all transposes', async (M, N, K) => {
    for (const [transA, transB] of TRANSPOSES) await check(M, N, K, { transA, transB, tile });
  });
  test('batched 3 x 33 x 17 x 45, all transposes', async () => {
    for (const [transA, transB] of TRANSPOSES) await check(33, 17, 45, { batch: 3, transA, transB, tile });
  });
  test('beta accumulation, alpha scaling and element offsets (vec4 and scalar paths)', async () => {
    await check(20, 24, 16, { alpha: 0.5, beta: 1, offA: 4, offB: 8, offC: 12, tile });
    await check(21, 23, 17, { alpha: -2, beta: 0.25, offA: 3, offB: 5, offC: 7, transA: true, tile });
    await check(8, 12, 16, { batch: 2, beta: -1, offA: 1, transB: true, tile });
  });
});

test(
  'K long enough to need several dispatches on llvmpipe (its loop limiter stops invocations ' + 'at 65,535 iterations)',
  async () => {
    for (const [transA, transB] of TRANSPOSES) await check(3, 5, 40_003, { transA, transB, beta: 0.5 });
    await check(4, 8, 50_000, { batch: 2 });
  },
);

test('beta = 0 never reads C, so NaN there does not leak', async () => {
  const M = 9;
  const N = 7;
  const K = 5;
  const a = rand.uniform(M * K);
  const b = rand.uniform(K * N);
  const A = gpu.upload('A', a);
  const B = gpu.upload('B', b);
  const C = gpu.upload('C', new Float32Array(M * N).fill(NaN));
  const d = await matmul(gpu, { M, N, K, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
  await gpu.run(d);
  expectClose(await gpu.readF32(C, 0, M * N), matmulRef(a, b, M, N, K, false, false), 1e-5, 'beta=0 over NaN');
  gpu.release(...d);
  gpu.free(A, B, C);
});

test('bad specs are refused with the reason', async () => {
  const X = gpu.buffer('X', 64);
  await expect(
    matmul(gpu, { M: 0, N: 1, K: 1, a: { buffer: X }, b: { buffer: X }, c: { buffer: gpu.buffer('Y', 16) } }),
  ).rejects.toThrow(/M must be a positive integer/);
  await expect(matmul(gpu, { M: 1, N: 1, K: 1, a: { buffer: X }, b: { buffer: X }, c: { buffer: X } })).rejects.toThrow(
    /must not share a buffer/,
  );
});

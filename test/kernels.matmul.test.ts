// Matmul against float64 on odd shapes (no multiple of any tile), all four transposes,
// batched with strides and offsets, beta accumulation and the epilogue (bias, residual, GELU),
// for every tile configuration shipped and for the software adapter's register kernel, its
// operands read from textures and from storage.
import { asAdapterKind, openTestGpu } from './helpers/gpu.js';
import { checkMatmul, TRANSPOSES, type MatmulCase } from './helpers/matmul.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import {
  defaultPlan,
  matmul,
  REGISTER_K_SPAN,
  registerBlock,
  registerPlan,
  SMALL_HARDWARE_TILE,
  TILES,
  type MatmulSpec,
  type MatmulTile,
} from '../src/kernels/matmul.js';
import { matmul as matmulRef } from '../src/reference/matmul.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

const check = (M: number, N: number, K: number, o: MatmulCase) => checkMatmul(gpu, rand, M, N, K, o);

/** Run `f` as on a software adapter (the register kernel's default), whatever the test device is. */
const asSoftware = (f: () => Promise<void>) => asAdapterKind(gpu, 'software', f);

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [127, 129, 65],
  [256, 384, 200],
  [4, 8, 12],
  [65, 3, 131],
];

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
  test('padded rows (ldA, ldB): the NaN padding never counts, vec4 and scalar paths, batched', async () => {
    for (const [transA, transB] of TRANSPOSES) {
      await check(37, 45, 50, { transA, transB, ldA: transA ? 40 : 52, ldB: transB ? 64 : 48, tile });
      await check(16, 20, 12, { transA, transB, ldA: transA ? 19 : 13, ldB: transB ? 16 : 24, batch: 2, tile });
    }
  });
  test('rows of C padded (ldC), with the epilogue, batched and split along K', async () => {
    for (const [transA, transB] of TRANSPOSES)
      await check(37, 29, 45, { transA, transB, ldC: 35, beta: 0.5, bias: true, residual: true, gelu: true, tile });
    await check(21, 23, 17, { batch: 2, ldC: 64, offC: 3, alpha: 2, tile });
    await check(37, 29, 301, { transB: true, ldC: 33, splitK: 3, beta: 1, bias: true, residual: true, tile });
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
  const C = gpu.buffer('C', 64);
  await expect(
    matmul(gpu, { M: 2, N: 2, K: 5, ldA: 4, a: { buffer: X }, b: { buffer: X }, c: { buffer: C } }),
  ).rejects.toThrow(/a stored row of 5 elements cannot be 4 apart/);
  await expect(
    matmul(gpu, { M: 2, N: 3, K: 2, ldC: 2, a: { buffer: X }, b: { buffer: X }, c: { buffer: C } }),
  ).rejects.toThrow(/rows of C of 3 elements cannot be 2 apart/);
});

// The software adapter's default: the register kernel, each operand from a texture when its rows can be copied
// into one (a multiple of 64 elements, or a single row), else from storage; the tiled kernel when a vec4
// dimension is not a multiple of 4.
describe('register kernel (the software default)', () => {
  const both = { block: registerBlock(67, 192), texA: true, texB: true };
  test('operands from textures: odd M, all transposes', () =>
    asSoftware(async () => {
      await check(67, 192, 128, { plan: both });
      await check(67, 192, 128, { transB: true, plan: both });
      await check(64, 192, 128, { transA: true, plan: { ...both, block: registerBlock(64, 192) } });
      await check(64, 192, 128, { transA: true, transB: true, plan: { ...both, block: registerBlock(64, 192) } });
    }));
  test('operands from storage: vec4 rows that a texture copy cannot take, all transposes, K % 4 != 0 in TN', () =>
    asSoftware(async () => {
      const plan = (M: number, N: number) => ({
        block: registerBlock(M, N),
        texA: false,
        texB: false,
      });
      await check(37, 44, 20, { plan: plan(37, 44) });
      await check(36, 44, 45, { transA: true, plan: plan(36, 44) });
      await check(37, 44, 20, { transB: true, plan: plan(37, 44) });
      await check(36, 44, 20, { transA: true, transB: true, plan: plan(36, 44) });
      await check(1, 20, 12, { plan: { ...plan(1, 20), texA: true } }); // a one-row texture needs no row alignment
    }));
  test('mixed sources, small blocks (one row, 4 and 8 columns), offsets, alpha and beta', () =>
    asSoftware(async () => {
      expect(registerBlock(1, 4)).toEqual({ RM: 4, RN: 4, WX: 8, WY: 1 });
      expect(registerBlock(7, 8)).toEqual({ RM: 8, RN: 4, WX: 8, WY: 1 });
      expect(registerBlock(256, 64)).toEqual({ RM: 16, RN: 16, WX: 4, WY: 4 }); // d = 64: 16-wide, 4 lanes across
      expect(registerBlock(256, 57)).toEqual({ RM: 16, RN: 8, WX: 8, WY: 4 }); // 8 blocks fill the 8 lanes
      expect(registerBlock(256, 192)).toEqual({ RM: 16, RN: 8, WX: 8, WY: 4 }); // c_attn: 24 blocks, 3 SIMD groups
      expect(registerBlock(64, 64)).toEqual({ RM: 16, RN: 8, WX: 8, WY: 2 }); // a dW: two workgroups, not one
      expect(registerBlock(512, 512)).toEqual({ RM: 16, RN: 16, WX: 8, WY: 4 });
      const mixed = { block: registerBlock(36, 128), texA: false, texB: true };
      await check(36, 128, 45, { transA: true, alpha: -0.5, beta: 0.75, offA: 4, offB: 8, offC: 3, plan: mixed });
      await check(1, 4, 64, { beta: 1, offC: 2 });
      await check(7, 8, 12, { transB: true, alpha: 2 });
    }));
  // Textures are read as read-only storage textures; an adapter without them reads every operand from storage.
  test('operands from textures only where the adapter has read-only storage textures', () => {
    expect(gpu.storageTextureReads).toBe(true); // llvmpipe and lavapipe have them: the texture tests above use them
    const A = gpu.buffer('A', 64 * 64 * 4);
    const spec = { M: 64, N: 64, K: 64, a: { buffer: A }, b: { buffer: A } };
    expect(registerPlan(gpu, spec)).toMatchObject({ texA: true, texB: true });
    const without = Object.create(gpu, { storageTextureReads: { value: false } }) as Gpu;
    expect(registerPlan(without, spec)).toMatchObject({ texA: false, texB: false });
    gpu.free(A);
  });
  // d = 64 (the tiny preset; the CE head's dh and dwte): 16-wide blocks in workgroups 4 invocations across.
  test('58 to 64 columns: 16 x 16 blocks 4 lanes across, odd M, a partial last block, all transposes', () =>
    asSoftware(async () => {
      const block = { RM: 16, RN: 16, WX: 4, WY: 4 };
      for (const [transA, transB] of TRANSPOSES) {
        const M = transA ? 84 : 83; // A's rows must be vec4s
        await check(M, 60, 44, { transA, transB, beta: 0.5, plan: { block, texA: false, texB: false } });
      }
      await check(83, 64, 128, { bias: true, gelu: true, residual: true, plan: { block, texA: true, texB: true } });
      await check(83, 64, 128, { transB: true, batch: 2, ldC: 68, plan: { block, texA: true, texB: true } });
    }));
  test('batched: packed, strided with gaps, and broadcast (stride 0) operands', () =>
    asSoftware(async () => {
      await check(33, 64, 64, { batch: 3 });
      await check(33, 64, 64, { batch: 3, strideA: 40 * 64, strideB: 0, transB: true });
      await check(32, 20, 12, { batch: 2, strideA: 0, strideB: 14 * 20, transA: true });
    }));
  // The CE head's logits, padded to a multiple of 64: dh (NN, K = V) and dwte (TN, M = V) read them as vec4s.
  test('padded rows (ldA, ldB): odd lengths read as vec4s, the NaN padding never counts, all transposes', () =>
    asSoftware(async () => {
      for (const [transA, transB] of TRANSPOSES) {
        const [ldA, ldB] = [transA ? 64 : 52, transB ? 52 : 64];
        const plan = { block: registerBlock(37, 45), texA: ldA === 64, texB: ldB === 64 };
        await check(37, 45, 50, { transA, transB, ldA, ldB, plan });
        await check(37, 45, 50, { transA, transB, ldA: ldA + 4, ldB: ldB + 4, batch: 2, beta: 0.5, bias: true });
      }
      // K past one span, with a masked last k-step in a row-major A and a K-major B.
      await check(3, 9, REGISTER_K_SPAN + 6, { ldA: REGISTER_K_SPAN + 64, ldB: 12 });
      await check(3, 9, REGISTER_K_SPAN + 6, { transB: true, ldA: REGISTER_K_SPAN + 8, ldB: REGISTER_K_SPAN + 64 });
    }));
  // The CE head's logits: h·wteᵀ into rows padded to a multiple of 64.
  test('rows of C padded (ldC): vec4 and scalar stores, the epilogue, batched, all transposes', () =>
    asSoftware(async () => {
      for (const [transA, transB] of TRANSPOSES) {
        await check(37, 44, 20, { transA, transB, ldC: 64, beta: 0.5, bias: true, residual: true, gelu: true });
        await check(37, 45, 20, { transA, transB, ldC: 51, alpha: -1, residual: true });
      }
      await check(9, 20, 12, { batch: 3, ldC: 24, offC: 4, beta: 1, gelu: true, file: 'matmul_registers' });
    }));
  test('K past one span: spans accumulate, texture rows and columns follow the span', () =>
    asSoftware(async () => {
      // K-major A (a span of rows), with a masked last k-step; row-major A from a texture (a span of columns).
      await check(4, 64, REGISTER_K_SPAN + 66, { transA: true, beta: 0.5 });
      await check(5, 64, REGISTER_K_SPAN + 64, { bias: true, gelu: true });
    }));
  test('epilogue: bias, residual and GELU, with alpha and beta, from textures and from storage', () =>
    asSoftware(async () => {
      await check(67, 192, 128, { bias: true, residual: true, gelu: true, alpha: 0.5, beta: 0.25, offC: 1 });
      // C a vec4 at a time (finish4): N and C's offset multiples of 4.
      await check(67, 192, 128, { bias: true, residual: true, gelu: true, alpha: 0.5, beta: 0.25, offC: 4 });
      await check(9, 20, 12, { bias: true, gelu: true, beta: 1, offC: 8, batch: 2, transB: true });
      await check(37, 44, 20, { transB: true, bias: true, gelu: true });
      await check(36, 44, 45, { transA: true, residual: true, batch: 2 });
    }));
});

describe('epilogue in the tiled kernel', () => {
  test.each(CHECKED_TILES)('%s tile: bias, residual and GELU, every transpose', async (_kind, tile) => {
    for (const [transA, transB] of TRANSPOSES)
      await check(37, 29, 45, { transA, transB, tile, bias: true, residual: true, gelu: true, alpha: 2, beta: 0.5 });
  });
  test('split K: the sum applies it', async () => {
    await check(37, 29, 301, { tile: TILES.hardware, splitK: 3, bias: true, residual: true, gelu: true, beta: 1 });
    await check(33, 17, 140, { batch: 2, tile: TILES.software, splitK: 2, bias: true, transA: true, offC: 12 });
  });
  test('K spans on llvmpipe: only the last applies it', async () => {
    await check(3, 5, 20_003, { tile: TILES.software, bias: true, residual: true, gelu: true, beta: 0.5 });
  });
});

test('the kernel can be named: registers refuses operands it cannot read, tiled runs on any adapter', async () => {
  const X = gpu.buffer('X', 4 * 64);
  const Y = gpu.buffer('Y', 4 * 64);
  const spec = { M: 3, N: 5, K: 7, a: { buffer: X }, b: { buffer: X }, c: { buffer: Y } };
  await expect(matmul(gpu, { ...spec, kernel: 'registers' })).rejects.toThrow(/register kernel reads rows of vec4s/);
  const vec4 = { ...spec, M: 4, N: 8, K: 4 };
  const file = async (s: MatmulSpec) => {
    const d = await matmul(gpu, s);
    gpu.release(...d);
    return d[0].kernel.iface.file;
  };
  await asSoftware(async () => {
    expect(await file(vec4)).toBe('src/wgsl/matmul_registers.wgsl');
    expect(await file({ ...vec4, kernel: 'tiled' })).toBe('src/wgsl/matmul.wgsl');
    expect(await file(spec)).toBe('src/wgsl/matmul.wgsl'); // rows of 7 and 5: not vec4s
  });
  expect(await file({ ...vec4, kernel: 'registers' })).toBe('src/wgsl/matmul_registers.wgsl');
  gpu.free(X, Y);
  await check(36, 44, 20, { transA: true, kernel: 'registers' });
});

test('the epilogue refuses outputs that alias what the product reads', async () => {
  const X = gpu.buffer('X', 64);
  const Y = gpu.buffer('Y', 64);
  const base = { M: 2, N: 2, K: 2, a: { buffer: X }, b: { buffer: X }, c: { buffer: Y } };
  await expect(matmul(gpu, { ...base, residual: { buffer: Y } })).rejects.toThrow(/C must not share a buffer/);
  await expect(matmul(gpu, { ...base, gelu: { buffer: X } })).rejects.toThrow(/GELU output must not share/);
  gpu.free(X, Y);
});

// Matmul with packed-f16 operands (dtype 'f16': the mixed-precision copies) against float64 on the f16-rounded
// inputs: A only, B only and both f16, every transpose, odd shapes no multiple of any tile, odd offsets (in halves),
// batches with strided gaps and broadcast, split K, the shipped and explicit tiles, the register kernel (vec2<u32>
// loads at offsets that are multiples of 4, halves read alone otherwise, next to f32 operands from textures) and
// the epilogue. Every half around an operand (its neighbours, batch gaps) is NaN, so a read outside it shows.
//
// Both f16 kernel paths (Gpu.f16Kernels): packed-f16 on the default test adapter, shader-f16 on lavapipe.
//
// Tolerance: the reference multiplies the very values the kernel reads (the f16 inputs are exact in f32 and f64),
// so the only difference is the kernel's f32 products and sums, as in the f32 tests: the same 1e-5 relative error.
import { asAdapterKind, F16_PATHS, openF16TestGpu, openTestGpu } from './helpers/gpu.js';
import { checkMatmul, TRANSPOSES, type MatmulCase } from './helpers/matmul.js';
import { makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { matmul, REGISTER_K_SPAN, registerBlock, TILES, type MatmulSpec } from '../src/kernels/matmul.js';

let gpu: Gpu;
const rand = makeRandom();
const TOL = 1e-5;

/** Which operands are f16: A only, B only, both. */
const WHICH = [
  [true, false],
  [false, true],
  [true, true],
] as const;

const check = (M: number, N: number, K: number, o: MatmulCase) => checkMatmul(gpu, rand, M, N, K, o, TOL);

const asSoftware = <T>(f: () => Promise<T>) => asAdapterKind(gpu, 'software', f);

describe.each(F16_PATHS)('%s kernels', (kernels, device) => {
  // The shader-f16 path differs only in its loads, which the tests run on both paths cover through both kernels;
  // lavapipe takes minutes to compile every tile and split variant without a shader cache, so those run packed only.
  const packed = kernels === 'packed-f16';
  const packedOnly = packed ? test : () => undefined;
  // Likewise the mixes: with both operands f16 the shader-f16 path reads each through its own load, the same code
  // it would run with the other operand f32; the packed path takes every mix.
  const which = packed ? WHICH : ([[true, true]] as const);
  beforeAll(async () => {
    gpu = await openF16TestGpu(kernels, device);
  });
  afterAll(() => gpu?.destroy());

  test('the kernels read f16 the way asked', async () => {
    const d = await matmul(gpu, {
      M: 4,
      N: 4,
      K: 4,
      a: { buffer: gpu.buffer('a', 64), dtype: 'f16' },
      b: { buffer: gpu.buffer('b', 64) },
      c: { buffer: gpu.buffer('c', 64) },
    });
    expect(Boolean(d[0].kernel.iface.constants.get('NATIVE_F16'))).toBe(kernels === 'shader-f16');
    gpu.release(...d);
  });

  describe('tiled kernel', () => {
    test.each(which)('f16 A %s, f16 B %s: every transpose, odd shapes, odd and vec4 offsets', async (f16A, f16B) => {
      const common = { f16A, f16B, kernel: 'tiled' as const, file: 'matmul' as const };
      for (const [transA, transB] of TRANSPOSES) {
        await check(37, 29, 45, { ...common, transA, transB, offA: 3, offB: 5, offC: 1 }); // halves read alone
        await check(36, 44, 20, { ...common, transA, transB, offA: 4, offB: 8 }); // vec2<u32> loads
        await check(3, 5, 7, { ...common, transA, transB, offA: 2, offB: 6, alpha: -0.5, beta: 0.75 });
      }
    });
    test('batched: packed, strided with gaps, broadcast (stride 0)', async () => {
      for (const [transA, transB] of TRANSPOSES) {
        await check(33, 17, 45, { f16A: true, f16B: true, batch: 3, transA, transB, kernel: 'tiled', offA: 1 });
        await check(12, 20, 16, {
          f16A: true,
          batch: 2,
          strideA: 13 * 16,
          strideB: 0,
          transA,
          transB,
          kernel: 'tiled',
        });
      }
      await check(21, 23, 17, { f16B: true, batch: 2, strideA: 0, strideB: 17 * 23 + 3, offB: 5, kernel: 'tiled' });
    });
    if (packed)
      test.each([
        ['software', TILES.software],
        ['hardware', TILES.hardware],
        ['4x8 blocks', { BM: 32, BN: 64, BK: 4, TM: 4, TN: 8 }],
        ['8x4 blocks', { BM: 64, BN: 32, BK: 8, TM: 8, TN: 4 }],
      ])('explicit %s tile', async (_name, tile) => {
        for (const [f16A, f16B] of WHICH) {
          await check(37, 29, 45, { f16A, f16B, tile, transA: f16A, offA: 3, offB: 4 });
          await check(40, 24, 36, { f16A, f16B, tile, transB: f16B, offA: 4, offB: 8 });
        }
      });
    packedOnly(
      'split K: parts summed by the second dispatch, every transpose, batched, with the epilogue',
      async () => {
        for (const [transA, transB] of TRANSPOSES)
          await check(37, 29, 301, { f16A: true, f16B: true, transA, transB, splitK: 3, offA: 1, offB: 2 });
        await check(33, 17, 140, { f16A: true, batch: 2, splitK: 4, tile: TILES.hardware, offA: 4, offC: 12, beta: 1 });
        await check(21, 23, 77, { f16B: true, transB: true, splitK: 2, bias: true, residual: true, gelu: true });
      },
    );
    packedOnly('K spans on llvmpipe (several dispatches that accumulate)', async () => {
      await check(3, 5, 20_003, { f16A: true, f16B: true, transA: true, kernel: 'tiled', offA: 1, beta: 0.5 });
    });
  });

  describe('register kernel', () => {
    const storage = (M: number, N: number, texA = false, texB = false) => ({ block: registerBlock(M, N), texA, texB });
    test.each(which)('f16 A %s, f16 B %s: every transpose, vec2<u32> and half loads', async (f16A, f16B) => {
      const common = { f16A, f16B, kernel: 'registers' as const, file: 'matmul_registers' as const };
      for (const [transA, transB] of TRANSPOSES) {
        // Rows of 64: the f32 operand (if any) comes from a texture, the f16 one never.
        await check(64, 64, 64, { ...common, transA, transB, plan: storage(64, 64, !f16A, !f16B) });
        await check(36, 44, 20, { ...common, transA, transB, offA: f16A ? 3 : 0, offB: f16B ? 6 : 0, offC: 1 });
        await check(36, 44, 21, { ...common, transA: true, transB: false, offA: f16A ? 1 : 4, offB: f16B ? 2 : 0 });
      }
    });
    packedOnly('the software default: f16 rows of vec4s take the register kernel, others the tiled one', () =>
      asSoftware(async () => {
        await check(67, 128, 64, {
          f16A: true,
          offA: 5,
          file: 'matmul_registers',
          plan: storage(67, 128, false, true),
        });
        await check(7, 12, 8, { f16B: true, transB: true, offB: 2, file: 'matmul_registers', alpha: 2 });
        await check(9, 7, 5, { f16A: true, f16B: true, file: 'matmul' }); // rows of 5 and 7: not vec4s
      }),
    );
    test('batched: packed, strided with gaps, broadcast; K past one span', async () => {
      await check(33, 64, 64, { f16A: true, f16B: true, batch: 3, offA: 2, kernel: 'registers' });
      await check(33, 64, 64, {
        f16A: true,
        batch: 3,
        strideA: 40 * 64,
        strideB: 0,
        transB: true,
        kernel: 'registers',
      });
      await check(32, 20, 12, { f16B: true, batch: 2, strideA: 0, strideB: 14 * 20, offB: 1, kernel: 'registers' });
      await check(4, 64, REGISTER_K_SPAN + 66, { f16A: true, transA: true, offA: 3, beta: 0.5, kernel: 'registers' });
    });
    test('epilogue: bias, residual and GELU', async () => {
      await check(36, 44, 45, {
        f16A: true,
        f16B: true,
        transA: true,
        bias: true,
        residual: true,
        gelu: true,
        offA: 1,
      });
      await check(37, 64, 20, { f16B: true, batch: 2, residual: true, gelu: true, kernel: 'registers', beta: 0.25 });
    });
  });
});

describe('refusals', () => {
  beforeAll(async () => {
    gpu = await openTestGpu();
  });
  afterAll(() => gpu?.destroy());
  test('refuses f16 where it is not read, and naming the register kernel for rows it cannot read', async () => {
    const X = gpu.buffer('X', 4 * 64);
    const Y = gpu.buffer('Y', 4 * 64);
    const Z = gpu.buffer('Z', 4 * 64);
    const spec: MatmulSpec = {
      M: 4,
      N: 4,
      K: 4,
      a: { buffer: X, dtype: 'f16' },
      b: { buffer: X, dtype: 'f16' },
      c: { buffer: Y },
      label: 'the f16 product',
    };
    await expect(matmul(gpu, { ...spec, c: { buffer: Y, dtype: 'f16' } })).rejects.toThrow(
      /the f16 product: only A and B may be f16; C must be f32/,
    );
    await expect(
      matmul(gpu, { ...spec, bias: { buffer: Z, dtype: 'f16' }, gelu: { buffer: Z, offset: 16, dtype: 'f16' } }),
    ).rejects.toThrow(/the f16 product: only A and B may be f16; the bias, the GELU output must be f32/);
    await expect(matmul(gpu, { ...spec, K: 7, transB: true, kernel: 'registers' })).rejects.toThrow(
      /the f16 product: the register kernel reads rows of vec4s/,
    );
    gpu.free(X, Y, Z);
  });
});

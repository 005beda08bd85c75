// The subgroup-matrix path of mixed precision (Gpu.f16Kernels 'subgroup-matrix', src/wgsl/matmul_subgroup.wgsl), on
// Mesa 26's lavapipe: its VK_KHR_cooperative_matrix gives Dawn's experimental subgroup matrices (8x8x8, f16 with f32
// results). scripts/test.mjs runs this file (any file named *subgroup-matrix*) in a phase of its own, in band,
// through the private prefix of scripts/install-lavapipe-coopmat.sh with HLM_EXPERIMENTAL=subgroup-matrix: that
// lavapipe needs a newer glibc than Debian 12's. Checked against float64 of the f16 inputs:
//   - products of two f16 operands: every transpose, odd shapes (no multiple of the 8x8 matrices or the 32x32 tile),
//     odd offsets, padded rows, batches (strided with gaps, broadcast), alpha and beta, the epilogue;
//   - a product with one f32 operand keeps the shader-f16 kernels; naming the kernel for it is refused;
//   - a device whose check fails (a configuration the device lacks) falls back to shader-f16, logged, and still
//     multiplies right;
//   - the whole training step at --precision f16 for CE and CWT, decoder and encoder (the single-step contract).
// Tolerance 1e-5 relative as in the other matmul tests: the reference multiplies the very values the kernel reads.
import { rmSync } from 'node:fs';
import { checkF16Step, F16_STEP_CASES } from './helpers/f16-step.js';
import { checkMatmul, TRANSPOSES, type MatmulCase } from './helpers/matmul.js';
import { makeRandom } from './helpers/check.js';
import { tinyTrainingDir } from './helpers/tiny-run.js';
import { Gpu } from '../src/gpu/device.js';
import { matmul } from '../src/kernels/matmul.js';
import { subgroupMatmulUsable } from '../src/kernels/matmul-subgroup.js';

const DEVICE = process.env.HLM_TEST_SUBGROUP_MATRIX_DEVICE ?? 'vulkan mesa';
const rand = makeRandom();
let gpu: Gpu;

beforeAll(async () => {
  gpu = await Gpu.open(DEVICE);
  if (gpu.f16Kernels !== 'subgroup-matrix')
    throw new Error(
      `${gpu.name}: f16 kernels ${gpu.f16Kernels}, not subgroup-matrix: this test needs Mesa 26's lavapipe ` +
        '(scripts/install-lavapipe-coopmat.sh) and HLM_EXPERIMENTAL=subgroup-matrix, as scripts/test.mjs sets them',
    );
});
afterAll(() => gpu?.destroy());

const check = (M: number, N: number, K: number, o: MatmulCase) =>
  checkMatmul(gpu, rand, M, N, K, { f16A: true, f16B: true, file: 'matmul_subgroup', ...o });

test("the device's check passes and keeps the subgroup-matrix kernels", async () => {
  expect(await subgroupMatmulUsable(gpu)).toBe(true);
  expect(gpu.f16Kernels).toBe('subgroup-matrix');
});

test('every transpose: odd shapes, odd offsets, alpha and beta', async () => {
  for (const [transA, transB] of TRANSPOSES) {
    await check(37, 29, 45, { transA, transB, offA: 3, offB: 5, offC: 1 });
    await check(70, 33, 81, { transA, transB, offA: 4, offB: 1, alpha: -0.5, beta: 0.75 });
    await check(3, 5, 7, { transA, transB });
  }
});

test('padded rows, batches strided with gaps and broadcast', async () => {
  for (const [transA, transB] of TRANSPOSES) {
    await check(33, 17, 45, { batch: 3, transA, transB, offA: 1 });
    await check(21, 23, 17, { transA, transB, ldA: (transA ? 21 : 17) + 5, ldB: (transB ? 17 : 23) + 3 });
  }
  await check(12, 20, 16, { batch: 2, strideA: 13 * 16, strideB: 0, offB: 2 });
  await check(21, 23, 17, { batch: 2, strideA: 0, strideB: 17 * 23 + 3, offB: 5, transB: true });
});

test('epilogue: bias, residual and GELU', async () => {
  await check(36, 44, 45, { transA: true, bias: true, residual: true, gelu: true, offA: 1 });
  await check(37, 64, 20, { batch: 2, residual: true, gelu: true, beta: 0.25 });
  // Rows of C padded (ldC).
  await check(37, 29, 45, { transB: true, ldC: 35, batch: 2, residual: true, gelu: true, beta: 0.5 });
});

test('one f32 operand: the shader-f16 kernels; the subgroup-matrix kernel named for it is refused', async () => {
  await checkMatmul(gpu, rand, 37, 29, 45, { f16A: true, offA: 3 });
  await checkMatmul(gpu, rand, 36, 44, 20, { f16B: true, transB: true, file: 'matmul_registers' });
  const X = gpu.buffer('X', 4 * 64);
  const Y = gpu.buffer('Y', 4 * 64);
  await expect(
    matmul(gpu, {
      M: 4,
      N: 4,
      K: 4,
      a: { buffer: X, dtype: 'f16' },
      b: { buffer: X },
      c: { buffer: Y },
      kernel: 'subgroup-matrix',
      label: 'the mixed product',
    }),
  ).rejects.toThrow(/the mixed product: the subgroup-matrix kernel takes two f16 operands/);
  gpu.free(X, Y);
});

test('a device whose check fails falls back to shader-f16 and still multiplies right', async () => {
  const other = await Gpu.open(DEVICE);
  // A configuration the device lacks: the kernel's matrix types are then refused when it compiles.
  const adapter = other.adapter as { subgroupMatrixConfigs: unknown[] };
  adapter.subgroupMatrixConfigs = [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }];
  try {
    expect(await subgroupMatmulUsable(other)).toBe(false);
    expect(other.f16Kernels).toBe('shader-f16');
    await checkMatmul(other, rand, 37, 29, 45, { f16A: true, f16B: true, offA: 3, file: 'matmul' });
  } finally {
    other.destroy();
  }
});

describe('the whole training step', () => {
  let where: { dir: string; corpus: string };
  // The shaders the steps dispatch: the products of two f16 operands must be on subgroup matrices.
  const files = new Set<string>();
  beforeAll(async () => {
    where = await tinyTrainingDir('subgroup-matrix');
    const dispatch = gpu.dispatch.bind(gpu);
    gpu.dispatch = (label, kernel, spec) => {
      files.add(kernel.iface.file);
      return dispatch(label, kernel, spec);
    };
  });
  afterAll(() => rmSync(where.dir, { recursive: true, force: true }));
  const title = '%s %s: one SGD step at --precision f16 --loss-scale 1024 against float64';
  test.each(F16_STEP_CASES)(title, async (arch, objective) => {
    files.clear();
    await checkF16Step(gpu, where, 'subgroup-matrix', arch, objective);
    expect(files).toContain('src/wgsl/matmul_subgroup.wgsl');
  });
});

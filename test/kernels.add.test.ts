// Broadcast add against float64, on odd sizes with fresh random inputs.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { add } from '../src/kernels/add.js';
import { addBroadcast } from '../src/reference/add.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

describe('broadcast add', () => {
  const cases: [string, number, number, (r: number, c: number) => [number, number, number]][] = [
    ['elementwise', 37, 29, (_r, c) => [c, 1, 37 * 29]],
    ['row vector (bias)', 131, 7, () => [0, 1, 7]],
    ['column vector', 5, 301, () => [1, 0, 5]],
    ['scalar', 3, 3, () => [0, 0, 1]],
  ];
  test.each(cases)('%s', async (_name, rows, cols, strides) => {
    const [sbr, sbc, nb] = strides(rows, cols);
    const alpha = rand.uniform(1, -2, 2)[0];
    const a = rand.uniform(rows * cols + 3);
    const b = rand.uniform(nb + 5);
    const A = gpu.upload('a', a);
    const B = gpu.upload('b', b);
    const O = gpu.buffer('out', (rows * cols + 1) * 4);
    const d = await add(gpu, {
      rows,
      cols,
      out: { buffer: O, offset: 1 },
      a: { buffer: A, offset: 3 },
      b: { buffer: B, offset: 5 },
      bStrides: [sbr, sbc],
      alpha,
    });
    await gpu.run([d]);
    const bScaled = Float64Array.from(b.subarray(5), (v) => alpha * v);
    expectClose(
      await gpu.readF32(O, 1, rows * cols),
      addBroadcast(a.subarray(3), bScaled, rows, cols, sbr, sbc),
      1e-6,
      'add',
    );
    gpu.release(d);
    gpu.free(A, B, O);
  });

  test('in place (residual), with the grid folded into y past the x limit', async () => {
    const rows = 701;
    const cols = 257; // 704 workgroups, folded as 7 x 101 (the last row partly idle)
    const x = rand.uniform(rows * cols);
    const y = rand.uniform(cols);
    const X = gpu.upload('x', x);
    const Y = gpu.upload('y', y);
    const d = await add(gpu, { rows, cols, out: { buffer: X }, b: { buffer: Y }, bStrides: [0, 1], maxGroupsX: 7 });
    expect(d.workgroups[1]).toBeGreaterThan(1);
    await gpu.run([d]);
    expectClose(await gpu.readF32(X, 0, rows * cols), addBroadcast(x, y, rows, cols, 0, 1), 1e-6, 'in-place add');
    gpu.release(d);
    gpu.free(X, Y);
  });
});

// Row reductions against float64, on odd sizes with fresh random inputs.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { reduceRows } from '../src/kernels/reduce.js';
import { rowMax, rowSum } from '../src/reference/reduce.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

describe('row reductions', () => {
  test.each([
    [1, 1],
    [3, 1000],
    [257, 33],
    [17, 4099],
  ])('sum and max, %i rows x %i cols (grid folded into y)', async (rows, cols) => {
    const x = rand.normal(rows * cols + 2, 3);
    const X = gpu.upload('x', x);
    const S = gpu.buffer('sum', rows * 4);
    const M = gpu.buffer('max', rows * 4);
    const ds = await reduceRows(gpu, {
      op: 'sum',
      rows,
      cols,
      x: { buffer: X, offset: 2 },
      out: { buffer: S },
      maxGroupsX: 5,
    });
    const dm = await reduceRows(gpu, { op: 'max', rows, cols, x: { buffer: X, offset: 2 }, out: { buffer: M } });
    await gpu.run([ds, dm]);
    expectClose(await gpu.readF32(S, 0, rows), rowSum(x.subarray(2), rows, cols), 1e-6, 'row sum');
    expectClose(await gpu.readF32(M, 0, rows), rowMax(x.subarray(2), rows, cols), 0, 'row max'); // exact
    gpu.release(ds, dm);
    gpu.free(X, S, M);
  });

  test('max of -inf rows is -inf, NaN propagates, and sums repeat bit for bit', async () => {
    const cols = 300;
    const x = rand.uniform(3 * cols);
    x.fill(-Infinity, 0, cols);
    x[cols + 123] = NaN;
    const X = gpu.upload('x', x);
    const M = gpu.buffer('max', 12);
    const S1 = gpu.buffer('s1', 12);
    const S2 = gpu.buffer('s2', 12);
    const ds = [
      await reduceRows(gpu, { op: 'max', rows: 3, cols, x: { buffer: X }, out: { buffer: M } }),
      await reduceRows(gpu, { op: 'sum', rows: 3, cols, x: { buffer: X }, out: { buffer: S1 } }),
      await reduceRows(gpu, { op: 'sum', rows: 3, cols, x: { buffer: X }, out: { buffer: S2 } }),
    ];
    await gpu.run(ds);
    const m = await gpu.readF32(M, 0, 3);
    expect(m[0]).toBe(-Infinity);
    expect(Number.isNaN(m[1])).toBe(true);
    expectClose([m[2]], rowMax(x.subarray(2 * cols), 1, cols), 0, 'max');
    expect(Array.from(await gpu.readF32(S1))).toEqual(Array.from(await gpu.readF32(S2)));
    gpu.release(...ds);
    gpu.free(X, M, S1, S2);
  });
});

// Broadcast add and row reductions against float64, on odd sizes with fresh random inputs.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { add } from '../src/kernels/add.js';
import { reduceRows } from '../src/kernels/reduce.js';
import { addBroadcast } from '../src/reference/broadcast.js';
import { rowMax, rowSum } from '../src/reference/reductions.js';

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

// LayerNorm forward and backward against float64 on odd shapes (no multiple of any workgroup
// size), with weight/bias and their gradients at offsets inside shared buffers as the model
// lays them out (multiples of 4, read 4 floats a load where cols allow, or not), accumulation
// into dx and the gradients, single- and multi-block parameter sums, the software and hardware
// row layouts and an odd one, the grid folded into y, and bit-for-bit repeatability.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Dispatch, Gpu } from '../src/gpu/device.js';
import {
  layerNormBackward,
  layerNormBlocks,
  layerNormForward,
  layerNormLayout,
  type LayerNormLayout,
} from '../src/kernels/layernorm.js';
import { layerNorm as layerNormRef, layerNormBackward as layerNormBackwardRef } from '../src/reference/layernorm.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();
const EPS = 1e-5;

/** got − before, in float64: what a kernel accumulated. */
function delta(got: Float32Array, before: Float32Array): Float64Array {
  return Float64Array.from(got, (v, i) => v - before[i]);
}

interface Case {
  rows: number;
  cols: number;
  x: Float32Array;
  weight: Float32Array;
  bias: Float32Array;
  dout: Float32Array;
  dx0: Float32Array;
  grad0: Float32Array;
}

function makeCase(rows: number, cols: number): Case {
  const shift = rand.uniform(1, -3, 3)[0];
  return {
    rows,
    cols,
    x: Float32Array.from(rand.normal(rows * cols, 2), (v) => v + shift), // off-centre rows test the two-pass variance
    weight: Float32Array.from(rand.normal(cols, 0.5), (v) => 1 + v),
    bias: rand.normal(cols, 0.5),
    dout: rand.normal(rows * cols),
    dx0: rand.uniform(rows * cols, -0.1, 0.1),
    grad0: rand.uniform(7 + 2 * cols + 5),
  };
}

// The layout of the model: one parameter buffer (weight at 3, bias after a gap), one gradient
// buffer (same offsets), x and dx at offsets in their own buffers, stats in their own buffers.
interface Options {
  rowsPerBlock?: number;
  maxGroupsX?: number;
  sharedStats?: boolean;
  /** Offsets that are not multiples of 4 (the kernels then read one float a load). */
  unaligned?: boolean;
  layout?: LayerNormLayout;
}

async function runCase(c: Case, o: Options = {}) {
  const { rows, cols } = c;
  const u = o.unaligned ? 1 : 0;
  const offW = 4 - u;
  const offB = offW + 4 * Math.ceil(cols / 4) + 4;
  const offX = 4 + 2 * u;
  const offOut = 4 - u;
  const offDout = 4 + u;
  const offDx = 8 + u;
  const offMean = 3;
  const offRstd = o.sharedStats ? offMean + rows + 1 : 0;
  const params = new Float32Array(offB + cols + 2);
  params.set(c.weight, offW);
  params.set(c.bias, offB);
  const xs = new Float32Array(offX + rows * cols);
  xs.set(c.x, offX);
  const douts = new Float32Array(offDout + rows * cols);
  douts.set(c.dout, offDout);
  const dxs = new Float32Array(offDx + rows * cols);
  dxs.set(c.dx0, offDx);
  const grad = new Float32Array(offB + cols + 2);
  grad.set(c.grad0.subarray(0, grad.length));
  const P = gpu.upload('params', params);
  const X = gpu.upload('x', xs);
  const Dout = gpu.upload('dout', douts);
  const Dx = gpu.upload('dx', dxs);
  const G = gpu.upload('grad', grad);
  const Out = gpu.buffer('out', (offOut + rows * cols) * 4);
  const Mean = gpu.buffer('mean', (offMean + 2 * rows + 1) * 4);
  const Rstd = o.sharedStats ? Mean : gpu.buffer('rstd', rows * 4);
  const mean = { buffer: Mean, offset: offMean };
  const rstd = { buffer: Rstd, offset: offRstd };
  const fwd = await layerNormForward(gpu, {
    rows,
    cols,
    eps: EPS,
    x: { buffer: X, offset: offX },
    weight: { buffer: P, offset: offW },
    bias: { buffer: P, offset: offB },
    out: { buffer: Out, offset: offOut },
    mean,
    rstd,
    layout: o.layout,
    maxGroupsX: o.maxGroupsX,
  });
  const bwd = await layerNormBackward(gpu, {
    rows,
    cols,
    dout: { buffer: Dout, offset: offDout },
    x: { buffer: X, offset: offX },
    weight: { buffer: P, offset: offW },
    mean,
    rstd,
    dx: { buffer: Dx, offset: offDx },
    dweight: { buffer: G, offset: offW },
    dbias: { buffer: G, offset: offB },
    rowsPerBlock: o.rowsPerBlock,
    layout: o.layout,
    maxGroupsX: o.maxGroupsX,
  });
  const all: Dispatch[] = [fwd, ...bwd];
  await gpu.run(all);
  const got = {
    out: await gpu.readF32(Out, offOut, rows * cols),
    mean: await gpu.readF32(Mean, offMean, rows),
    rstd: await gpu.readF32(Rstd, offRstd, rows),
    dx: await gpu.readF32(Dx, offDx, rows * cols),
    dweight: await gpu.readF32(G, offW, cols),
    dbias: await gpu.readF32(G, offB, cols),
    gradAll: await gpu.readF32(G, 0, grad.length),
    dispatches: bwd.length,
  };
  gpu.release(...all);
  gpu.free(P, X, Dout, Dx, G, Out, Mean, Rstd);
  return { got, grad, offW, offB };
}

async function check(rows: number, cols: number, o: Options = {}) {
  const c = makeCase(rows, cols);
  const { got, grad, offW, offB } = await runCase(c, o);
  const what = `layernorm ${rows}x${cols} ${JSON.stringify(o)}`;
  const ref = layerNormRef(c.x, c.weight, c.bias, rows, cols, EPS);
  expectClose(got.out, ref.out, 1e-5, `${what} out`);
  expectClose(got.mean, ref.mean, 1e-5, `${what} mean`);
  expectClose(got.rstd, ref.rstd, 1e-5, `${what} rstd`);
  const bref = layerNormBackwardRef(c.dout, c.x, c.weight, c.bias, rows, cols, EPS);
  expectClose(delta(got.dx, c.dx0), bref.dx, 1e-5, `${what} dx (accumulated)`);
  expectClose(
    delta(got.dweight, grad.subarray(offW, offW + cols)),
    bref.dweight,
    1e-5,
    `${what} dweight (accumulated)`,
  );
  expectClose(delta(got.dbias, grad.subarray(offB, offB + cols)), bref.dbias, 1e-5, `${what} dbias (accumulated)`);
  // the rest of the gradient buffer is untouched
  for (let i = 0; i < grad.length; i++) {
    if ((i >= offW && i < offW + cols) || (i >= offB && i < offB + cols)) continue;
    if (got.gradAll[i] !== grad[i]) throw new Error(`${what}: gradient buffer changed at ${i} outside dweight/dbias`);
  }
  return got;
}

const ROWS = [1, 7, 67];
const COLS = [5, 64, 130, 132, 769];

describe.each(ROWS)('%i rows', (rows) => {
  test.each(COLS)('%i cols: forward, backward (accumulating) against float64', async (cols) => {
    const got = await check(rows, cols);
    expect(got.dispatches).toBe(1); // one block of rows: parameter sums added directly
  });
});

test('offsets that are not multiples of 4 (one float a load)', async () => {
  for (const cols of [64, 132]) await check(67, cols, { unaligned: true });
});

const LAYOUTS: [string, LayerNormLayout][] = [
  ['software', layerNormLayout('software', 130)],
  ['hardware', layerNormLayout('hardware', 130)],
  ['3 rows x 4 invocations', { ROWS: 3, TPR: 4 }],
  ['a row an invocation (no barrier)', { ROWS: 8, TPR: 1 }],
];
test.each(LAYOUTS)('the %s row layout, several blocks or one', async (_n, layout) => {
  for (const cols of [5, 132, 769]) {
    await check(67, cols, { layout });
    await check(67, cols, { layout, rowsPerBlock: 10, unaligned: cols === 132 });
  }
});

test('parameter sums in several row blocks (given, and by default past 1024 rows)', async () => {
  expect((await check(67, 130, { rowsPerBlock: 10 })).dispatches).toBe(2);
  expect((await check(67, 769, { rowsPerBlock: 1 })).dispatches).toBe(2);
  expect(layerNormBlocks(1025)).toEqual({ rowsPerBlock: 128, blocks: 9 });
  expect(layerNormBlocks(1024)).toEqual({ rowsPerBlock: 1024, blocks: 1 });
  expect(layerNormBlocks(100000).blocks).toBeLessThanOrEqual(64);
  expect((await check(1030, 37)).dispatches).toBe(2);
});

test('grid folded into y; mean and rstd sharing one buffer', async () => {
  await check(67, 130, { maxGroupsX: 5, sharedStats: true });
});

test('repeats bit for bit (forward, dx, and both parameter-sum paths)', async () => {
  for (const rowsPerBlock of [undefined, 9]) {
    const c = makeCase(67, 772);
    const a = await runCase(c, { rowsPerBlock });
    const b = await runCase(c, { rowsPerBlock });
    for (const k of ['out', 'mean', 'rstd', 'dx', 'gradAll'] as const) {
      const same = Buffer.from(a.got[k].buffer).equals(Buffer.from(b.got[k].buffer));
      if (!same) throw new Error(`${k} differs between two runs (rowsPerBlock ${rowsPerBlock})`);
    }
  }
});

test('bad specs are refused with the reason', async () => {
  const A = gpu.buffer('a', 256);
  const B = gpu.buffer('b', 256);
  const C = gpu.buffer('c', 256);
  const M = gpu.buffer('m', 64);
  const R = gpu.buffer('r', 64);
  const base = {
    rows: 2,
    cols: 4,
    eps: EPS,
    x: { buffer: A },
    weight: { buffer: B },
    bias: { buffer: B, offset: 4 },
    out: { buffer: C },
    mean: { buffer: M },
    rstd: { buffer: R },
  };
  await expect(layerNormForward(gpu, { ...base, rows: 0 })).rejects.toThrow(/positive integers/);
  await expect(layerNormForward(gpu, { ...base, out: { buffer: A } })).rejects.toThrow(
    /out must not share a buffer with x/,
  );
  await expect(layerNormForward(gpu, { ...base, rstd: { buffer: M, offset: 1 } })).rejects.toThrow(/overlap/);
  const bw = {
    rows: 2,
    cols: 4,
    dout: { buffer: A },
    x: { buffer: C },
    weight: { buffer: B },
    mean: { buffer: M },
    rstd: { buffer: R },
    dx: { buffer: gpu.buffer('dx', 64) },
    dweight: { buffer: gpu.buffer('g', 64) },
    dbias: { buffer: gpu.buffer('g2', 64) },
  };
  await expect(layerNormBackward(gpu, bw)).rejects.toThrow(/same \(gradient\) buffer/);
  await expect(layerNormBackward(gpu, { ...bw, dbias: { buffer: bw.dweight.buffer, offset: 2 } })).rejects.toThrow(
    /overlap/,
  );
  await expect(
    layerNormBackward(gpu, { ...bw, dbias: { buffer: bw.dweight.buffer, offset: 4 }, dx: { buffer: A } }),
  ).rejects.toThrow(/dx must not share a buffer with dout/);
});

// GELU (tanh approximation) forward and backward against float64, on odd sizes with fresh
// random inputs, in place, with the grid folded into y, at extreme inputs, and repeatably; one
// float a load (odd n or offsets) and 4 (n and offsets multiples of 4).
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { geluBackward, geluForward } from '../src/kernels/gelu.js';
import { gelu as geluRef, geluBackward as geluBackwardRef } from '../src/reference/gelu.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

describe.each([1, 7, 67, 769, 4099])('n = %i', (n) => {
  test('forward and backward against float64 (offsets, separate buffers)', async () => {
    const x = rand.normal(n + 3, 3);
    const dout = rand.normal(n + 5);
    const X = gpu.upload('x', x);
    const D = gpu.upload('dout', dout);
    const O = gpu.buffer('out', (n + 2) * 4);
    const DX = gpu.buffer('dx', (n + 1) * 4);
    const f = await geluForward(gpu, { n, x: { buffer: X, offset: 3 }, out: { buffer: O, offset: 2 } });
    const b = await geluBackward(gpu, {
      n,
      x: { buffer: X, offset: 3 },
      dout: { buffer: D, offset: 5 },
      dx: { buffer: DX, offset: 1 },
    });
    await gpu.run([f, b]);
    expectClose(await gpu.readF32(O, 2, n), geluRef(x.subarray(3)), 1e-5, `gelu forward n=${n}`);
    expectClose(
      await gpu.readF32(DX, 1, n),
      geluBackwardRef(dout.subarray(5), x.subarray(3)).dx,
      1e-5,
      `gelu backward n=${n}`,
    );
    gpu.release(f, b);
    gpu.free(X, D, O, DX);
  });
});

test('in place (dx over dout, out over x), with the grid folded into y', async () => {
  const n = 3001; // 12 workgroups of 256, folded as 5 x 3 (the last row partly idle)
  const x = rand.normal(n + 1, 2);
  const dout = rand.normal(n + 1);
  const X = gpu.upload('x', x);
  const XO = gpu.upload('x in place', x);
  const D = gpu.upload('dout', dout);
  const b = await geluBackward(gpu, {
    n,
    x: { buffer: X, offset: 1 },
    dout: { buffer: D, offset: 1 },
    dx: { buffer: D, offset: 1 },
    maxGroupsX: 5,
  });
  const f = await geluForward(gpu, { n, x: { buffer: XO, offset: 1 }, out: { buffer: XO, offset: 1 }, maxGroupsX: 5 });
  expect(b.workgroups[1]).toBeGreaterThan(1);
  await gpu.run([b, f]);
  expectClose(
    await gpu.readF32(D, 1, n),
    geluBackwardRef(dout.subarray(1), x.subarray(1)).dx,
    1e-5,
    'in-place backward',
  );
  expectClose(await gpu.readF32(XO, 1, n), geluRef(x.subarray(1)), 1e-5, 'in-place forward');
  expect((await gpu.readF32(D, 0, 1))[0]).toBe(dout[0]); // untouched before the offset
  gpu.release(b, f);
  gpu.free(X, XO, D);
});

describe.each([4, 772, 4100])('4 values a load, n = %i', (n) => {
  test('forward and backward against float64, separate buffers and in place (grid folded into y)', async () => {
    const x = rand.normal(n + 8, 3);
    const dout = rand.normal(n + 4);
    const X = gpu.upload('x', x);
    const XO = gpu.upload('x in place', x);
    const D = gpu.upload('dout', dout);
    const DI = gpu.upload('dout in place', dout);
    const O = gpu.buffer('out', n * 4);
    const DX = gpu.buffer('dx', (n + 4) * 4);
    const ds = [
      await geluForward(gpu, { n, x: { buffer: X, offset: 8 }, out: { buffer: O } }),
      await geluBackward(gpu, {
        n,
        x: { buffer: X, offset: 8 },
        dout: { buffer: D, offset: 4 },
        dx: { buffer: DX, offset: 4 },
      }),
      await geluForward(gpu, { n, x: { buffer: XO, offset: 8 }, out: { buffer: XO, offset: 8 }, maxGroupsX: 2 }),
      await geluBackward(gpu, {
        n,
        x: { buffer: X, offset: 8 },
        dout: { buffer: DI, offset: 4 },
        dx: { buffer: DI, offset: 4 },
        maxGroupsX: 2,
      }),
    ];
    await gpu.run(ds);
    const fRef = geluRef(x.subarray(8));
    const bRef = geluBackwardRef(dout.subarray(4), x.subarray(8)).dx;
    expectClose(await gpu.readF32(O, 0, n), fRef, 1e-5, `gelu forward n=${n}`);
    expectClose(await gpu.readF32(DX, 4, n), bRef, 1e-5, `gelu backward n=${n}`);
    expectClose(await gpu.readF32(XO, 8, n), fRef, 1e-5, `in-place gelu forward n=${n}`);
    expectClose(await gpu.readF32(DI, 4, n), bRef, 1e-5, `in-place gelu backward n=${n}`);
    expect(Array.from(await gpu.readF32(DI, 0, 4))).toEqual(Array.from(dout.subarray(0, 4))); // before the offset
    gpu.release(...ds);
    gpu.free(X, XO, D, DI, O, DX);
  });
});

// 15 values (one a load) and 16 (4 a load).
test.each([15, 16])("huge |x| never gives NaN or Inf: gelu(x) = x or 0, gelu'(x) = 1 or 0 (n = %i)", async (n) => {
  const all = [1e4, -1e4, 1e30, -1e30, 3e38, -3e38, 20, -20, 10, -10, 5, -5, 0, 1e-30, -1e-30, -3];
  const x = Float32Array.from(all.slice(0, n));
  const dout = Float32Array.from({ length: n }, (_, i) => 1 + i / 8);
  const X = gpu.upload('x', x);
  const D = gpu.upload('dout', dout);
  const O = gpu.buffer('out', n * 4);
  const DX = gpu.buffer('dx', n * 4);
  const ds = [
    await geluForward(gpu, { n, x: { buffer: X }, out: { buffer: O } }),
    await geluBackward(gpu, { n, x: { buffer: X }, dout: { buffer: D }, dx: { buffer: DX } }),
  ];
  await gpu.run(ds);
  const out = await gpu.readF32(O, 0, n);
  const dx = await gpu.readF32(DX, 0, n);
  const fRef = geluRef(x);
  const bRef = geluBackwardRef(dout, x).dx;
  for (let i = 0; i < n; i++) {
    expect(Number.isFinite(out[i]) && Number.isFinite(dx[i])).toBe(true);
    // per element: relative 1e-5, or absolute 1e-30 where the value is (nearly) zero
    const okF = Math.abs(out[i] - fRef[i]) <= 1e-5 * Math.abs(fRef[i]) + 1e-30;
    const okB = Math.abs(dx[i] - bRef[i]) <= 1e-5 * Math.abs(bRef[i]) + 1e-30;
    if (!okF || !okB)
      throw new Error(`x = ${x[i]}: gelu ${out[i]} (want ${fRef[i]}), gelu' * dout ${dx[i]} (want ${bRef[i]})`);
  }
  expect(out[2]).toBe(Math.fround(1e30));
  expect(Math.abs(out[3])).toBe(0);
  expect(dx[0]).toBe(dout[0]);
  expect(Math.abs(dx[1])).toBe(0);
  gpu.release(...ds);
  gpu.free(X, D, O, DX);
});

test('repeats bit for bit', async () => {
  const n = 1031;
  const x = rand.normal(n, 3);
  const dout = rand.normal(n);
  const X = gpu.upload('x', x);
  const D = gpu.upload('dout', dout);
  const outs = [gpu.buffer('o1', n * 4), gpu.buffer('o2', n * 4), gpu.buffer('g1', n * 4), gpu.buffer('g2', n * 4)];
  const ds = [
    await geluForward(gpu, { n, x: { buffer: X }, out: { buffer: outs[0] } }),
    await geluForward(gpu, { n, x: { buffer: X }, out: { buffer: outs[1] } }),
    await geluBackward(gpu, { n, x: { buffer: X }, dout: { buffer: D }, dx: { buffer: outs[2] } }),
    await geluBackward(gpu, { n, x: { buffer: X }, dout: { buffer: D }, dx: { buffer: outs[3] } }),
  ];
  await gpu.run(ds);
  const r = await Promise.all(outs.map((o) => gpu.read(o, Uint32Array, 0, n)));
  expect(Buffer.from(r[0].buffer).equals(Buffer.from(r[1].buffer))).toBe(true);
  expect(Buffer.from(r[2].buffer).equals(Buffer.from(r[3].buffer))).toBe(true);
  gpu.release(...ds);
  gpu.free(X, D, ...outs);
});

test('bad specs are refused with the reason', async () => {
  const A = gpu.buffer('a', 64);
  const B = gpu.buffer('b', 64);
  await expect(geluForward(gpu, { n: 0, x: { buffer: A }, out: { buffer: B } })).rejects.toThrow(
    /n must be a positive integer/,
  );
  await expect(geluForward(gpu, { n: 4, x: { buffer: A }, out: { buffer: A, offset: 4 } })).rejects.toThrow(
    /different offsets/,
  );
  await expect(geluBackward(gpu, { n: 4, x: { buffer: A }, dout: { buffer: B }, dx: { buffer: A } })).rejects.toThrow(
    /x must not share/,
  );
  await expect(
    geluBackward(gpu, { n: 4, x: { buffer: A }, dout: { buffer: B }, dx: { buffer: B, offset: 4 } }),
  ).rejects.toThrow(/different offsets/);
  gpu.free(A, B);
});

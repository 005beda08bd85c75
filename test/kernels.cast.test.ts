// castF16 (f32 → packed f16, optionally scaled by a GPU scalar) bit for bit against the host's f16Bits: odd n and
// odd offsets (the neighbouring halves and words left as they were), a scale, overflow to ±Inf, subnormals and
// rounding ties, and a grid folded into y.
import { openTestGpu } from './helpers/gpu.js';
import { makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { castF16 } from '../src/kernels/cast.js';
import { f16Bits } from '../src/util/f16.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

/** Values that probe the rounding: overflow, the largest half and its rounding boundary, subnormals, ties, zeros. */
const EDGES = [
  65504,
  65519.99,
  65520,
  -65520,
  1e5,
  -3e38,
  Infinity,
  -Infinity,
  6.103515625e-5,
  6.1e-5,
  5.960464477539063e-8,
  2.98023223876953125e-8,
  2.99e-8,
  -8.940696716308594e-8,
  1e-9,
  1 + 2 ** -11,
  1 + 3 * 2 ** -11,
  1 + 2 ** -11 + 2 ** -20,
  2049,
  2051,
  0,
  -0,
];

/** The halves of a word array, low half first. */
const halves = (w: Uint32Array) =>
  Array.from({ length: 2 * w.length }, (_, i) => (w[i >> 1] >>> (16 * (i & 1))) & 0xffff);

async function cast(
  n: number,
  o: { offSrc?: number; offDst?: number; scale?: number; values?: ArrayLike<number>; maxGroupsX?: number } = {},
) {
  const offSrc = o.offSrc ?? 0;
  const offDst = o.offDst ?? 0;
  const x = rand.normal(offSrc + n, 8);
  if (o.values) x.set(Array.from(o.values).slice(0, n), offSrc);
  // The destination starts as random bits with two words of margin: everything outside the tensor must stay.
  const words = Math.ceil((offDst + n) / 2) + 2;
  const before = Uint32Array.from(rand.int(words, 2 ** 32));
  const S = gpu.upload('src', x);
  const D = gpu.upload('dst', before);
  const Sc = gpu.upload('scale', Float32Array.of(0, 0, o.scale ?? 0)); // the scalar at an offset
  const d = await castF16(gpu, {
    n,
    src: { buffer: S, offset: offSrc },
    dst: { buffer: D, offset: offDst, dtype: 'f16' },
    scale: o.scale === undefined ? undefined : { buffer: Sc, offset: 2 },
    maxGroupsX: o.maxGroupsX,
  });
  await gpu.run([d]);
  const got = halves(await gpu.read(D, Uint32Array, 0, words));
  gpu.release(d);
  gpu.free(S, D, Sc);
  const want = halves(before);
  const scale = Math.fround(o.scale ?? 1);
  // x·scale rounded to f32 (the kernel's product), then to f16.
  for (let i = 0; i < n; i++) want[offDst + i] = f16Bits(x[offSrc + i] * scale);
  let wrong = 0;
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) wrong++;
  const first = want.findIndex((h, i) => got[i] !== h);
  const what =
    first < 0
      ? ''
      : `half ${first}: got ${got[first].toString(16)}, want ${want[first].toString(16)} (seed ${rand.seed})`;
  expect(`${wrong} wrong halves${what ? `, first ${what}` : ''}`).toBe('0 wrong halves');
  return d;
}

test('bit-exact against f16Bits: rounding ties, subnormals, overflow to ±Inf, zeros', async () => {
  await cast(EDGES.length, { values: EDGES });
  await cast(EDGES.length, { values: EDGES, offDst: 1, offSrc: 3 });
});

test('odd n and odd offsets leave the neighbouring halves as they were', async () => {
  for (const n of [1, 2, 3, 7, 1001])
    for (const offDst of [0, 1, 2, 5]) await cast(n, { offDst, offSrc: (n + offDst) % 3 });
});

test('a GPU scalar multiplies before rounding: overflow and subnormals it makes', async () => {
  await cast(513, { scale: 16384, offDst: 3 }); // normal(0, 8)·16384 passes 65520 where |x| > 4: most values
  await cast(257, { scale: 2 ** -20, offDst: 2, offSrc: 1 }); // into the subnormals
  await cast(EDGES.length, { values: EDGES, scale: 0.5, offDst: 1 });
});

test('NaN gives a NaN half', async () => {
  const S = gpu.upload('src', Float32Array.of(NaN, 1));
  const D = gpu.buffer('dst', 4);
  const d = await castF16(gpu, { n: 2, src: { buffer: S }, dst: { buffer: D, dtype: 'f16' } });
  await gpu.run([d]);
  const [w] = await gpu.read(D, Uint32Array, 0, 1);
  expect([(w & 0x7c00) === 0x7c00 && (w & 0x3ff) !== 0, w >>> 16]).toEqual([true, f16Bits(1)]);
  gpu.release(d);
  gpu.free(S, D);
});

test('the grid folds into y past the x limit', async () => {
  const d = await cast(5 * 512 + 3, { offDst: 1, maxGroupsX: 2 });
  expect(d.workgroups[1]).toBeGreaterThan(1);
});

test('refuses an f32 destination, an f16 source and a destination sharing a buffer with what it reads', async () => {
  const X = gpu.buffer('X', 64);
  const Y = gpu.buffer('Y', 64);
  await expect(castF16(gpu, { n: 4, src: { buffer: X }, dst: { buffer: Y } })).rejects.toThrow(
    /castF16 4: dst must be an f16 tensor/,
  );
  await expect(
    castF16(gpu, { n: 4, src: { buffer: X, dtype: 'f16' }, dst: { buffer: Y, dtype: 'f16' } }),
  ).rejects.toThrow(/src and scale must be f32/);
  await expect(
    castF16(gpu, { n: 4, src: { buffer: X }, dst: { buffer: Y, dtype: 'f16' }, scale: { buffer: Y } }),
  ).rejects.toThrow(/must not share a buffer/);
  await expect(castF16(gpu, { n: 0, src: { buffer: X }, dst: { buffer: Y, dtype: 'f16' } })).rejects.toThrow(
    /n must be a positive integer/,
  );
  gpu.free(X, Y);
});

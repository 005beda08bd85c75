// Row gather and scatter against a CPU copy (exact: the kernels only move values), on odd n and d at
// odd offsets (one float a load) and on d and offsets multiples of 4 (4 floats a load).
import { openTestGpu } from './helpers/gpu.js';
import { makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { gatherRows, scatterRows } from '../src/kernels/rows.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

/** [n, d, offset of src, of dst, of the index]. */
const CASES: [number, number, number, number, number][] = [
  [37, 45, 3, 5, 1],
  [37, 68, 4, 8, 1],
  [5, 4, 0, 4, 2],
];

describe.each(CASES)('n = %i, d = %i, offsets src %i, dst %i, index %i', (n, d, oS, oD, oI) => {
  const R = 2 * n + 3; // rows of the table gathered from / scattered into
  test('gather: dst[i] = src[idx[i]]', async () => {
    const src = rand.normal(oS + R * d);
    const idx = rand.int(n, R);
    const S = gpu.upload('src', src);
    const I = gpu.upload('idx', Uint32Array.from([...new Array(oI).fill(7), ...idx]));
    const D = gpu.upload('dst', new Float32Array(oD + n * d + 1).fill(-1));
    const g = await gatherRows(gpu, {
      n,
      d,
      src: { buffer: S, offset: oS },
      index: { buffer: I, offset: oI },
      dst: { buffer: D, offset: oD },
    });
    await gpu.run([g]);
    const want = new Float32Array(oD + n * d + 1).fill(-1);
    for (let i = 0; i < n; i++) want.set(src.subarray(oS + idx[i] * d, oS + (idx[i] + 1) * d), oD + i * d);
    const got = await gpu.readF32(D, 0, want.length);
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    gpu.release(g);
    gpu.free(S, I, D);
  });

  test('scatter: dst[idx[i]] = src[i], other rows untouched', async () => {
    const src = rand.normal(oS + n * d);
    const perm = Array.from({ length: R }, (_, i) => ({ i, key: rand.next() }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.i);
    const idx = Uint32Array.from(perm.slice(0, n)); // distinct
    const before = rand.normal(oD + R * d + 1);
    const S = gpu.upload('src', src);
    const I = gpu.upload('idx', Uint32Array.from([...new Array(oI).fill(7), ...idx]));
    const D = gpu.upload('dst', before);
    const s = await scatterRows(gpu, {
      n,
      d,
      src: { buffer: S, offset: oS },
      index: { buffer: I, offset: oI },
      dst: { buffer: D, offset: oD },
    });
    await gpu.run([s]);
    const want = Float32Array.from(before);
    for (let i = 0; i < n; i++) want.set(src.subarray(oS + i * d, oS + (i + 1) * d), oD + idx[i] * d);
    const got = await gpu.readF32(D, 0, want.length);
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    gpu.release(s);
    gpu.free(S, I, D);
  });
});

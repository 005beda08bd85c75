// The row argmax used by greedy decoding against the sampler's host argmax (first index on ties,
// NaN wins).
import { openTestGpu } from './helpers/gpu.js';
import { makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { argmaxRows } from '../src/kernels/argmax.js';
import { argmaxHost } from '../src/infer/sampling.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

test('row argmax: first index on ties, NaN wins, odd widths', async () => {
  const rows = 5;
  const n = 1037;
  const x = rand.normal(rows * n);
  x[1 * n + 17] = 50;
  x[1 * n + 900] = 50; // a tie: the first wins
  x[2 * n + n - 1] = 60; // the last column
  x[3 * n + 400] = NaN;
  x[3 * n + 401] = 1e30;
  x[4 * n] = 70; // the first column
  const xb = gpu.upload('x', x);
  const out = gpu.buffer('amax', rows * 4);
  const dispatch = await argmaxRows(gpu, { rows, n, x: { buffer: xb }, out: { buffer: out } });
  await gpu.run([dispatch]);
  const got = Array.from(await gpu.read(out, Uint32Array, 0, rows));
  const ref = Array.from({ length: rows }, (_, r) => argmaxHost(x.subarray(r * n, (r + 1) * n)));
  expect(ref.slice(1)).toEqual([17, n - 1, 400, 0]);
  expect(got).toEqual(ref);
  gpu.release(dispatch);
  gpu.free(xb, out);
});

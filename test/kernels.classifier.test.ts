// The classifier loss kernel (softmax CE over C classes, or squared error for C = 1, row
// weighted) against float64, on odd row counts with fresh random logits, offsets and zero weights.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { classifierLoss } from '../src/kernels/classifier.js';
import { classifierHeadReference } from '../src/reference/classifier.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

describe.each([
  [1, 1],
  [7, 2],
  [67, 3],
  [130, 1],
])('rows %i, C %i', (rows, C) => {
  test('losses and dlogits match float64', async () => {
    const z = rand.normal(rows * C + 3, 4);
    const targets = Float32Array.from({ length: rows }, () =>
      C === 1 ? 5 * rand.uniform(1, 0, 1)[0] : rand.int(1, C)[0],
    );
    const raw: number[] = Array.from({ length: rows }, (_, r) => (r % 5 === 4 ? 0 : 0.5 + rand.uniform(1, 0, 1)[0]));
    const total = raw.reduce((a, b) => a + b, 0);
    const Z = gpu.upload('logits', z);
    const Tg = gpu.upload('targets', targets);
    const W = gpu.upload(
      'weights',
      Float32Array.from(raw, (w) => w / total),
    );
    const L = gpu.buffer('losses', rows * 4);
    const D = gpu.buffer('dlogits', (rows * C + 2) * 4);
    const k = await classifierLoss(gpu, {
      rows,
      C,
      logits: { buffer: Z, offset: 3 },
      targets: { buffer: Tg },
      weights: { buffer: W },
      losses: { buffer: L },
      dlogits: { buffer: D, offset: 2 },
    });
    await gpu.run([k]);
    // The reference head with identity pooling (T = 1, d = C, W = I, b = 0) sees the logits as hidden states.
    const eye = new Float64Array(C * C);
    for (let i = 0; i < C; i++) eye[i * C + i] = 1;
    const ref = classifierHeadReference({
      W: eye,
      b: new Float64Array(C),
      C,
      d: C,
      T: 1,
      pooling: 'first',
      lengths: raw.map(() => 1),
      targets: Array.from(targets),
      weights: raw,
    })(Float64Array.from(z.subarray(3)));
    const losses = await gpu.readF32(L, 0, rows);
    expectClose([losses.reduce((a, b) => a + b, 0)], [ref.loss], 1e-5, 'loss');
    expectClose(await gpu.readF32(D, 2, rows * C), ref.dHidden, 1e-5, 'dlogits');
    gpu.release(k);
    gpu.free(Z, Tg, W, L, D);
  });
});

test('huge logits stay finite', async () => {
  const z = Float32Array.from([1e30, -1e30, 80, -80, 0, 3e38]);
  const Z = gpu.upload('logits', z);
  const Tg = gpu.upload('targets', Float32Array.from([1, 0, 1]));
  const W = gpu.upload('weights', Float32Array.from([1 / 3, 1 / 3, 1 / 3]));
  const L = gpu.buffer('losses', 12);
  const D = gpu.buffer('dlogits', 24);
  const k = await classifierLoss(gpu, {
    rows: 3,
    C: 2,
    logits: { buffer: Z },
    targets: { buffer: Tg },
    weights: { buffer: W },
    losses: { buffer: L },
    dlogits: { buffer: D },
  });
  await gpu.run([k]);
  for (const v of [...(await gpu.readF32(L, 0, 3)), ...(await gpu.readF32(D, 0, 6))])
    expect(Number.isFinite(v)).toBe(true);
  gpu.release(k);
  gpu.free(Z, Tg, W, L, D);
});

test.each([
  [7, 3, 1024],
  [5, 1, 0.125],
])('rows %i, C %i: gradScale %d scales dlogits exactly, not the losses', async (rows, C, k) => {
  const z = rand.normal(rows * C, 4);
  const targets = Float32Array.from({ length: rows }, () => (C === 1 ? rand.normal(1, 2)[0] : rand.int(1, C)[0]));
  const bufs = {
    Z: gpu.upload('logits', z),
    Tg: gpu.upload('targets', targets),
    W: gpu.upload('weights', new Float32Array(rows).fill(1 / rows)),
    G: gpu.upload('grad scale', Float32Array.of(0, k)),
    L: gpu.buffer('losses', rows * 4),
    D: gpu.buffer('dlogits', rows * C * 4),
  };
  const spec = {
    rows,
    C,
    logits: { buffer: bufs.Z },
    targets: { buffer: bufs.Tg },
    weights: { buffer: bufs.W },
    losses: { buffer: bufs.L },
    dlogits: { buffer: bufs.D },
  };
  const outputs = async (gradScale?: { buffer: GPUBuffer; offset: number }) => {
    const kernel = await classifierLoss(gpu, { ...spec, gradScale });
    await gpu.run([kernel]);
    gpu.release(kernel);
    return { losses: await gpu.readF32(bufs.L, 0, rows), dlogits: await gpu.readF32(bufs.D, 0, rows * C) };
  };
  const plain = await outputs();
  const scaled = await outputs({ buffer: bufs.G, offset: 1 });
  expect(Array.from(scaled.losses)).toEqual(Array.from(plain.losses));
  let off = 0;
  for (let i = 0; i < rows * C; i++) if (!(scaled.dlogits[i] === k * plain.dlogits[i])) off++; // NaN counts
  expect(off).toBe(0);
  expect(plain.dlogits.some((x) => x !== 0)).toBe(true);
  await expect(classifierLoss(gpu, { ...spec, gradScale: { buffer: bufs.D } })).rejects.toThrow(/own buffers/);
  gpu.free(...Object.values(bufs));
});

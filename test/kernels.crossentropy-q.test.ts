// The fused CE head's forward over a packed vocabulary table (inference with --weights f16|int8|q4) against
// float64 of the table the packed words hold: losses and argmax on odd N, V and d (q4's last group padded), the
// codes at a word offset inside their buffer, under the software and the hardware plans; f16 hidden states too.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { crossEntropyHead } from '../src/kernels/crossentropy.js';
import { rowWords, type QuantFormat } from '../src/kernels/matmul-q.js';
import { quantizeMatrix } from '../src/model/quantize.js';
import { dequantize } from '../src/reference/matmul-q.js';
import { crossEntropyTied } from '../src/reference/crossentropy.js';
import { packF16, roundF16 } from '../src/util/f16.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

/** The first index of the largest value in each row. */
function argmaxRows(x: Float64Array, N: number, V: number): number[] {
  return Array.from({ length: N }, (_, r) => {
    let best = 0;
    for (let c = 1; c < V; c++) if (x[r * V + c] > x[r * V + best]) best = c;
    return best;
  });
}

async function runCase(format: QuantFormat, N: number, V: number, d: number, hardware = false, hHalf = false) {
  // An f16 h (mixed precision) holds the rounded values, at an odd offset in halves.
  const h = hHalf ? rand.uniform(N * d).map(roundF16) : rand.uniform(N * d);
  const E = rand.uniform(V * d);
  const targets = Int32Array.from(rand.int(N, V));
  targets[1] = -1;
  const words = quantizeMatrix(format, V, d, (r, c) => E[r * d + c]);
  const before = 7;
  const buf = new Uint32Array(before + words.length + 3);
  buf.set(words, before);
  const ref = crossEntropyTied(h, dequantize(format, words, V, d), targets, N, V, d);

  const H = gpu.upload('h', hHalf ? packF16([0, ...h]) : h);
  const W = gpu.upload('packed table', buf);
  const T = gpu.upload('targets', targets);
  const L = gpu.buffer('losses', N * 4);
  const A = gpu.buffer('argmax', N * 4);
  const adapter = gpu.adapter as { kind: string };
  const kind = adapter.kind;
  if (hardware) adapter.kind = 'hardware';
  let head;
  try {
    head = await crossEntropyHead(gpu, {
      N,
      V,
      d,
      h: hHalf ? { buffer: H, offset: 1, dtype: 'f16' } : { buffer: H },
      wte: { format, rows: V, cols: d, buffer: W, offset: before, scales: before + V * rowWords(format, d) },
      targets: { buffer: T },
      losses: { buffer: L },
      argmax: { buffer: A },
    });
  } finally {
    adapter.kind = kind;
  }
  await gpu.run(head.dispatches);
  const losses = await gpu.readF32(L, 0, N);
  const argmax = Array.from(await gpu.read(A, Uint32Array, 0, N));
  gpu.release(...head.dispatches);
  for (const b of [H, W, T, L, A]) b.destroy();
  expectClose(losses, ref.nll, 2e-5, `${format} losses`);
  expect(losses[1]).toBe(0);
  expect(argmax).toEqual(argmaxRows(ref.logits, N, V));
}

describe('fused CE head over a packed table', () => {
  for (const format of ['f16', 'int8', 'q4'] as const) {
    test(`${format}: losses and argmax equal float64 of the unpacked table`, async () => {
      await runCase(format, 37, 301, 45);
    });
    test(`${format}: the hardware plan`, async () => {
      await runCase(format, 19, 133, 70, true);
    });
  }
  test('q4 with f16 hidden states (mixed precision), both plans', async () => {
    await runCase('q4', 13, 101, 37, false, true);
    await runCase('q4', 13, 101, 37, true, true);
  });

  test('a table of the wrong shape is refused', async () => {
    const W = gpu.buffer('packed table', 4096);
    const refuse = crossEntropyHead(gpu, {
      N: 2,
      V: 10,
      d: 8,
      h: { buffer: gpu.buffer('h', 64) },
      wte: { format: 'int8', rows: 11, cols: 8, buffer: W, offset: 0, scales: 22 },
      targets: { buffer: gpu.buffer('targets', 8) },
      losses: { buffer: gpu.buffer('losses', 8) },
    });
    await expect(refuse).rejects.toThrow('the packed table is [11, 8], the head needs [10, 8]');
  });
});

// Quantized products against float64: the host packs random weights (src/model/quantize.ts), the float64
// reference unpacks them on its own (src/reference/matmul-q.ts) and multiplies, the GPU dequantizes inside the
// kernel. Odd shapes (K not a multiple of the word or of q4's group of 32, M and N no multiple of a tile), both
// tiles, vec4 and scalar A loads, and matrices at word offsets inside a larger buffer. Also the packer itself:
// binary16 rounding, the error bound of each scheme, and the padding of a row's last word or group.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import {
  matmulQ,
  quantizedWords,
  QUANT_TILES,
  rowWords,
  scaleWords,
  type QuantFormat,
  type QuantTile,
} from '../src/kernels/matmul-q.js';
import { quantizeMatrix } from '../src/model/quantize.js';
import { dequantize, matmulQ as matmulQRef } from '../src/reference/matmul-q.js';
import { f16Bits, f16Value, f32FromBits } from '../src/util/f16.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();
const FORMATS: QuantFormat[] = ['f16', 'int8', 'q4'];

function pack(format: QuantFormat, w: Float32Array, rows: number, cols: number): Uint32Array {
  return quantizeMatrix(format, rows, cols, (r, c) => w[r * cols + c]);
}

async function check(
  format: QuantFormat,
  M: number,
  N: number,
  K: number,
  o: { offA?: number; offC?: number; offW?: number; tile?: QuantTile } = {},
) {
  const { offA = 0, offC = 0, offW = 0 } = o;
  const a = rand.uniform(offA + M * K);
  const w = rand.normal(N * K, 0.5);
  const words = pack(format, w, N, K);
  const buf = new Uint32Array(offW + words.length + 3);
  buf.set(words, offW);
  const A = gpu.upload('A', a);
  const W = gpu.upload('W', buf);
  const C = gpu.upload('C', rand.uniform(offC + M * N));
  const d = await matmulQ(gpu, {
    M,
    N,
    K,
    a: { buffer: A, offset: offA },
    w: { format, rows: N, cols: K, buffer: W, offset: offW, scales: offW + N * rowWords(format, K) },
    c: { buffer: C, offset: offC },
    tile: o.tile,
  });
  await gpu.run([d]);
  const got = await gpu.readF32(C, offC, M * N);
  gpu.release(d);
  gpu.free(A, W, C);
  expectClose(
    got,
    matmulQRef(format, a.subarray(offA), words, M, N, K),
    1e-5,
    `${format} ${M}x${N}x${K} ${JSON.stringify(o)}`,
  );
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 5, 7],
  [3, 65, 40],
  [1, 200, 64],
  [17, 129, 33],
  [70, 67, 100],
  [5, 3, 257],
];

describe.each(FORMATS)('%s', (format) => {
  test.each(SHAPES)('M=%i N=%i K=%i against float64 of the dequantized weights', async (M, N, K) => {
    await check(format, M, N, K);
  });

  test('offsets: scalar A loads, C and W inside larger buffers', async () => {
    await check(format, 3, 37, 48, { offA: 3, offC: 5, offW: 11 });
    await check(format, 20, 37, 48, { offA: 4, offC: 1, offW: 64 });
  });

  test.each(Object.entries(QUANT_TILES))('the %s tiles, forced on any M', async (_, tiles) => {
    await check(format, 9, 130, 72, { tile: tiles.rows });
    await check(format, 9, 130, 72, { tile: tiles.big });
  });
});

test('binary16 rounding: exact values, ties to even, subnormals, overflow, and every half round-trips', () => {
  const cases: [number, number][] = [
    [0, 0],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65520, 0x7c00], // halfway to the next binade rounds up to Inf
    [65519, 0x7bff],
    [1 + 2 ** -11, 0x3c00], // tie, even stays
    [1 + 3 * 2 ** -11, 0x3c02], // tie, odd rounds up
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie to even (zero)
    [3 * 2 ** -25, 0x0002],
    [2 ** -14, 0x0400],
    [Infinity, 0x7c00],
  ];
  for (const [x, h] of cases) expect([x, f16Bits(x)]).toEqual([x, h]);
  expect(Number.isNaN(f16Value(f16Bits(NaN)))).toBe(true);
  for (let h = 0; h < 0x10000; h++) {
    const v = f16Value(h);
    if (!Number.isNaN(v) && f16Bits(v) !== h) throw new Error(`half ${h.toString(16)} → ${v} → ${f16Bits(v)}`);
  }
});

describe('the packer', () => {
  test('sizes: words per row and scales, with padding', () => {
    expect([rowWords('f16', 7), rowWords('int8', 7), rowWords('q4', 7)]).toEqual([4, 2, 4]);
    expect([rowWords('q4', 32), rowWords('q4', 33)]).toEqual([4, 8]);
    expect([scaleWords('f16', 5, 40), scaleWords('int8', 5, 40), scaleWords('q4', 5, 40)]).toEqual([0, 5, 5]);
    expect(quantizedWords('q4', 3, 33)).toBe(3 * 8 + 3);
  });

  test.each(FORMATS)('%s: error within the scheme bound, padding decodes to zero', (format) => {
    const rows = 9;
    const cols = 45; // int8: 3 padding bytes; q4: a second group of 13 real elements
    const w = rand.normal(rows * cols, 0.3);
    w[7] = 0.9; // a large positive and a large negative value share q4's first group of row 0
    w[8] = -1.1;
    for (let c = 0; c < cols; c++) w[3 * cols + c] = 0; // an all-zero row: scale 0, exact
    const words = pack(format, w, rows, cols);
    const got = dequantize(format, words, rows, cols);
    const rw = rowWords(format, cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const x = w[r * cols + c];
        const err = Math.abs(got[r * cols + c] - x);
        let bound: number;
        if (format === 'f16') bound = Math.max(Math.abs(x) * 2 ** -11, 2 ** -25);
        else if (format === 'int8') bound = f32FromBits(words[rows * rw + r]) / 2 + 1e-12;
        else {
          const i = r * 2 + Math.floor(c / 32);
          const s = Math.abs(f16Value((words[rows * rw + (i >> 1)] >>> (16 * (i & 1))) & 0xffff));
          // Q4_0 maps the group's largest magnitude m exactly and clips −m to 7·s: at most one step off.
          bound = s + 1e-12;
        }
        if (!(err <= bound)) throw new Error(`${format} (${r}, ${c}): ${x} → ${got[r * cols + c]}, bound ${bound}`);
      }
    }
    expect(Array.from(got.subarray(3 * cols, 4 * cols)).every((v) => v === 0)).toBe(true);
    // The padding codes: int8 bytes 0 and q4 nibbles 8 past column 45 of row 0's last word.
    const last = words[rw - 1];
    if (format === 'int8') expect(last >>> 8).toBe(0); // column 44 in the low byte, then padding
    if (format === 'q4') expect(words[rw - 1]).toBe(0x88888888); // columns 56..63: all padding
  });

  test('int8 keeps the row maximum exactly; q4 the signed value of largest magnitude', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? -0.75 : i === 9 ? 0.5 : 0.01 * i - 0.1));
    const i8 = dequantize('int8', pack('int8', w, 1, 32), 1, 32);
    expect(Math.abs(i8[5] + 0.75)).toBeLessThan(1e-7);
    const q4 = dequantize('q4', pack('q4', w, 1, 32), 1, 32);
    expect(q4[5]).toBe(-0.75);
  });

  test('refuses non-finite weights', () => {
    expect(() => pack('int8', Float32Array.of(1, NaN), 1, 2)).toThrow(/element \(0, 1\) is NaN/);
  });
});

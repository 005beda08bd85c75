// The embedding with a packed token table against float64: the reference dequantizes the packed rows on its
// own (src/reference/matmul-q.ts) and adds the f32 position rows. Odd d (a row's last word or q4 group padded),
// repeated tokens, tables at word offsets inside larger buffers, and the fold of workgroups into y.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { embeddingForwardQ } from '../src/kernels/embedding-q.js';
import { rowWords, type QuantFormat } from '../src/kernels/matmul-q.js';
import { quantizeMatrix } from '../src/model/quantize.js';
import { embedding } from '../src/reference/embedding.js';
import { dequantize } from '../src/reference/matmul-q.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

const SHAPES: [number, number, number, number][] = [
  // B, T, d, V
  [1, 1, 5, 3],
  [3, 7, 64, 5],
  [2, 9, 45, 300],
  [1, 33, 97, 11],
];

describe.each(['f16', 'int8', 'q4'] as QuantFormat[])('%s', (format) => {
  test.each(SHAPES)('B=%i T=%i d=%i V=%i against float64 of the dequantized table', async (B, T, d, V) => {
    const P = T + 2;
    const wte = rand.normal(V * d, 0.4);
    const words = quantizeMatrix(format, V, d, (r, c) => wte[r * d + c]);
    const offW = 13;
    const offWpe = 5;
    const packed = new Uint32Array(offW + words.length);
    packed.set(words, offW);
    const wpe = rand.normal(offWpe + P * d);
    const tokens = rand.int(B * T, V);
    const W = gpu.upload('wte', packed);
    const WPE = gpu.upload('wpe', wpe);
    const TOK = gpu.upload('tokens', tokens);
    const OUT = gpu.buffer('out', (B * T * d + 3) * 4);
    const dispatch = await embeddingForwardQ(gpu, {
      B,
      T,
      d,
      tokens: { buffer: TOK },
      wte: { format, rows: V, cols: d, buffer: W, offset: offW, scales: offW + V * rowWords(format, d) },
      wpe: { buffer: WPE, offset: offWpe },
      out: { buffer: OUT, offset: 3 },
      maxGroupsX: 2,
    });
    await gpu.run([dispatch]);
    const got = await gpu.readF32(OUT, 3, B * T * d);
    gpu.release(dispatch);
    gpu.free(W, WPE, TOK, OUT);
    const want = embedding(dequantize(format, words, V, d), wpe.subarray(offWpe), tokens, B, T, d);
    expectClose(got, want, 1e-6, `${format} embedding ${B}x${T}x${d} V=${V}`);
  });
});

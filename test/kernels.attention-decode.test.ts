// Single-query attention over a KV cache (the decoding step) against float64: the last row of
// the reference causal attention.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { attentionDecode } from '../src/kernels/attention-decode.js';
import { attention } from '../src/reference/attention.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

describe('attention over a KV cache', () => {
  // d=40 with 5 heads (hd 8: many key slices per head), d=150 with 2 heads (hd 75 > 64 invocations).
  test.each([
    [40, 5, 1],
    [40, 5, 7],
    [40, 5, 33],
    [150, 2, 5],
    [150, 2, 70],
  ])('d=%i, %i heads, cache length %i', async (d, H, len) => {
    const maxLen = 71;
    const qkv = rand.normal(len * 3 * d);
    // The cache: row t = k | v of position t, then rows past len filled with junk that must not count.
    const kv = rand.normal(maxLen * 2 * d, 100);
    for (let t = 0; t < len; t++) kv.set(qkv.subarray(t * 3 * d + d, (t + 1) * 3 * d), t * 2 * d);
    const q = new Float32Array(d + 3); // at an offset
    q.set(qkv.subarray((len - 1) * 3 * d, (len - 1) * 3 * d + d), 3);
    const qBuf = gpu.upload('q', q);
    const kvBuf = gpu.upload('kv', kv);
    const out = gpu.buffer('out', (d + 5) * 4);
    const lenBuf = gpu.upload('len', Uint32Array.of(99, len));
    const dispatch = await attentionDecode(gpu, {
      d,
      nHead: H,
      maxLen,
      q: { buffer: qBuf, offset: 3 },
      kv: { buffer: kvBuf },
      length: { buffer: lenBuf, offset: 1 },
      out: { buffer: out, offset: 5 },
    });
    await gpu.run([dispatch]);
    const got = await gpu.readF32(out, 5, d);
    const ref = attention(qkv, 1, len, d, H, { causal: true }).out.subarray((len - 1) * d);
    expectClose(got, ref, 1e-5, `attention decode d=${d} H=${H} len=${len}`);
    gpu.release(dispatch);
    gpu.free(qBuf, kvBuf, out, lenBuf);
  });

  test('the length is read on the GPU each run: one dispatch serves every step; length 0 gives zeros', async () => {
    const d = 12;
    const H = 3;
    const maxLen = 9;
    const qkv = rand.normal(maxLen * 3 * d);
    const kv = new Float32Array(maxLen * 2 * d);
    for (let t = 0; t < maxLen; t++) kv.set(qkv.subarray(t * 3 * d + d, (t + 1) * 3 * d), t * 2 * d);
    const q = gpu.buffer('q', d * 4);
    const kvBuf = gpu.upload('kv', kv);
    const out = gpu.buffer('out', d * 4);
    const lenBuf = gpu.buffer('len', 4);
    const dispatch = await attentionDecode(gpu, {
      d,
      nHead: H,
      maxLen,
      q: { buffer: q },
      kv: { buffer: kvBuf },
      length: { buffer: lenBuf },
      out: { buffer: out },
    });
    const ref = attention(qkv, 1, maxLen, d, H, { causal: true }).out;
    for (const len of [1, 4, 9]) {
      gpu.write(q, qkv.subarray((len - 1) * 3 * d, (len - 1) * 3 * d + d));
      gpu.write(lenBuf, Uint32Array.of(len));
      await gpu.run([dispatch]);
      expectClose(await gpu.readF32(out), ref.subarray((len - 1) * d, len * d), 1e-5, `length ${len}`);
    }
    gpu.write(lenBuf, Uint32Array.of(0));
    await gpu.run([dispatch]);
    expect(Array.from(await gpu.readF32(out))).toEqual(new Array(d).fill(0));
    gpu.release(dispatch);
    gpu.free(q, kvBuf, out, lenBuf);
  });

  test('refuses bad shapes and aliasing', async () => {
    const b = gpu.buffer('b', 4096);
    await expect(
      attentionDecode(gpu, {
        d: 10,
        nHead: 3,
        maxLen: 4,
        q: { buffer: b },
        kv: { buffer: b },
        length: { buffer: b },
        out: { buffer: gpu.buffer('o', 64) },
      }),
    ).rejects.toThrow(/not a multiple of nHead/);
    await expect(
      attentionDecode(gpu, {
        d: 8,
        nHead: 2,
        maxLen: 4,
        q: { buffer: b },
        kv: { buffer: b },
        length: { buffer: b },
        out: { buffer: b },
      }),
    ).rejects.toThrow(/out must not share/);
    await expect(
      attentionDecode(gpu, {
        d: 8,
        nHead: 2,
        maxLen: 1000,
        q: { buffer: b },
        kv: { buffer: b },
        length: { buffer: b },
        out: { buffer: gpu.buffer('o', 64) },
      }),
    ).rejects.toThrow(/kv needs/);
  });
});

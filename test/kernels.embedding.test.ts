// Token + position embedding forward and deterministic backward against float64: wte and wpe
// at offsets in one parameter buffer (their gradients likewise in one gradient buffer), many
// repeated tokens, B·T no multiple of any workgroup size, dispatches built once and reused
// across batches with different numbers of distinct tokens, and bit-for-bit repeatability.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import {
  createEmbeddingIndex,
  embeddingBackward,
  embeddingBackwardIndex,
  embeddingForward,
  scatterAddRows,
  freeEmbeddingIndex,
  writeEmbeddingIndex,
} from '../src/kernels/embedding.js';
import { embedding as embeddingRef, embeddingBackward as embeddingBackwardRef } from '../src/reference/embedding.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

function delta(got: Float32Array, before: Float32Array): Float64Array {
  return Float64Array.from(got, (v, i) => v - before[i]);
}

test('embeddingBackwardIndex groups positions by token, in order', () => {
  const idx = embeddingBackwardIndex([5, 2, 5, 0, 2, 5, 9]);
  expect(Array.from(idx.uniq)).toEqual([0, 2, 5, 9]);
  expect(Array.from(idx.starts)).toEqual([0, 1, 3, 6, 7]);
  expect(Array.from(idx.order)).toEqual([3, 1, 4, 0, 2, 5, 6]);
  expect(() => embeddingBackwardIndex([1, 10], 10)).toThrow(/token 10 at position 1/);
  expect(() => embeddingBackwardIndex([1, -1])).toThrow(/token -1/);
});

// Layout: params = [gap 7 | wte V·d | gap 3 | wpe P·d | gap 2], gradients the same; aligned: gaps of 8 and 4, so
// that with d a multiple of 4 the kernels read and write 4 floats at a time.
function layout(V: number, P: number, d: number, aligned = false) {
  const offWte = aligned ? 8 : 7;
  const offWpe = offWte + V * d + (aligned ? 4 : 3);
  return { offWte, offWpe, total: offWpe + P * d + 2 };
}

const SHAPES: [number, number, number, number, number][] = [
  // B, T, d, V, P
  [1, 1, 5, 3, 2],
  [3, 7, 64, 5, 9], // 21 positions over 5 tokens: many duplicates
  [2, 67, 130, 1000, 67],
  [5, 13, 769, 2, 20], // 65 positions over 2 tokens
];

describe.each([
  ...SHAPES.map((s) => [...s, false] as const),
  [3, 7, 64, 5, 9, true] as const,
  [2, 9, 68, 30, 9, true] as const,
])('B=%i T=%i d=%i V=%i P=%i, aligned %s', (B, T, d, V, P, aligned) => {
  test('forward and backward (accumulating) against float64', async () => {
    const { offWte, offWpe, total } = layout(V, P, d, aligned);
    const o = aligned ? 4 : 1; // out's and dout's offsets
    const params = rand.normal(total);
    const grad0 = rand.uniform(total);
    const wte = params.subarray(offWte, offWte + V * d);
    const wpe = params.subarray(offWpe, offWpe + P * d);
    const tokens = rand.int(B * T, V);
    const dout = rand.normal(B * T * d);
    const Prm = gpu.upload('params', params);
    const G = gpu.upload('grad', grad0);
    const Tok = gpu.upload('tokens', Uint32Array.from([99, ...tokens]));
    const Out = gpu.buffer('out', (B * T * d + o) * 4);
    const Dout = gpu.upload('dout', Float32Array.from([...new Array(2 * o).fill(0), ...dout]));
    const index = createEmbeddingIndex(gpu, B * T);
    const fwd = await embeddingForward(gpu, {
      B,
      T,
      d,
      tokens: { buffer: Tok, offset: 1 },
      wte: { buffer: Prm, offset: offWte },
      wpe: { buffer: Prm, offset: offWpe },
      out: { buffer: Out, offset: o },
    });
    const bwd = await embeddingBackward(gpu, {
      B,
      T,
      d,
      dout: { buffer: Dout, offset: 2 * o },
      index,
      dwte: { buffer: G, offset: offWte },
      dwpe: { buffer: G, offset: offWpe },
    });
    // The other adapter kind's workgroup (64 invocations here, 8 on hardware) sums in the same order.
    const G2 = gpu.upload('grad 2', grad0);
    const other = await scatterAddRows(gpu, {
      n: B * T,
      d,
      src: { buffer: Dout, offset: 2 * o },
      index,
      dst: { buffer: G2, offset: offWte },
      wg: gpu.adapter.kind === 'software' ? 64 : 8,
    });
    writeEmbeddingIndex(gpu, index, tokens, V);
    await gpu.run([fwd, ...bwd, other]);
    const what = `embedding B=${B} T=${T} d=${d} V=${V}`;
    expectClose(await gpu.readF32(Out, o, B * T * d), embeddingRef(wte, wpe, tokens, B, T, d), 1e-6, `${what} forward`);
    const ref = embeddingBackwardRef(dout, wte, wpe, tokens, B, T, d);
    const g = await gpu.readF32(G, 0, total);
    expectClose(
      delta(g.subarray(offWte, offWte + V * d), grad0.subarray(offWte, offWte + V * d)),
      ref.dwte,
      1e-5,
      `${what} dwte`,
    );
    expectClose(
      delta(g.subarray(offWpe, offWpe + P * d), grad0.subarray(offWpe, offWpe + P * d)),
      ref.dwpe,
      1e-5,
      `${what} dwpe`,
    );
    for (const i of [0, 6, offWte + V * d, offWpe - 1, total - 1]) expect(g[i]).toBe(grad0[i]); // gaps untouched
    const g2 = await gpu.readF32(G2, offWte, V * d);
    expect(Buffer.from(g2.buffer).equals(Buffer.from(g.slice(offWte, offWte + V * d).buffer))).toBe(true);
    gpu.release(fwd, ...bwd, other);
    freeEmbeddingIndex(gpu, index);
    gpu.free(Prm, G, G2, Tok, Out, Dout);
  });
});

test(
  'dispatches built once, reused over batches with different distinct-token counts; grid folded; bit-for-bit ' +
    'repeatable',
  async () => {
    const B = 3;
    const T = 29;
    const d = 67;
    const V = 40;
    const P = 31;
    const { offWte, offWpe, total } = layout(V, P, d);
    const params = rand.normal(total);
    const grad0 = rand.uniform(total);
    const wte = params.subarray(offWte, offWte + V * d);
    const wpe = params.subarray(offWpe, offWpe + P * d);
    const G = gpu.upload('grad', grad0);
    const G2 = gpu.upload('grad 2', grad0);
    const Dout = gpu.buffer('dout', B * T * d * 4);
    const index = createEmbeddingIndex(gpu, B * T);
    const spec = { B, T, d, dout: { buffer: Dout }, index, maxGroupsX: 4 };
    const bwd = await embeddingBackward(gpu, {
      ...spec,
      dwte: { buffer: G, offset: offWte },
      dwpe: { buffer: G, offset: offWpe },
    });
    const bwd2 = await embeddingBackward(gpu, {
      ...spec,
      dwte: { buffer: G2, offset: offWte },
      dwpe: { buffer: G2, offset: offWpe },
    });
    expect(bwd[0].workgroups[1]).toBeGreaterThan(1);
    const want = Float64Array.from(grad0);
    const batches = [
      rand.int(B * T, V),
      rand.int(B * T, 3),
      Uint32Array.from({ length: B * T }, () => 7),
      rand.int(B * T, V),
    ];
    for (const tokens of batches) {
      const dout = rand.normal(B * T * d);
      gpu.write(Dout, dout);
      const host = writeEmbeddingIndex(gpu, index, tokens, V);
      await gpu.run([...bwd, ...bwd2]);
      const ref = embeddingBackwardRef(dout, wte, wpe, tokens, B, T, d);
      for (let i = 0; i < V * d; i++) want[offWte + i] += ref.dwte[i];
      for (let i = 0; i < P * d; i++) want[offWpe + i] += ref.dwpe[i];
      const g = await gpu.readF32(G, 0, total);
      expectClose(g, want, 1e-5, `after a batch with ${host.uniq.length} distinct tokens`);
      const g2 = await gpu.readF32(G2, 0, total);
      expect(Buffer.from(g.buffer).equals(Buffer.from(g2.buffer))).toBe(true);
    }
    gpu.release(...bwd, ...bwd2);
    freeEmbeddingIndex(gpu, index);
    gpu.free(G, G2, Dout);
  },
);

// d = 45: one float a load; d = 68 with offsets that are multiples of 4: 4 floats a load.
test.each([45, 68])('forward with the grid folded into y, i32 tokens, offsets, d = %i', async (d) => {
  const B = 2;
  const T = 33;
  const V = 11;
  const wte = rand.normal(V * d);
  const wpe = rand.normal(T * d);
  const tokens = Int32Array.from(rand.int(B * T, V));
  const W = gpu.upload('wte', Float32Array.from([1, 2, 3, 4, ...wte]));
  const Pb = gpu.upload('wpe', Float32Array.from([...new Float32Array(8), ...wpe]));
  const Tok = gpu.upload('tokens', Int32Array.from([0, 0, 0, ...tokens]));
  const Out = gpu.buffer('out', (12 + B * T * d) * 4);
  const f = await embeddingForward(gpu, {
    B,
    T,
    d,
    tokens: { buffer: Tok, offset: 3 },
    wte: { buffer: W, offset: 4 },
    wpe: { buffer: Pb, offset: 8 },
    out: { buffer: Out, offset: 12 },
    maxGroupsX: 3,
  });
  expect(f.workgroups[1]).toBeGreaterThan(1);
  await gpu.run([f]);
  expectClose(await gpu.readF32(Out, 12, B * T * d), embeddingRef(wte, wpe, tokens, B, T, d), 1e-6, 'folded forward');
  expect(Array.from(await gpu.readF32(Out, 0, 12))).toEqual(new Array(12).fill(0));
  gpu.release(f);
  gpu.free(W, Pb, Tok, Out);
});

test('bad specs are refused with the reason', async () => {
  const A = gpu.buffer('a', 64);
  const G = gpu.buffer('g', 64);
  const H = gpu.buffer('h', 64);
  await expect(
    embeddingForward(gpu, {
      B: 1,
      T: 0,
      d: 4,
      tokens: { buffer: A },
      wte: { buffer: G },
      wpe: { buffer: G },
      out: { buffer: H },
    }),
  ).rejects.toThrow(/T must be a positive integer/);
  await expect(
    embeddingForward(gpu, {
      B: 1,
      T: 2,
      d: 4,
      tokens: { buffer: A },
      wte: { buffer: G },
      wpe: { buffer: G },
      out: { buffer: G },
    }),
  ).rejects.toThrow(/out must not share/);
  const index = createEmbeddingIndex(gpu, 4);
  await expect(
    embeddingBackward(gpu, { B: 1, T: 2, d: 4, dout: { buffer: A }, index, dwte: { buffer: G }, dwpe: { buffer: H } }),
  ).rejects.toThrow(/same \(gradient\) buffer/);
  await expect(
    embeddingBackward(gpu, {
      B: 2,
      T: 3,
      d: 4,
      dout: { buffer: A },
      index,
      dwte: { buffer: G },
      dwpe: { buffer: G, offset: 8 },
    }),
  ).rejects.toThrow(/needs/);
  expect(() => writeEmbeddingIndex(gpu, index, [1, 2, 3, 4, 5])).toThrow(/holds 4 entries/);
  freeEmbeddingIndex(gpu, index);
  gpu.free(A, G, H);
});

// Fused multi-head attention forward (out, lse) and backward (dqkv) against the float64 reference,
// causal and bidirectional, with and without key padding lengths (rows of length 0, 1 and T), on
// odd shapes whose T is not a multiple of the tile, with fresh random inputs, under the software and
// the hardware tiling and odd ones; huge scores stay finite, results repeat bit for bit, one scratch
// serves several layers, what is only read may share a buffer, memory is linear in T, and bad specs
// are refused. qkv may also be packed f16 (odd offsets in halves): checked against float64 on the f16-rounded qkv.
import { jest } from '@jest/globals';
import { F16_PATHS, openTestGpu, useF16TestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import {
  ATTENTION_TILES,
  attentionBackward,
  attentionBuffersBytes,
  attentionForward,
  attentionScratchBytes,
  createAttentionBuffers,
  createAttentionScratch,
  freeAttentionBuffers,
  freeAttentionScratch,
  type AttentionShape,
  type AttentionTile,
} from '../src/kernels/attention.js';
import { attention as attentionRef, attentionBackward as attentionBackwardRef } from '../src/reference/attention.js';
import { packF16, roundF16 } from '../src/util/f16.js';

// Each head width, tiling, mask and load width is a shader of its own. Without a shader cache, Mesa 25's llvmpipe
// compiles them several times slower than Mesa 22 did; on a slow 2-core VM the file took 30 minutes, and tests that
// compile a dozen variants passed jest's 120 s. With a warm cache the file takes 4 minutes there.
jest.setTimeout(900_000);

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

// Element offsets into the caller's buffers, so that offsets are exercised everywhere: multiples of 4 let the kernels
// read 4 floats a load where heads are a multiple of 4 wide, the others make them read one at a time.
type Offsets = Record<'qkv' | 'out' | 'dout' | 'dqkv' | 'lengths', number>;
const ALIGNED: Offsets = { qkv: 4, out: 0, dout: 8, dqkv: 4, lengths: 1 };
const UNALIGNED: Offsets = { qkv: 3, out: 1, dout: 5, dqkv: 2, lengths: 1 };

interface Result {
  out: Float32Array;
  lse: Float32Array;
  dqkv: Float32Array;
}

/** The adapter's default tiling, each adapter kind's, and odd ones (blocks of 5 and 2, workgroups of 3x2 and 5x3). */
const TILES: [string, AttentionTile | undefined][] = [
  ['default', undefined],
  ['hardware', ATTENTION_TILES.hardware],
  ['software', ATTENTION_TILES.software],
  ['staged 3x2 rows, blocks of 5', { WG: 3, QR: 2, BC: 5, STAGE: true }],
  ['direct 5x3 rows, blocks of 2', { WG: 5, QR: 3, BC: 2, STAGE: false }],
];

/**
 * Forward then backward on the GPU; out and dqkv start as NaN so that anything not written shows. f16: qkv is uploaded
 * as packed halves (OFF.qkv counted in halves), rounded on the way.
 */
async function runGpu(
  shape: AttentionShape,
  causal: boolean,
  qkv: Float32Array,
  dout: Float32Array,
  lengths?: Uint32Array,
  tile?: AttentionTile,
  OFF: Offsets = ALIGNED,
  f16 = false,
): Promise<Result> {
  const { B, T, d, nHead } = shape;
  const pad = (x: Float32Array, off: number) => {
    const p = new Float32Array(off + x.length + 3).fill(7);
    p.set(x, off);
    return p;
  };
  const QKV = gpu.upload('qkv', f16 ? packF16(pad(qkv, OFF.qkv)) : pad(qkv, OFF.qkv));
  const DOUT = gpu.upload('dout', pad(dout, OFF.dout));
  const OUT = gpu.upload('out', new Float32Array(OFF.out + B * T * d).fill(NaN));
  const DQKV = gpu.upload('dqkv', new Float32Array(OFF.dqkv + 3 * B * T * d).fill(NaN));
  const LEN = lengths && gpu.upload('lengths', Uint32Array.from([99, ...lengths]));
  const layer = createAttentionBuffers(gpu, { ...shape, label: 'layer0' });
  const scratch = createAttentionScratch(gpu, shape);
  const common = {
    ...shape,
    tile,
    causal,
    qkv: { buffer: QKV, offset: OFF.qkv, dtype: f16 ? ('f16' as const) : undefined },
    out: { buffer: OUT, offset: OFF.out },
    layer,
    lengths: LEN && { buffer: LEN, offset: OFF.lengths },
  };
  const fw = await attentionForward(gpu, common);
  const bw = await attentionBackward(gpu, {
    ...common,
    scratch,
    dout: { buffer: DOUT, offset: OFF.dout },
    dqkv: { buffer: DQKV, offset: OFF.dqkv },
  });
  await gpu.run([fw], 'attention forward');
  await gpu.run(bw, 'attention backward');
  const out = await gpu.readF32(OUT, OFF.out, B * T * d);
  const lse = await gpu.readF32(layer.lse, 0, B * nHead * T);
  const dqkv = await gpu.readF32(DQKV, OFF.dqkv, 3 * B * T * d);
  gpu.release(fw, ...bw);
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  gpu.free(QKV, DOUT, OUT, DQKV, LEN);
  return { out, lse, dqkv };
}

/** Random lengths with a row of 0 (sees nothing), of 1 and of T where B allows. */
function randomLengths(B: number, T: number): Uint32Array {
  const L = rand.int(B, T + 1);
  if (B > 1) L[0] = 0;
  if (B > 2) L[1] = 1;
  L[B - 1] = T;
  return L;
}

async function check(
  shape: AttentionShape,
  causal: boolean,
  withLengths: boolean,
  tile?: AttentionTile,
  offsets = ALIGNED,
  f16 = false,
) {
  const { B, T, d, nHead } = shape;
  // An f16 qkv is compared with float64 on the values it holds; the kernels' arithmetic is f32 either way, so the
  // tolerances are the same.
  const drawn = rand.normal(B * T * 3 * d);
  const qkv = f16 ? drawn.map(roundF16) : drawn;
  const dout = rand.normal(B * T * d);
  const lengths = withLengths ? randomLengths(B, T) : undefined;
  const got = await runGpu(shape, causal, f16 ? drawn : qkv, dout, lengths, tile, offsets, f16);
  const opts = { causal, lengths };
  const what =
    `${JSON.stringify(shape)} causal=${causal} lengths=${lengths ? `[${lengths}]` : 'none'} ` +
    `tile=${JSON.stringify(tile ?? 'default')} offsets=${JSON.stringify(offsets)} qkv=${f16 ? 'f16' : 'f32'}`;
  const ref = attentionRef(qkv, B, T, d, nHead, opts);
  expectClose(got.out, ref.out, 1e-5, `out ${what}`);
  // A query that sees no key has lse −∞ in the reference and 0 here (its backward never reads it).
  expectClose(
    got.lse,
    ref.lse.map((x) => (x === -Infinity ? 0 : x)),
    1e-5,
    `lse ${what}`,
  );
  expectClose(got.dqkv, attentionBackwardRef(dout, qkv, B, T, d, nHead, opts).dqkv, 1e-5, `dqkv ${what}`);
}

// T never a multiple of the tiles' rows or blocks (8·4, 16, 64, 3·2, 5, 5·3, 2) except T=1; heads 4, 5, 4, 16 and 3
// wide.
const SHAPES: AttentionShape[] = [
  { B: 3, T: 7, d: 12, nHead: 3 },
  { B: 1, T: 33, d: 20, nHead: 4 },
  { B: 3, T: 1, d: 8, nHead: 2 },
  { B: 3, T: 67, d: 32, nHead: 2 },
  { B: 2, T: 19, d: 3, nHead: 1 },
];
const name = (s: AttentionShape) => `B=${s.B} T=${s.T} d=${s.d} nHead=${s.nHead}`;

describe.each([true, false])('causal=%s', (causal) => {
  test.each(SHAPES.map((s) => [name(s), s] as const))('%s', async (_n, shape) => {
    await check(shape, causal, false);
  });
  test.each(SHAPES.map((s) => [name(s), s] as const))('%s with key padding lengths', async (_n, shape) => {
    await check(shape, causal, true);
  });
  test('offsets that are not multiples of 4 (one float a load), with and without lengths', async () => {
    for (const shape of SHAPES)
      for (const lengths of [false, true]) await check(shape, causal, lengths, undefined, UNALIGNED);
  });
});

test.each(TILES.slice(1, 3))(
  'the %s tiling: every shape, causal and not, with and without lengths',
  async (_n, tile) => {
    for (const shape of SHAPES)
      for (const causal of [true, false])
        for (const lengths of [false, true]) await check(shape, causal, lengths, tile, lengths ? UNALIGNED : ALIGNED);
  },
);

// Odd tilings: padded rows (lengths include a full row), causal with offsets multiples of 4, bidirectional without.
test.each(TILES.slice(3))('the %s tiling: every shape, causal and not, with lengths', async (_n, tile) => {
  for (const shape of SHAPES)
    for (const causal of [true, false]) await check(shape, causal, true, tile, causal ? ALIGNED : UNALIGNED);
});

// Packed f16 qkv, heads 4, 5, 4, 16 and 3 wide: at 4 halves in (two words a load where heads are a multiple of 4
// wide) and at 3 (odd: one half a load), under the default tiling and then every other one; through both f16 kernel
// paths (Gpu.f16Kernels), each on a device of its own.
describe.each(F16_PATHS)('f16 qkv, %s kernels', (kernels, device) => {
  useF16TestGpu(
    kernels,
    device,
    () => gpu,
    (g) => (gpu = g),
  );
  // f16 changes only how q, k and v are read, which depends on the head width and the offsets, not on the mask (the
  // f32 tests above cross every mask with every shape): so every shape at both offsets, the four (causal, lengths)
  // pairs taking turns over them. Each combination is a shader of its own: with the full cross product (40 checks a
  // path) this file compiled 403 shaders and took 1,155 s of a CI run on a 2-core VM with an empty shader cache.
  test('every shape at both offsets, each (causal, lengths) pair in turn', async () => {
    let turn = 0;
    for (const shape of SHAPES)
      for (const offsets of [ALIGNED, UNALIGNED]) {
        await check(shape, turn % 2 === 0, (turn >> 1) % 2 === 0, undefined, offsets, true);
        turn++;
      }
  });
  // Every tiling on the packed path, every shape, causal and bidirectional in turn; the shader-f16 path, which
  // differs only in its loads, under the default one (lavapipe takes minutes to compile every tiling without a
  // shader cache).
  if (kernels === 'packed-f16')
    test.each(TILES.slice(1))('the %s tiling: every shape, with lengths, causal and not in turn', async (_n, tile) => {
      for (const [i, shape] of SHAPES.entries())
        await check(shape, i % 2 === 0, true, tile, i % 2 ? ALIGNED : UNALIGNED, true);
    });
});

test('a long row (T=300, many key blocks), causal and not, with lengths', async () => {
  for (const causal of [true, false]) await check({ B: 3, T: 300, d: 16, nHead: 2 }, causal, true);
});

// llvmpipe silently stops an invocation after 65,535 loop iterations, all its loops counted together: a query's walk
// over 1,024 keys with GPT-2's 64-wide heads must not come near it.
// Its 64-wide heads make the largest attention shaders: compiling them took 55 s on Mesa 25's llvmpipe without a
// shader cache (8 s on Mesa 22).
test('GPT-2 head width over 1,024 positions (T=1024, hd=64), causal', async () => {
  await check({ B: 1, T: 1024, d: 64, nHead: 1 }, true, false);
});

test('huge scores (qkv x 1e3) give finite outputs and gradients', async () => {
  const shape = { B: 2, T: 9, d: 12, nHead: 3 };
  for (const [causal, tile] of [
    [true, undefined],
    [false, ATTENTION_TILES.hardware],
  ] as const) {
    const qkv = rand.normal(2 * 9 * 36).map((x) => x * 1e3);
    const dout = rand.normal(2 * 9 * 12);
    const got = await runGpu(shape, causal, qkv, dout, Uint32Array.from([9, 4]), tile);
    expect(got.out.every(Number.isFinite)).toBe(true);
    expect(got.dqkv.every(Number.isFinite)).toBe(true);
    // Each output is a convex combination of values, so no larger than the largest |v|.
    let vmax = 0;
    for (let i = 0; i < qkv.length; i++) if (i % 36 >= 24) vmax = Math.max(vmax, Math.abs(qkv[i]));
    expect(Math.max(...got.out.map(Math.abs))).toBeLessThanOrEqual(vmax * (1 + 1e-6));
  }
});

test('results repeat bit for bit', async () => {
  const shape = { B: 2, T: 37, d: 24, nHead: 3 };
  const qkv = rand.normal(2 * 37 * 72);
  const dout = rand.normal(2 * 37 * 24);
  const lengths = Uint32Array.from([37, 20]);
  for (const tile of [undefined, ATTENTION_TILES.hardware]) {
    const a = await runGpu(shape, true, qkv, dout, lengths, tile);
    const b = await runGpu(shape, true, qkv, dout, lengths, tile);
    expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
    expect(Buffer.from(a.dqkv.buffer).equals(Buffer.from(b.dqkv.buffer))).toBe(true);
  }
});

test('one scratch (sized for a larger shape) serves several layers: forward 1, 2, backward 2, 1', async () => {
  const shape = { B: 2, T: 11, d: 16, nHead: 4 };
  const { B, T, d, nHead } = shape;
  const scratch = createAttentionScratch(gpu, { B: 3, T: 16, d: 16, nHead: 4 });
  const inputs = [0, 1].map(() => ({ qkv: rand.normal(B * T * 3 * d), dout: rand.normal(B * T * d) }));
  const QKV = inputs.map((x, i) => gpu.upload(`qkv${i}`, x.qkv));
  const DOUT = inputs.map((x, i) => gpu.upload(`dout${i}`, x.dout));
  const OUT = inputs.map((_, i) => gpu.buffer(`out${i}`, B * T * d * 4));
  const DQKV = inputs.map((_, i) => gpu.buffer(`dqkv${i}`, 3 * B * T * d * 4));
  const layers = inputs.map((_, i) => createAttentionBuffers(gpu, { ...shape, label: `layer${i}` }));
  const spec = (i: number) => ({
    ...shape,
    causal: false,
    qkv: { buffer: QKV[i] },
    out: { buffer: OUT[i] },
    layer: layers[i],
  });
  const fw = [await attentionForward(gpu, spec(0)), await attentionForward(gpu, spec(1))];
  const bw = [
    ...(await attentionBackward(gpu, { ...spec(1), scratch, dout: { buffer: DOUT[1] }, dqkv: { buffer: DQKV[1] } })),
    ...(await attentionBackward(gpu, { ...spec(0), scratch, dout: { buffer: DOUT[0] }, dqkv: { buffer: DQKV[0] } })),
  ];
  await gpu.run([...fw, ...bw], 'two layers');
  for (const i of [0, 1]) {
    const opts = { causal: false };
    const ref = attentionRef(inputs[i].qkv, B, T, d, nHead, opts);
    expectClose(await gpu.readF32(OUT[i]), ref.out, 1e-5, `out layer ${i}`);
    expectClose(
      await gpu.readF32(DQKV[i]),
      attentionBackwardRef(inputs[i].dout, inputs[i].qkv, B, T, d, nHead, opts).dqkv,
      1e-5,
      `dqkv layer ${i}`,
    );
  }
  gpu.release(...fw, ...bw);
  layers.forEach((l) => freeAttentionBuffers(gpu, l));
  freeAttentionScratch(gpu, scratch);
  gpu.free(...QKV, ...DOUT, ...OUT, ...DQKV);
});

test('qkv, dout and lengths may share one buffer (read only); a custom scale', async () => {
  const shape = { B: 2, T: 9, d: 12, nHead: 2 };
  const { B, T, d, nHead } = shape;
  const qkv = rand.normal(B * T * 3 * d);
  const dout = rand.normal(B * T * d);
  const lengths = [9, 5];
  const at = { qkv: 1, dout: 2 + 3 * B * T * d, lengths: 3 + 4 * B * T * d };
  const arena = new Float32Array(at.lengths + B).fill(NaN);
  arena.set(qkv, at.qkv);
  arena.set(dout, at.dout);
  new Uint32Array(arena.buffer).set(lengths, at.lengths);
  const X = gpu.upload('arena', arena);
  const OUT = gpu.buffer('out', B * T * d * 4);
  const DQKV = gpu.buffer('dqkv', 3 * B * T * d * 4);
  const layer = createAttentionBuffers(gpu, shape);
  const scratch = createAttentionScratch(gpu, shape);
  const common = {
    ...shape,
    causal: true,
    scale: 0.37,
    qkv: { buffer: X, offset: at.qkv },
    lengths: { buffer: X, offset: at.lengths },
    out: { buffer: OUT },
    layer,
  };
  const ds = [
    await attentionForward(gpu, common),
    ...(await attentionBackward(gpu, {
      ...common,
      scratch,
      dout: { buffer: X, offset: at.dout },
      dqkv: { buffer: DQKV },
    })),
  ];
  await gpu.run(ds);
  const opts = { causal: true, lengths, scale: 0.37 };
  expectClose(await gpu.readF32(OUT), attentionRef(qkv, B, T, d, nHead, opts).out, 1e-5, 'out');
  expectClose(
    await gpu.readF32(DQKV),
    attentionBackwardRef(dout, qkv, B, T, d, nHead, opts).dqkv,
    1e-5,
    'dqkv from the shared buffer',
  );
  gpu.release(...ds);
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  gpu.free(X, OUT, DQKV);
});

test('memory is linear in T: the formulas match what is allocated', () => {
  const shape = { B: 2, T: 10, d: 12, nHead: 3 };
  const before = gpu.memory().bytesNow;
  const layer = createAttentionBuffers(gpu, shape);
  expect(layer.bytes).toBe(attentionBuffersBytes(shape));
  expect(layer.bytes).toBe(4 * 2 * 3 * 10);
  const scratch = createAttentionScratch(gpu, shape);
  expect(scratch.bytes).toBe(attentionScratchBytes(shape));
  expect(scratch.bytes).toBe(4 * 2 * 3 * 10);
  expect(gpu.memory().bytesNow - before).toBe(2 * 240); // multiples of 16: no rounding
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  expect(gpu.memory().bytesNow).toBe(before);
  const long = { B: 16, T: 512, d: 512, nHead: 8 };
  expect(attentionBuffersBytes({ ...long, T: 1024 })).toBe(2 * attentionBuffersBytes(long));
});

test('bad specs are refused with the reason', async () => {
  const shape = { B: 1, T: 4, d: 8, nHead: 2 };
  // Sized for a larger batch, so that a tensor placed in them is refused for where it lives, not for its size.
  const layer = createAttentionBuffers(gpu, { ...shape, B: 64 });
  const scratch = createAttentionScratch(gpu, { ...shape, B: 64 });
  const QKV = gpu.buffer('qkv', 4 * 96);
  const OUT = gpu.buffer('out', 4 * 32);
  const DOUT = gpu.buffer('dout', 4 * 32);
  const DQKV = gpu.buffer('dqkv', 4 * 96);
  const base = { ...shape, causal: true, qkv: { buffer: QKV }, out: { buffer: OUT }, layer };
  const back = { ...base, scratch, dout: { buffer: DOUT }, dqkv: { buffer: DQKV } };
  expect(() => createAttentionBuffers(gpu, { B: 1, T: 4, d: 9, nHead: 2 })).toThrow(/not a multiple of nHead/);
  await expect(attentionForward(gpu, { ...base, T: 5 })).rejects.toThrow(/needs \d+ bytes/);
  await expect(attentionForward(gpu, { ...base, out: { buffer: OUT, offset: 1 } })).rejects.toThrow(/out needs/);
  await expect(attentionForward(gpu, { ...base, out: { buffer: QKV } })).rejects.toThrow(
    /out must not share a buffer with qkv/,
  );
  await expect(attentionBackward(gpu, { ...back, dout: { buffer: DQKV, offset: 64 } })).rejects.toThrow(
    /dqkv must not share a buffer with dout/,
  );
  await expect(attentionForward(gpu, { ...base, out: { buffer: layer.lse } })).rejects.toThrow(/must not live in/);
  await expect(attentionBackward(gpu, { ...back, dout: { buffer: scratch.dsum } })).rejects.toThrow(/must not live in/);
  await expect(attentionForward(gpu, { ...base, tile: { WG: 0, QR: 1, BC: 4, STAGE: false } })).rejects.toThrow(
    /WG, QR and BC positive integers/,
  );
  await expect(attentionForward(gpu, { ...base, tile: { WG: 8, QR: 1, BC: 4096, STAGE: true } })).rejects.toThrow(
    /lower BC/,
  );
  // Only qkv may be f16, sized in halves: 96 of them fill half of QKV's 384 bytes.
  const f16 = (buffer: GPUBuffer, offset = 0) => ({ buffer, offset, dtype: 'f16' as const });
  await expect(attentionForward(gpu, { ...base, out: f16(OUT) })).rejects.toThrow(
    /^attention: out must be f32 \(only qkv may be f16\)/,
  );
  for (const name of ['out', 'dout', 'dqkv'] as const)
    await expect(attentionBackward(gpu, { ...back, qkv: f16(QKV), [name]: f16(back[name].buffer) })).rejects.toThrow(
      new RegExp(`^attention: ${name} must be f32`),
    );
  const LEN = gpu.buffer('lengths', 4);
  await expect(attentionForward(gpu, { ...base, lengths: f16(LEN) })).rejects.toThrow(/lengths must be f32/);
  const QKV16 = gpu.buffer('qkv f16', 2 * 96);
  gpu.release(await attentionForward(gpu, { ...base, qkv: f16(QKV16) }));
  await expect(attentionForward(gpu, { ...base, qkv: f16(QKV16, 1) })).rejects.toThrow(/qkv needs 194 bytes/);
  gpu.free(LEN, QKV16);
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  gpu.free(QKV, OUT, DOUT, DQKV);
});

// Multi-head self-attention forward (out) and backward (dqkv) against the float64 reference,
// causal and bidirectional, with and without key padding lengths (zero-length rows included),
// on odd shapes with fresh random inputs; huge scores stay finite, results repeat bit for bit,
// one scratch serves several layers, and bad specs are refused.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import type { MatmulTile } from '../src/kernels/matmul.js';
import { TILES } from '../src/kernels/matmul.js';
import {
  ROW_LAYOUTS,
  type RowLayout,
  attentionBackward,
  attentionBuffersBytes,
  attentionForward,
  attentionScratchBytes,
  createAttentionBuffers,
  createAttentionScratch,
  freeAttentionBuffers,
  freeAttentionScratch,
  type AttentionShape,
} from '../src/kernels/attention.js';
import { attention as attentionRef, attentionBackward as attentionBackwardRef } from '../src/reference/attention.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

// Element offsets into the caller's buffers, so that offsets are exercised everywhere.
const OFF = { qkv: 3, out: 1, dout: 5, dqkv: 2, lengths: 1 };

interface Result {
  out: Float32Array;
  dqkv: Float32Array;
}
/** Kernel configuration: the adapter's defaults, or another adapter kind's, or an odd one. */
interface Config {
  rowLayout?: RowLayout;
  tile?: MatmulTile;
}
const CONFIGS: [string, Config][] = [
  ['default', {}],
  ['hardware', { rowLayout: ROW_LAYOUTS.hardware, tile: TILES.hardware }],
  ['software', { rowLayout: ROW_LAYOUTS.software, tile: TILES.software }],
  ['3 rows x 2 invocations', { rowLayout: { ROWS: 3, TPR: 2 } }],
];

/** Forward then backward on the GPU; dqkv starts as NaN so that anything not overwritten shows. */
async function runGpu(
  shape: AttentionShape,
  causal: boolean,
  qkv: Float32Array,
  dout: Float32Array,
  lengths?: Uint32Array,
  config: Config = {},
): Promise<Result> {
  const { B, T, d } = shape;
  const pad = (x: Float32Array, off: number) => {
    const p = new Float32Array(off + x.length + 3).fill(7);
    p.set(x, off);
    return p;
  };
  const QKV = gpu.upload('qkv', pad(qkv, OFF.qkv));
  const DOUT = gpu.upload('dout', pad(dout, OFF.dout));
  const OUT = gpu.upload('out', new Float32Array(OFF.out + B * T * d).fill(NaN));
  const DQKV = gpu.upload('dqkv', new Float32Array(OFF.dqkv + 3 * B * T * d).fill(NaN));
  const LEN = lengths && gpu.upload('lengths', Uint32Array.from([99, ...lengths]));
  const layer = createAttentionBuffers(gpu, { ...shape, label: 'layer0' });
  const scratch = createAttentionScratch(gpu, shape);
  const common = {
    ...shape,
    ...config,
    causal,
    qkv: { buffer: QKV, offset: OFF.qkv },
    layer,
    scratch,
    lengths: LEN && { buffer: LEN, offset: OFF.lengths },
  };
  const fw = await attentionForward(gpu, { ...common, out: { buffer: OUT, offset: OFF.out } });
  const bw = await attentionBackward(gpu, {
    ...common,
    dout: { buffer: DOUT, offset: OFF.dout },
    dqkv: { buffer: DQKV, offset: OFF.dqkv },
  });
  await gpu.run(fw, 'attention forward');
  await gpu.run(bw, 'attention backward');
  const out = await gpu.readF32(OUT, OFF.out, B * T * d);
  const dqkv = await gpu.readF32(DQKV, OFF.dqkv, 3 * B * T * d);
  gpu.release(...fw, ...bw);
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  gpu.free(QKV, DOUT, OUT, DQKV, LEN);
  return { out, dqkv };
}

function randomLengths(B: number, T: number): Uint32Array {
  const L = rand.int(B, T + 1);
  if (B > 1) L[0] = 0; // a row that sees no key at all
  if (B > 2) L[B - 1] = T;
  return L;
}

async function check(shape: AttentionShape, causal: boolean, withLengths: boolean, config: Config = {}) {
  const { B, T, d, nHead } = shape;
  const qkv = rand.normal(B * T * 3 * d);
  const dout = rand.normal(B * T * d);
  const lengths = withLengths ? randomLengths(B, T) : undefined;
  const got = await runGpu(shape, causal, qkv, dout, lengths, config);
  const opts = { causal, lengths };
  const what =
    `${JSON.stringify(shape)} causal=${causal} lengths=${lengths ? `[${lengths}]` : 'none'} ` +
    `${JSON.stringify(config)}`;
  expectClose(got.out, attentionRef(qkv, B, T, d, nHead, opts).out, 1e-5, `out ${what}`);
  expectClose(got.dqkv, attentionBackwardRef(dout, qkv, B, T, d, nHead, opts).dqkv, 1e-5, `dqkv ${what}`);
}

const SHAPES: AttentionShape[] = [
  { B: 2, T: 7, d: 12, nHead: 3 },
  { B: 1, T: 33, d: 20, nHead: 4 },
  { B: 3, T: 1, d: 8, nHead: 2 },
  { B: 2, T: 65, d: 32, nHead: 2 },
  { B: 1, T: 5, d: 3, nHead: 1 },
];
const name = (s: AttentionShape) => `B=${s.B} T=${s.T} d=${s.d} nHead=${s.nHead}`;

describe.each([true, false])('causal=%s', (causal) => {
  test.each(SHAPES.map((s) => [name(s), s] as const))('%s', async (_n, shape) => {
    await check(shape, causal, false);
  });
  test.each(SHAPES.map((s) => [name(s), s] as const))('%s with key padding lengths', async (_n, shape) => {
    await check(shape, causal, true);
  });
});

describe.each(CONFIGS.slice(1))('%s softmax row layout and matmul tiles', (_n, config) => {
  test('every shape, causal and not, with and without lengths', async () => {
    for (const shape of SHAPES)
      for (const causal of [true, false])
        for (const lengths of [false, true]) await check(shape, causal, lengths, config);
  });
});

test('a long row (T=300, several elements per softmax invocation), causal with lengths', async () => {
  await check({ B: 2, T: 300, d: 16, nHead: 2 }, true, true);
});

test('huge scores (qkv x 1e3) give finite outputs and gradients', async () => {
  const shape = { B: 2, T: 9, d: 12, nHead: 3 };
  for (const causal of [true, false]) {
    const qkv = rand.normal(2 * 9 * 36).map((x) => x * 1e3);
    const dout = rand.normal(2 * 9 * 12);
    const got = await runGpu(shape, causal, qkv, dout, Uint32Array.from([9, 4]));
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
  const a = await runGpu(shape, true, qkv, dout, lengths);
  const b = await runGpu(shape, true, qkv, dout, lengths);
  expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
  expect(Buffer.from(a.dqkv.buffer).equals(Buffer.from(b.dqkv.buffer))).toBe(true);
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
  const spec = (i: number) => ({ ...shape, causal: false, qkv: { buffer: QKV[i] }, layer: layers[i], scratch });
  const fw = [
    ...(await attentionForward(gpu, { ...spec(0), out: { buffer: OUT[0] } })),
    ...(await attentionForward(gpu, { ...spec(1), out: { buffer: OUT[1] } })),
  ];
  const bw = [
    ...(await attentionBackward(gpu, { ...spec(1), dout: { buffer: DOUT[1] }, dqkv: { buffer: DQKV[1] } })),
    ...(await attentionBackward(gpu, { ...spec(0), dout: { buffer: DOUT[0] }, dqkv: { buffer: DQKV[0] } })),
  ];
  await gpu.run([...fw, ...bw], 'two layers');
  for (const i of [0, 1]) {
    const opts = { causal: false };
    expectClose(
      await gpu.readF32(OUT[i]),
      attentionRef(inputs[i].qkv, B, T, d, nHead, opts).out,
      1e-5,
      `out layer ${i}`,
    );
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

test(
  'qkv, out, dout, dqkv and lengths may share one buffer at disjoint offsets (an activation ' +
    'arena); a custom scale',
  async () => {
    const shape = { B: 2, T: 9, d: 12, nHead: 2 };
    const { B, T, d, nHead } = shape;
    const qkv = rand.normal(B * T * 3 * d);
    const dout = rand.normal(B * T * d);
    const lengths = [9, 5];
    const at = {
      qkv: 1,
      out: 1 + 3 * B * T * d,
      dout: 2 + 4 * B * T * d,
      dqkv: 3 + 5 * B * T * d,
      lengths: 3 + 8 * B * T * d,
    };
    const arena = new Float32Array(at.lengths + B).fill(NaN);
    arena.set(qkv, at.qkv);
    arena.set(dout, at.dout);
    new Uint32Array(arena.buffer).set(lengths, at.lengths);
    const X = gpu.upload('arena', arena);
    const layer = createAttentionBuffers(gpu, shape);
    const scratch = createAttentionScratch(gpu, shape);
    const common = {
      ...shape,
      causal: true,
      scale: 0.37,
      qkv: { buffer: X, offset: at.qkv },
      lengths: { buffer: X, offset: at.lengths },
      layer,
      scratch,
    };
    const ds = [
      ...(await attentionForward(gpu, { ...common, out: { buffer: X, offset: at.out } })),
      ...(await attentionBackward(gpu, {
        ...common,
        dout: { buffer: X, offset: at.dout },
        dqkv: { buffer: X, offset: at.dqkv },
      })),
    ];
    await gpu.run(ds);
    const opts = { causal: true, lengths, scale: 0.37 };
    expectClose(
      await gpu.readF32(X, at.out, B * T * d),
      attentionRef(qkv, B, T, d, nHead, opts).out,
      1e-5,
      'out in arena',
    );
    expectClose(
      await gpu.readF32(X, at.dqkv, 3 * B * T * d),
      attentionBackwardRef(dout, qkv, B, T, d, nHead, opts).dqkv,
      1e-5,
      'dqkv in arena',
    );
    gpu.release(...ds);
    freeAttentionBuffers(gpu, layer);
    freeAttentionScratch(gpu, scratch);
    gpu.free(X);
  },
);

test('memory formulas match what is allocated', () => {
  const shape = { B: 2, T: 10, d: 12, nHead: 3 };
  const before = gpu.memory().bytesNow;
  const layer = createAttentionBuffers(gpu, shape);
  expect(layer.bytes).toBe(attentionBuffersBytes(shape));
  expect(layer.bytes).toBe(4 * 2 * 3 * 10 * 10);
  const scratch = createAttentionScratch(gpu, shape);
  expect(scratch.bytes).toBe(attentionScratchBytes(shape));
  expect(scratch.bytes).toBe(4 * (7 * 2 * 10 * 12 + 2 * 3 * 10 * 10));
  expect(gpu.memory().bytesNow - before).toBe(layer.bytes + scratch.bytes); // all sizes here are multiples of 16
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  expect(gpu.memory().bytesNow).toBe(before);
});

test('bad specs are refused with the reason', async () => {
  const shape = { B: 1, T: 4, d: 8, nHead: 2 };
  const layer = createAttentionBuffers(gpu, shape);
  const scratch = createAttentionScratch(gpu, shape);
  const QKV = gpu.buffer('qkv', 4 * 96);
  const OUT = gpu.buffer('out', 4 * 32);
  const base = { ...shape, causal: true, qkv: { buffer: QKV }, out: { buffer: OUT }, layer, scratch };
  expect(() => createAttentionBuffers(gpu, { B: 1, T: 4, d: 9, nHead: 2 })).toThrow(/not a multiple of nHead/);
  await expect(attentionForward(gpu, { ...base, T: 5 })).rejects.toThrow(/needs \d+ bytes/);
  await expect(attentionForward(gpu, { ...base, out: { buffer: QKV, offset: 64 } })).rejects.toThrow(
    /out \[64, 96\) overlaps qkv \[0, 96\)/,
  );
  await expect(attentionForward(gpu, { ...base, out: { buffer: OUT, offset: 1 } })).rejects.toThrow(/out needs/);
  const BIG = gpu.buffer('big', 4 * 300);
  await expect(
    attentionBackward(gpu, {
      ...base,
      qkv: { buffer: BIG },
      dout: { buffer: BIG, offset: 200 },
      dqkv: { buffer: BIG, offset: 90 },
    }),
  ).rejects.toThrow(/dqkv \[90, 186\) overlaps qkv \[0, 96\)/);
  await expect(
    attentionBackward(gpu, {
      ...base,
      qkv: { buffer: BIG },
      dout: { buffer: BIG, offset: 120 },
      dqkv: { buffer: BIG, offset: 96 },
    }),
  ).rejects.toThrow(/dqkv \[96, 192\) overlaps dout \[120, 152\)/);
  await expect(attentionForward(gpu, { ...base, out: { buffer: scratch.yh } })).rejects.toThrow(/must not live in/);
  freeAttentionBuffers(gpu, layer);
  freeAttentionScratch(gpu, scratch);
  gpu.free(QKV, OUT, BIG);
});

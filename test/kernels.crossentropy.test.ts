// The fused, tied cross-entropy head and the GPU loss mean against the float64 reference:
// odd N, V, d (V never a multiple of the tile), chunks that do not divide N, the vocabulary in
// many splits, the hardware plan's tile, ignored targets, element offsets everywhere, huge
// logits, NaN, dwte accumulating onto a non-zero gradient, dh in place over h, determinism. Training runs both
// forwards (CrossEntropySpec.forward): the fused one, and matmul's product with the row pass over the stored logits
// (the software adapter's default), the latter also with V in several texture-sized pieces.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import { bothForwards, expectArgmaxMaximal, padded } from './helpers/crossentropy.js';
import type { Gpu } from '../src/gpu/device.js';
import {
  crossEntropyHead,
  defaultChunkRows,
  defaultForward,
  logitsPieces,
  logitsPlan,
  lossMean,
} from '../src/kernels/crossentropy.js';
import { crossEntropyTied, crossEntropyTiedBackward } from '../src/reference/crossentropy.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

interface Case {
  N: number;
  V: number;
  d: number;
  chunkRows?: number;
  hScale?: number;
  /** Rows whose target is -1. */
  ignored?: number[];
  grads?: boolean;
  /** dh overwrites h (same buffer and offset). */
  inPlace?: boolean;
  /** The loss scale sits in the losses' buffer, after the N rows. */
  scaleInLosses?: boolean;
  /** Build under the hardware plan (128×128 tiles, splits for 528 workgroups). */
  hardware?: boolean;
  /** With gradients: how the logits are computed (default: the adapter's). */
  forward?: 'fused' | 'matmul';
}

// Element offsets of each tensor inside its buffer (wte on a 64-float boundary, like the layout).
const OFF = { h: 5, wte: 128, targets: 3, losses: 2, scale: 1, dh: 7, argmax: 9, out: 3 };

function targetsFor(N: number, V: number, ignored: number[] = []): Int32Array {
  const t = Int32Array.from(rand.int(N, V));
  for (const i of ignored) t[i] = -1;
  return t;
}

async function runCase(c: Case) {
  const { N, V, d } = c;
  const grads = c.grads ?? true;
  const hs = c.hScale ?? 1;
  const h = rand.uniform(N * d, -hs, hs);
  const E = rand.uniform(V * d);
  const targets = targetsFor(N, V, c.ignored);
  const count = targets.filter((t) => t >= 0).length;
  const scale = count > 0 ? 1 / count : 0;
  const dwte0 = rand.uniform(V * d);

  const H = gpu.upload('h', padded(rand, h, OFF.h));
  const W = gpu.upload('params', padded(rand, E, OFF.wte));
  const T = gpu.upload(
    'targets',
    Int32Array.from({ length: OFF.targets + N + 2 }, (_, i) =>
      i >= OFF.targets && i < OFF.targets + N ? targets[i - OFF.targets] : 12345,
    ),
  );
  const L = gpu.buffer('losses', (OFF.losses + N + 4) * 4);
  const S = c.scaleInLosses ? L : gpu.buffer('scale', (OFF.scale + 1) * 4);
  const scaleRef = { buffer: S, offset: c.scaleInLosses ? OFF.losses + N + 1 : OFF.scale };
  gpu.write(S, Float32Array.of(scale), scaleRef.offset * 4);
  const G = grads ? gpu.upload('grads', padded(rand, dwte0, OFF.wte)) : undefined;
  const DH = grads ? (c.inPlace ? H : gpu.buffer('dh', (OFF.dh + N * d) * 4)) : undefined;
  const A = gpu.buffer('argmax', (OFF.argmax + N) * 4);
  const O = gpu.buffer('mean', 16);

  const adapter = gpu.adapter as { kind: string };
  const kind = adapter.kind;
  if (c.hardware) adapter.kind = 'hardware';
  const head = await crossEntropyHead(gpu, {
    N,
    V,
    d,
    chunkRows: c.chunkRows,
    h: { buffer: H, offset: OFF.h },
    wte: { buffer: W, offset: OFF.wte },
    targets: { buffer: T, offset: OFF.targets },
    losses: { buffer: L, offset: OFF.losses },
    lossScale: grads ? scaleRef : undefined,
    dh: DH && { buffer: DH, offset: c.inPlace ? OFF.h : OFF.dh },
    dwte: G && { buffer: G, offset: OFF.wte },
    argmax: { buffer: A, offset: OFF.argmax },
    forward: c.forward,
  }).finally(() => (adapter.kind = kind));
  const mean = await lossMean(gpu, {
    N,
    losses: { buffer: L, offset: OFF.losses },
    lossScale: scaleRef,
    out: { buffer: O, offset: OFF.out },
  });
  await gpu.run([...head.dispatches, mean]);

  const got = {
    losses: await gpu.readF32(L, OFF.losses, N),
    argmax: await gpu.read(A, Uint32Array, OFF.argmax, N),
    mean: (await gpu.readF32(O, OFF.out, 1))[0],
    dh: DH ? await gpu.readF32(DH, c.inPlace ? OFF.h : OFF.dh, N * d) : undefined,
    dwte: G ? await gpu.readF32(G, OFF.wte, V * d) : undefined,
  };
  const run = async () => {
    // Rerun the same recorded dispatches from the same inputs (determinism checks).
    if (G) gpu.write(G, dwte0, OFF.wte * 4);
    if (c.inPlace) gpu.write(H, h, OFF.h * 4);
    await gpu.run([...head.dispatches, mean]);
    return {
      losses: await gpu.readF32(L, OFF.losses, N),
      dh: DH ? await gpu.readF32(DH, c.inPlace ? OFF.h : OFF.dh, N * d) : undefined,
      dwte: G ? await gpu.readF32(G, OFF.wte, V * d) : undefined,
      mean: (await gpu.readF32(O, OFF.out, 1))[0],
    };
  };
  const cleanup = () => {
    gpu.release(...head.dispatches, mean);
    gpu.free(H, W, T, L, S, G, DH, A, O);
  };
  return { h, E, targets, count, dwte0, got, head, run, cleanup };
}

function checkAgainstReference(c: Case, r: Awaited<ReturnType<typeof runCase>>, tol = 1e-5, gradTol = tol) {
  const { N, V, d } = c;
  const ref = crossEntropyTied(r.h, r.E, r.targets, N, V, d);
  expectClose(r.got.losses, ref.nll, tol, 'losses');
  expectClose([r.got.mean], [ref.loss], tol, 'mean loss');
  expectArgmaxMaximal(r.got.argmax, ref.logits, N, V);
  if (c.grads ?? true) {
    const back = crossEntropyTiedBackward(1, r.h, r.E, r.targets, N, V, d);
    expectClose(r.got.dh!, back.dh, gradTol, 'dh');
    expectClose(
      r.got.dwte!,
      Float64Array.from(back.dE, (g, i) => g + r.dwte0[i]),
      gradTol,
      'dwte (accumulated)',
    );
  }
}

describe('cross-entropy head against float64', () => {
  const cases: [string, Case][] = [
    ['N=7 V=131 d=10, chunks of 3, two ignored rows', { N: 7, V: 131, d: 10, chunkRows: 3, ignored: [1, 5] }],
    ['N=33 V=1000 d=24, one chunk', { N: 33, V: 1000, d: 24, ignored: [0, 32] }],
    ['N=33 V=1000 d=24, chunks of 10', { N: 33, V: 1000, d: 24, chunkRows: 10, ignored: [4] }],
    [
      'N=70 V=257 d=16, chunks of 64 (vec4 matmul paths), loss scale beside the losses',
      { N: 70, V: 257, d: 16, chunkRows: 64, scaleInLosses: true },
    ],
    ['N=9 V=77 d=12, dh in place over h', { N: 9, V: 77, d: 12, chunkRows: 4, inPlace: true, ignored: [3] }],
    [
      'N=150 V=1000 d=20, the hardware plan: 128×128 tiles, two row tiles, 8 splits',
      { N: 150, V: 1000, d: 20, hardware: true, ignored: [149] },
    ],
    [
      'N=131 V=389 d=36, the hardware plan in chunks of 70 (a short last chunk)',
      { N: 131, V: 389, d: 36, hardware: true, chunkRows: 70, scaleInLosses: true },
    ],
  ];
  const both = bothForwards(cases);
  both.push(
    [
      'N=37 V=301 d=20, the hardware plan with the matmul forward (the tiled kernel writing rows ldC apart)',
      { N: 37, V: 301, d: 20, hardware: true, forward: 'matmul', chunkRows: 16, ignored: [2] },
    ],
    [
      'N=5 V=16,461 d=8, matmul forward with V in pieces of a texture height',
      { N: 5, V: 16461, d: 8, forward: 'matmul', ignored: [3] },
    ],
  );
  test.each(both)('%s', async (_name, c) => {
    const r = await runCase(c);
    checkAgainstReference(c, r);
    r.cleanup();
  });

  // Evaluation: the fused forward stores nothing; the matmul forward (software adapters' default) stores a chunk at a
  // time in the device's shared scratch.
  test.each([
    ['software plan, fused forward', { forward: 'fused' }],
    ['software plan, matmul forward', { forward: 'matmul' }],
    ['software plan, the default forward (matmul), chunks of the default size', { chunkRows: undefined }],
    ['hardware plan (fused)', { hardware: true }],
  ] as [string, Partial<Case>][])('forward only (evaluation, %s): losses, argmax, the plain sum', async (_name, o) => {
    const c: Case = { N: 13, V: 311, d: 8, chunkRows: 5, grads: false, ignored: [2], ...o };
    const r = await runCase(c);
    checkAgainstReference(c, r);
    const stores = !c.hardware && c.forward !== 'fused';
    if (stores)
      expect(r.head.scratch).toBe(gpu.shared('cross-entropy evaluation logits', 0)); // one for all heads
    else expect(r.head.scratch).toBeUndefined(); // no logits stored
    // Evaluation sums log-likelihoods: a mean without lossScale is the plain sum.
    const { N, V, d } = c;
    const ref = crossEntropyTied(r.h, r.E, r.targets, N, V, d);
    const O = gpu.buffer('sum', 16);
    const losses = gpu.upload('losses copy', r.got.losses);
    const sum = await lossMean(gpu, { N, losses: { buffer: losses }, out: { buffer: O } });
    await gpu.run([sum]);
    expectClose(await gpu.readF32(O, 0, 1), [ref.nll.reduce((a, b) => a + b, 0)], 1e-5, 'sum');
    gpu.release(sum);
    gpu.free(O, losses);
    r.cleanup();
  });

  test('huge logits (h ×1000): finite and still accurate', async () => {
    const c: Case = { N: 11, V: 203, d: 10, chunkRows: 4, hScale: 1000, ignored: [7] };
    const r = await runCase(c);
    for (const x of [...r.got.losses, ...r.got.dh!, ...r.got.dwte!])
      if (!Number.isFinite(x)) throw new Error(`non-finite output ${x}`);
    // Logits of ~±1e3 carry f32 errors of ~1e-4, which near-ties turn into ~1e-5 relative gradient errors.
    checkAgainstReference(c, r, 1e-5, 1e-3);
    r.cleanup();
  });

  test('every target ignored: zero loss, zero gradient, dwte unchanged', async () => {
    const N = 5;
    const V = 40;
    const d = 6;
    const r = await runCase({ N, V, d, ignored: [0, 1, 2, 3, 4] });
    expect(Array.from(r.got.losses)).toEqual(new Array(N).fill(0));
    expect(r.got.mean).toBe(0);
    expect(Array.from(r.got.dh!).every((x) => x === 0)).toBe(true);
    expect(Array.from(r.got.dwte!)).toEqual(Array.from(r.dwte0));
    r.cleanup();
  });

  test.each(['fused', 'matmul'] as const)('bit-identical when run twice (%s forward)', async (forward) => {
    const c: Case = { N: 33, V: 1000, d: 24, chunkRows: 7, ignored: [3], forward };
    const r = await runCase(c);
    const again = await r.run();
    expect(Array.from(again.losses)).toEqual(Array.from(r.got.losses));
    expect(Array.from(again.dh!)).toEqual(Array.from(r.got.dh!));
    expect(Array.from(again.dwte!)).toEqual(Array.from(r.got.dwte!));
    expect(again.mean).toBe(r.got.mean);
    r.cleanup();
  });
});

test.each(['fused', 'matmul'] as const)(
  'a target ≥ V gives a NaN loss and no gradient; the rest are unaffected (%s forward)',
  async (forward) => {
    const N = 4;
    const V = 50;
    const d = 8;
    const h = rand.uniform(N * d);
    const E = rand.uniform(V * d);
    const targets = Int32Array.of(3, V + 7, -1, 49);
    const H = gpu.upload('h', h);
    const W = gpu.upload('wte', E);
    const T = gpu.upload('t', targets);
    const L = gpu.buffer('losses', N * 4);
    const S = gpu.upload('scale', Float32Array.of(0.5));
    const DH = gpu.buffer('dh', N * d * 4);
    const G = gpu.buffer('dwte', V * d * 4);
    const head = await crossEntropyHead(gpu, {
      N,
      V,
      d,
      h: { buffer: H },
      wte: { buffer: W },
      targets: { buffer: T },
      losses: { buffer: L },
      lossScale: { buffer: S },
      dh: { buffer: DH },
      dwte: { buffer: G },
      forward,
    });
    await gpu.run(head.dispatches);
    const losses = await gpu.readF32(L, 0, N);
    expect(Number.isNaN(losses[1])).toBe(true);
    expect(losses[2]).toBe(0);
    const valid = Int32Array.of(3, -1, -1, 49);
    const ref = crossEntropyTied(h, E, valid, N, V, d);
    expectClose([losses[0], losses[3]], [ref.nll[0], ref.nll[3]], 1e-5, 'valid rows');
    const back = crossEntropyTiedBackward(1, h, E, valid, N, V, d); // mean over 2 rows = lossScale 0.5
    expectClose(await gpu.readF32(DH, 0, N * d), back.dh, 1e-5, 'dh');
    expectClose(await gpu.readF32(G, 0, V * d), back.dE, 1e-5, 'dwte');
    gpu.release(...head.dispatches);
    gpu.free(H, W, T, L, S, DH, G);
  },
);

test('lossMean accumulates over micro-batches, reading the scale from its own output buffer', async () => {
  const losses = rand.uniform(37, 0, 5);
  const Lb = gpu.upload('losses', losses);
  const O = gpu.upload('scalars', Float32Array.of(0, 0.125)); // [loss, scale]
  const d = await lossMean(gpu, {
    N: 37,
    losses: { buffer: Lb },
    lossScale: { buffer: O, offset: 1 },
    out: { buffer: O, offset: 0 },
    accumulate: true,
  });
  await gpu.run([d, d]);
  const total = losses.reduce((a, b) => a + b, 0);
  expectClose(await gpu.readF32(O, 0, 1), [2 * 0.125 * total], 1e-6, 'accumulated mean');
  gpu.release(d);
  gpu.free(Lb, O);
});

// Evaluation and training, each with either forward.
test.each([
  ['evaluation, fused forward', 'fused', false],
  ['evaluation, matmul forward', 'matmul', false],
  ['training, fused forward', 'fused', true],
  ['training, matmul forward', 'matmul', true],
] as const)(
  'a NaN logit wins the argmax (the lowest such column) and makes the loss NaN (%s)',
  async (_name, forward, train) => {
    const N = 5;
    const V = 90;
    const d = 6;
    const E = rand.uniform(V * d);
    E[40 * d + 2] = NaN; // column 40 is NaN in every row, and so is column 71
    E[71 * d] = NaN;
    const bufs = {
      H: gpu.upload('h', rand.uniform(N * d)),
      W: gpu.upload('wte', E),
      T: gpu.upload('t', Int32Array.of(3, -1, 89, 40, 0)),
      L: gpu.buffer('losses', N * 4),
      A: gpu.buffer('argmax', N * 4),
      S: gpu.upload('scale', Float32Array.of(0.25)),
      G: gpu.buffer('dwte', V * d * 4),
    };
    const head = await crossEntropyHead(gpu, {
      N,
      V,
      d,
      h: { buffer: bufs.H },
      wte: { buffer: bufs.W },
      targets: { buffer: bufs.T },
      losses: { buffer: bufs.L },
      argmax: { buffer: bufs.A },
      forward,
      ...(train ? { lossScale: { buffer: bufs.S }, dwte: { buffer: bufs.G } } : {}),
    });
    await gpu.run(head.dispatches);
    const losses = await gpu.readF32(bufs.L, 0, N);
    expect(Array.from(await gpu.read(bufs.A, Uint32Array, 0, N))).toEqual([40, 40, 40, 40, 40]);
    expect([0, 2, 3, 4].every((i) => Number.isNaN(losses[i]))).toBe(true);
    expect(losses[1]).toBe(0); // ignored
    gpu.release(...head.dispatches);
    gpu.free(...Object.values(bufs));
  },
);

test('the forward plan: vocabulary splits for enough workgroups, within llvmpipe loop limit', () => {
  const soft = logitsPlan('software', 256, 50257, 64);
  expect(soft.splits * soft.tiles).toBeGreaterThanOrEqual(Math.ceil(50257 / 64));
  expect(soft.groups[0] * soft.groups[1]).toBeGreaterThanOrEqual(32);
  expect(soft.parts).toBe(soft.splits * 8);
  expect(logitsPlan('software', 8, 50257, 512).tiles).toBeLessThanOrEqual(16); // tiles·d ≤ 8192
  const hard = logitsPlan('hardware', 640, 50257, 512);
  expect(hard.groups).toEqual([hard.splits, 5]);
  expect(hard.splits * 5).toBeGreaterThanOrEqual(0.9 * 528);
});

test('the default forward by adapter kind, and the pieces of V for the matmul forward', () => {
  expect(defaultForward(gpu)).toBe(gpu.adapter.kind === 'software' ? 'matmul' : 'fused');
  const max = gpu.limits.maxTextureDimension2D ?? 8192;
  for (const V of [1, 77, 16461, 50257]) {
    const pieces = logitsPieces(gpu, V);
    expect(pieces[0][0]).toBe(0);
    expect(pieces[pieces.length - 1][1]).toBe(V);
    for (let i = 0; i < pieces.length; i++) {
      const [v0, v1] = pieces[i];
      expect(v1 - v0).toBeLessThanOrEqual(max);
      if (i > 0) expect(v0).toBe(pieces[i - 1][1]);
      if (i < pieces.length - 1) expect((v1 - v0) % 64).toBe(0);
    }
  }
  // As few pieces as the texture height allows: 2 on llvmpipe (16,384), so the V = 16,461 case above runs two.
  expect(logitsPieces(gpu, 16461).length).toBe(Math.ceil(16461 / (Math.floor(max / 64) * 64)));
});

test('default chunk rows: whole batch when it fits, else even chunks of ≤ budget', () => {
  expect(defaultChunkRows(gpu, 33, 1000)).toBe(33);
  expect(defaultChunkRows(gpu, 1024, 50257)).toBe(256); // 4 chunks of 256 rows, 51 MB of logits
  expect(defaultChunkRows(gpu, 100, 1000, 30 * 4000)).toBe(25);
  expect(defaultChunkRows(gpu, 1000, 1000, 300 * 4000)).toBe(256);
});

test('bad specs are refused with the reason', async () => {
  const B = (n: number) => gpu.buffer('b', n * 4);
  const h = B(64);
  const wte = B(64);
  const t = B(8);
  const l = B(8);
  const s = B(4);
  const dh = B(64);
  const base = {
    N: 4,
    V: 4,
    d: 4,
    h: { buffer: h },
    wte: { buffer: wte },
    targets: { buffer: t },
    losses: { buffer: l },
  };
  await expect(crossEntropyHead(gpu, { ...base, dh: { buffer: dh } })).rejects.toThrow(/lossScale/);
  await expect(
    crossEntropyHead(gpu, { ...base, lossScale: { buffer: s }, dh: { buffer: dh }, scratch: B(8) }),
  ).rejects.toThrow(/scratch holds/);
  await expect(crossEntropyHead(gpu, { ...base, scratch: B(16) })).rejects.toThrow(/no logits are stored/);
  await expect(crossEntropyHead(gpu, { ...base, forward: 'matmul', scratch: B(64) })).rejects.toThrow(/shared one/);
  const q8 = { format: 'int8', rows: 4, cols: 4, buffer: wte, offset: 0, scales: 4 } as const;
  await expect(crossEntropyHead(gpu, { ...base, wte: q8, forward: 'matmul' })).rejects.toThrow(/takes the fused/);
  await expect(
    crossEntropyHead(gpu, { ...base, lossScale: { buffer: l, offset: 2 }, dh: { buffer: dh } }),
  ).rejects.toThrow(/inside the losses/);
  await expect(
    crossEntropyHead(gpu, { ...base, lossScale: { buffer: s }, dh: { buffer: h, offset: 4 } }),
  ).rejects.toThrow(/same offset/);
  await expect(crossEntropyHead(gpu, { ...base, losses: { buffer: t } })).rejects.toThrow(/different buffers/);
  await expect(crossEntropyHead(gpu, { ...base, N: 0 })).rejects.toThrow(/N must be a positive integer/);
  await expect(lossMean(gpu, { N: 4, losses: { buffer: l }, out: { buffer: l } })).rejects.toThrow(/must not share/);
  gpu.free(h, wte, t, l, s, dh);
});

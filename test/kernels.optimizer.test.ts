// AdamW and SGD over a flat parameter range against torch-semantics float64 references, on
// n = 64·37 + 5 and 64·37 + 4 (no multiple of any workgroup size; one float or 4 a load) with a
// layout-like decay mask, a gradient scale read from the GPU, element offsets, windows, several
// steps with a changing lr, in both adapter kinds' workgroup layouts.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { AdamW, MASK_BLOCK, Sgd, decayMask } from '../src/kernels/optimizer.js';
import { adamwStep, sgdStep } from '../src/reference/optimizer.js';
import { paramLayout } from '../src/model/params.js';
import { preset } from '../src/model/config.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

/**
 * n = 64·37 + 5 at odd offsets (one float a load), or n = 64·37 + 4 at offsets that are multiples of 4 (4 floats
 * a load); windows small enough for several dispatches, and how many.
 */
const FIXTURES = [
  {
    name: 'one float a load',
    N: 64 * 37 + 5,
    OFF: { p: 64, g: 5, m: 0, v: 7, mask: 1, scale: 2 },
    adamWindows: { maxBindingBytes: 2048, dispatches: 10 },
    sgdWindows: { maxBindingBytes: 3000, dispatches: 5 },
  },
  {
    name: '4 floats a load',
    N: 64 * 37 + 4,
    OFF: { p: 64, g: 4, m: 0, v: 8, mask: 1, scale: 2 },
    adamWindows: { maxBindingBytes: 4352, dispatches: 3 },
    sgdWindows: { maxBindingBytes: 8448, dispatches: 2 },
  },
];
type Fixture = (typeof FIXTURES)[number];

// A layout in miniature: tensors on 64-float boundaries, zero padding between them, the
// last one unpadded (so n is no multiple of 64), decay on the "matrices" only.
function layoutOf(N: number) {
  const TENSORS = [
    { name: 'wte', offset: 0, size: 640, decay: true },
    { name: 'ln.weight', offset: 640, size: 37, decay: false },
    { name: 'fc.weight', offset: 704, size: 600, decay: true },
    { name: 'fc.bias', offset: 1344, size: 64, decay: false },
    { name: 'proj.weight', offset: 1408, size: N - 1408, decay: true },
  ];
  const DECAYS = new Uint8Array(N);
  for (const t of TENSORS) if (t.decay) DECAYS.fill(1, t.offset, t.offset + t.size);
  const PADDING = new Uint8Array(N).fill(1);
  for (const t of TENSORS) PADDING.fill(0, t.offset, t.offset + t.size);
  return { TENSORS, DECAYS, PADDING };
}

test('decayMask marks exactly the decayed tensors of a real layout, and refuses misaligned ones', () => {
  const layout = paramLayout({ ...preset('tiny'), vocab_size: 101, num_labels: 3 });
  const mask = decayMask(layout);
  expect(mask.length).toBe(Math.ceil(layout.total / MASK_BLOCK / 32));
  const bit = (w: Uint32Array, i: number) =>
    (w[Math.floor(i / MASK_BLOCK) >>> 5] >>> (Math.floor(i / MASK_BLOCK) & 31)) & 1;
  expect(layout.tensors.some((t) => t.decay) && layout.tensors.some((t) => !t.decay)).toBe(true);
  for (const t of layout.tensors) {
    for (let i = t.offset; i < t.offset + t.size; i++)
      if (bit(mask, i) !== (t.decay ? 1 : 0)) throw new Error(`${t.name}: mask bit of element ${i}`);
  }
  const N = FIXTURES[0].N;
  const { TENSORS, DECAYS, PADDING } = layoutOf(N);
  const mini = decayMask({ total: N, tensors: TENSORS });
  for (let i = 0; i < N; i++)
    if (!PADDING[i] && bit(mini, i) !== DECAYS[i]) throw new Error(`mask bit of element ${i}`);
  expect(() => decayMask({ total: 200, tensors: [{ name: 'x', offset: 10, size: 5, decay: true }] })).toThrow(
    /multiple of 64/,
  );
  expect(() => decayMask({ total: 100, tensors: [{ name: 'x', offset: 64, size: 64, decay: true }] })).toThrow(
    /past the buffer/,
  );
});

function fixture(f: Fixture) {
  const { N, OFF } = f;
  const { TENSORS, DECAYS, PADDING } = layoutOf(N);
  const withPadding = (x: Float32Array): Float32Array => {
    for (let i = 0; i < N; i++) if (PADDING[i]) x[i] = 0;
    return x;
  };
  /** Pick per element between a step with decay and one without. */
  const masked = (withDecay: Float64Array, without: Float64Array): Float64Array =>
    Float64Array.from(withDecay, (x, i) => (DECAYS[i] ? x : without[i]));
  const slice = (buf: Float32Array, off: number): Float32Array => buf.subarray(off, off + N);
  const setup = async (opts: { m?: boolean } = {}) => {
    const p0 = withPadding(rand.uniform(N));
    const P = gpu.upload(
      'params',
      Float32Array.from({ length: OFF.p + N + 4 }, (_, i) => (i >= OFF.p && i < OFF.p + N ? p0[i - OFF.p] : 7)),
    );
    const G = gpu.buffer('grads', (OFF.g + N) * 4);
    const M = opts.m ? gpu.upload('m', new Float32Array(OFF.m + N + 4).fill(0).fill(7, OFF.m + N)) : undefined;
    const Vb = opts.m ? gpu.upload('v', new Float32Array(OFF.v + N + 4).fill(0).fill(7, OFF.v + N)) : undefined;
    const mask = decayMask({ total: N, tensors: TENSORS });
    const MK = gpu.upload('mask', Uint32Array.from([0xdeadbeef, ...mask]));
    const S = gpu.buffer('scalars', 16);
    return { p0, P, G, M, V: Vb, MK, S };
  };
  return { ...f, PADDING, withPadding, masked, slice, setup };
}

describe.each(FIXTURES)('AdamW, $name', (f) => {
  const { N, OFF, PADDING, withPadding, masked, slice, setup, adamWindows } = fixture(f);
  test.each([
    ['whole buffers', false, 'software'],
    ['windows (storage-binding limit)', true, 'software'],
    ['whole buffers', false, 'hardware'],
    ['windows (storage-binding limit)', true, 'hardware'],
  ] as const)(
    'three steps with a changing lr, decay mask and gradient scale, against torch semantics: %s, %s layout',
    async (_name, windowed, layout) => {
      const { p0, P, G, M, V, MK, S } = await setup({ m: true });
      const hp = { beta1: 0.85, beta2: 0.995, eps: 1e-6, weightDecay: 0.1 };
      const opt = await AdamW.create(gpu, {
        n: N,
        params: { buffer: P, offset: OFF.p },
        grads: { buffer: G, offset: OFF.g },
        m: { buffer: M!, offset: OFF.m },
        v: { buffer: V!, offset: OFF.v },
        decayMask: { buffer: MK, offset: OFF.mask },
        gradScale: { buffer: S, offset: OFF.scale },
        ...hp,
        maxGroupsX: 2,
        maxBindingBytes: windowed ? adamWindows.maxBindingBytes : undefined,
        layout,
      });
      if (!windowed) expect(opt.dispatches[0].workgroups[1]).toBeGreaterThan(1); // the grid folds into y
      expect(opt.dispatches.length).toBe(windowed ? adamWindows.dispatches : 1);
      let ref: { param: Float64Array; m: Float64Array; v: Float64Array } = {
        param: Float64Array.from(p0),
        m: new Float64Array(N),
        v: new Float64Array(N),
      };
      const lrs = [1e-3, 5e-4, 3e-2];
      for (let step = 1; step <= lrs.length; step++) {
        const g = withPadding(rand.normal(N, step === 2 ? 1e-3 : 1)); // one step of tiny gradients: eps matters
        const scale = [0.37, 1, 0.05][step - 1];
        gpu.write(G, g, OFF.g * 4);
        gpu.write(S, Float32Array.of(scale), OFF.scale * 4);
        opt.setStep(step, lrs[step - 1]);
        await gpu.run(opt.dispatches);
        const gs = Float64Array.from(g, (x) => Math.fround(x * scale));
        const a = adamwStep(ref.param, gs, ref.m, ref.v, step, { lr: lrs[step - 1], ...hp });
        const b = adamwStep(ref.param, gs, ref.m, ref.v, step, { lr: lrs[step - 1], ...hp, weightDecay: 0 });
        ref = { param: masked(a.param, b.param), m: a.m, v: a.v };
        const p = await gpu.readF32(P);
        const m = await gpu.readF32(M!);
        const v = await gpu.readF32(V!);
        expectClose(slice(p, OFF.p), ref.param, 1e-6, `params after step ${step}`);
        expectClose(
          Float64Array.from(slice(p, OFF.p), (x, i) => x - p0[i]),
          Float64Array.from(ref.param, (x, i) => x - p0[i]),
          1e-4,
          `update after step ${step}`,
        );
        expectClose(slice(m, OFF.m), ref.m, 1e-5, `m after step ${step}`);
        expectClose(slice(v, OFF.v), ref.v, 1e-5, `v after step ${step}`);
        // Padding stays zero; nothing outside the range is touched.
        for (let i = 0; i < N; i++)
          if (PADDING[i] && p[OFF.p + i] !== 0) throw new Error(`padding element ${i} became ${p[OFF.p + i]}`);
        expect([p[OFF.p - 1], p[OFF.p + N], m[OFF.m + N], v[OFF.v + N]]).toEqual([7, 7, 7, 7]);
      }
      gpu.release(...opt.dispatches);
      gpu.free(P, G, M, V, MK, S);
    },
  );

  // Chunks of 1024 elements (every layout's workgroup span divides it): 3 here, the middle one flagged all-zero.
  test.each([
    ['software', false],
    ['software', true],
    ['hardware', true],
  ] as const)(
    'zero-flagged chunks (%s layout, windows %s): gradients unread, the step bit for bit',
    async (layout, w) => {
      const CHUNK = 1024;
      const { p0, P, G, M, V, MK, S } = await setup({ m: true });
      const F = gpu.upload('flags', Uint32Array.of(9, 1, 0, 1));
      const P2 = gpu.upload('params 2', await gpu.readF32(P));
      const M2 = gpu.upload('m 2', await gpu.readF32(M!));
      const V2 = gpu.upload('v 2', await gpu.readF32(V!));
      const hp = { beta1: 0.85, beta2: 0.995, eps: 1e-6, weightDecay: 0.1, layout };
      const common = {
        n: N,
        grads: { buffer: G, offset: OFF.g },
        decayMask: { buffer: MK, offset: OFF.mask },
        gradScale: { buffer: S, offset: OFF.scale },
        maxBindingBytes: w ? adamWindows.maxBindingBytes : undefined,
        ...hp,
      };
      const flagged = await AdamW.create(gpu, {
        ...common,
        params: { buffer: P, offset: OFF.p },
        m: { buffer: M!, offset: OFF.m },
        v: { buffer: V!, offset: OFF.v },
        zeroChunks: { flags: { buffer: F, offset: 1 }, chunk: CHUNK },
      });
      const plain = await AdamW.create(gpu, {
        ...common,
        params: { buffer: P2, offset: OFF.p },
        m: { buffer: M2, offset: OFF.m },
        v: { buffer: V2, offset: OFF.v },
      });
      for (let step = 1; step <= 2; step++) {
        // The flagged run's middle chunk holds gradients (the flag wins: they must not be read); the plain run's ±0.
        const g = withPadding(rand.normal(N));
        const zeroed = Float32Array.from(g);
        for (let i = CHUNK; i < 2 * CHUNK; i++) zeroed[i] = i % 3 ? 0 : -0;
        gpu.write(S, Float32Array.of(0.5), OFF.scale * 4);
        flagged.setStep(step, 1e-2);
        plain.setStep(step, 1e-2);
        gpu.write(G, g, OFF.g * 4);
        await gpu.run(flagged.dispatches);
        gpu.write(G, zeroed, OFF.g * 4);
        await gpu.run(plain.dispatches);
        for (const [a, b, name] of [
          [P, P2, 'params'],
          [M!, M2, 'm'],
          [V!, V2, 'v'],
        ] as const) {
          const x = await gpu.read(a, Uint32Array);
          const y = await gpu.read(b, Uint32Array);
          if (!Buffer.from(x.buffer).equals(Buffer.from(y.buffer)))
            throw new Error(`${name} differ after step ${step}`);
        }
      }
      expect(Array.from(await gpu.readF32(P, OFF.p, 4))).not.toEqual(Array.from(p0.subarray(0, 4))); // it stepped
      gpu.release(...flagged.dispatches, ...plain.dispatches);
      gpu.free(P, G, M, V, MK, S, F, P2, M2, V2);
    },
  );

  test('defaults (no mask: everything decays; no scale) and bit-identical reruns', async () => {
    const { p0, P, G, M, V, MK, S } = await setup({ m: true });
    const g = rand.normal(N);
    gpu.write(G, g, OFF.g * 4);
    const opt = await AdamW.create(gpu, {
      n: N,
      params: { buffer: P, offset: OFF.p },
      grads: { buffer: G, offset: OFF.g },
      m: { buffer: M!, offset: OFF.m },
      v: { buffer: V!, offset: OFF.v },
    });
    expect(opt.hyper).toEqual({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    const results: Float32Array[] = [];
    for (let rep = 0; rep < 2; rep++) {
      gpu.write(P, p0, OFF.p * 4);
      gpu.write(M!, new Float32Array(N), OFF.m * 4);
      gpu.write(V!, new Float32Array(N), OFF.v * 4);
      for (let step = 1; step <= 2; step++) {
        opt.setStep(step, 1e-2);
        await gpu.run(opt.dispatches);
      }
      results.push(await gpu.readF32(P, OFF.p, N));
    }
    expect(Array.from(results[1])).toEqual(Array.from(results[0]));
    let ref: { param: Float64Array; m: Float64Array; v: Float64Array } = {
      param: Float64Array.from(p0),
      m: new Float64Array(N),
      v: new Float64Array(N),
    };
    for (let step = 1; step <= 2; step++) ref = adamwStep(ref.param, g, ref.m, ref.v, step, { lr: 1e-2 });
    expectClose(results[0], ref.param, 1e-6, 'params');
    expectClose(
      Float64Array.from(results[0], (x, i) => x - p0[i]),
      Float64Array.from(ref.param, (x, i) => x - p0[i]),
      1e-4,
      'update',
    );
    gpu.release(...opt.dispatches);
    gpu.free(P, G, M, V, MK, S);
  });
});

describe.each(FIXTURES)('SGD, $name', (f) => {
  const { N, OFF, withPadding, masked, slice, setup, sgdWindows } = fixture(f);
  test('coupled weight decay under the mask, gradient scale, two steps', async () => {
    const { p0, P, G, MK, S } = await setup();
    const opt = await Sgd.create(gpu, {
      n: N,
      params: { buffer: P, offset: OFF.p },
      grads: { buffer: G, offset: OFF.g },
      decayMask: { buffer: MK, offset: OFF.mask },
      gradScale: { buffer: S, offset: OFF.scale },
      weightDecay: 0.3,
      maxGroupsX: 4,
      maxBindingBytes: sgdWindows.maxBindingBytes,
    });
    expect(opt.dispatches.length).toBe(sgdWindows.dispatches);
    expect(() => opt.dispatch).toThrow(/use .dispatches/);
    let ref: Float64Array = Float64Array.from(p0);
    for (const [step, lr, scale] of [
      [1, 0.1, 0.5],
      [2, 0.02, 1],
    ]) {
      const g = withPadding(rand.normal(N));
      gpu.write(G, g, OFF.g * 4);
      gpu.write(S, Float32Array.of(scale), OFF.scale * 4);
      opt.setStep(step, lr);
      await gpu.run(opt.dispatches);
      const gs = Float64Array.from(g, (x) => x * scale);
      ref = masked(sgdStep(ref, gs, { lr, weightDecay: 0.3 }).param, sgdStep(ref, gs, { lr }).param);
      const p = await gpu.readF32(P);
      expectClose(slice(p, OFF.p), ref, 1e-6, `params after step ${step}`);
      expectClose(
        Float64Array.from(slice(p, OFF.p), (x, i) => x - p0[i]),
        Float64Array.from(ref, (x, i) => x - p0[i]),
        1e-5,
        `update after step ${step}`,
      );
      expect([p[OFF.p - 1], p[OFF.p + N]]).toEqual([7, 7]);
    }
    gpu.release(...opt.dispatches);
    gpu.free(P, G, MK, S);
  });

  test('with weight decay 0 one step is exactly p − lr·g in f32 (the --optimizer sgd contract)', async () => {
    const { p0, P, G, MK, S } = await setup();
    const g = rand.normal(N, 3);
    gpu.write(G, g, OFF.g * 4);
    const lr = 0.0123;
    const opt = await Sgd.create(gpu, {
      n: N,
      params: { buffer: P, offset: OFF.p },
      grads: { buffer: G, offset: OFF.g },
      decayMask: { buffer: MK, offset: OFF.mask },
    });
    opt.setStep(1, lr);
    await gpu.run(opt.dispatches);
    const p = await gpu.readF32(P, OFF.p, N);
    const f = Math.fround;
    const nlr = f(-lr);
    // torch: param.add_(grad, alpha=-lr) in f32: one rounding of the product and one of the sum
    // (or a single one where the compiler fuses them into an FMA).
    for (let i = 0; i < N; i++) {
      const unfused = f(p0[i] + f(nlr * g[i]));
      const fused = f(p0[i] + nlr * g[i]);
      if (p[i] !== unfused && p[i] !== fused)
        throw new Error(`element ${i}: ${p[i]} is neither ${unfused} nor ${fused}`);
    }
    gpu.release(...opt.dispatches);
    gpu.free(P, G, MK, S);
  });
});

test('bad specs are refused with the reason', async () => {
  const A = gpu.buffer('a', 400);
  const B = gpu.buffer('b', 400);
  const C = gpu.buffer('c', 400);
  const D = gpu.buffer('d', 400);
  await expect(
    AdamW.create(gpu, {
      n: 10,
      params: { buffer: A },
      grads: { buffer: B },
      m: { buffer: A, offset: 20 },
      v: { buffer: C },
    }),
  ).rejects.toThrow(/params and m must be in different buffers/);
  await expect(
    AdamW.create(gpu, {
      n: 10,
      params: { buffer: A },
      grads: { buffer: B },
      m: { buffer: C },
      v: { buffer: D },
      gradScale: { buffer: D, offset: 50 },
    }),
  ).rejects.toThrow(/v and gradScale/);
  await expect(
    AdamW.create(gpu, { n: 200, params: { buffer: A }, grads: { buffer: B }, m: { buffer: C }, v: { buffer: D } }),
  ).rejects.toThrow(/fewer than 200/);
  await expect(
    AdamW.create(gpu, {
      n: 10,
      params: { buffer: A },
      grads: { buffer: B },
      m: { buffer: C },
      v: { buffer: D },
      beta2: 1,
    }),
  ).rejects.toThrow(/beta2/);
  await expect(Sgd.create(gpu, { n: 0, params: { buffer: A }, grads: { buffer: B } })).rejects.toThrow(
    /positive integer/,
  );
  const sgd = await Sgd.create(gpu, { n: 10, params: { buffer: A }, grads: { buffer: B } });
  expect(() => sgd.setStep(0, 0.1)).toThrow(/step/);
  expect(() => sgd.setStep(1, NaN)).toThrow(/lr/);
  gpu.release(...sgd.dispatches);
  gpu.free(A, B, C, D);
});

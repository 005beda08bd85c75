// Global gradient-norm clipping against torch's clip_grad_norm_ (float64): the norm and the
// scale on the GPU, with n no multiple of any block (read one float or 4 a load), many partial
// sums (the grid folded into y, windows under a storage-binding limit), clipping off,
// bit-identical reruns, and the scale feeding AdamW with no readback in between.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { GRADCLIP_CHUNK, gradClip } from '../src/kernels/gradclip.js';
import { AdamW } from '../src/kernels/optimizer.js';
import { adamwStep, clipGradNorm } from '../src/reference/optimizer.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

const sqrt = Math.sqrt;
function norm(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return sqrt(s);
}

async function clip(
  g: Float32Array,
  maxNorm: number,
  o: { off?: number; normOut?: 'same' | 'separate' | 'none'; maxGroupsX?: number; maxBindingBytes?: number } = {},
) {
  const off = o.off ?? 0;
  const padded = new Float32Array(off + g.length).fill(1e6);
  padded.set(g, off);
  const G = gpu.upload('grads', padded);
  const S = gpu.upload('scalars', Float32Array.of(-1, -1, -1, -1));
  const Nb = o.normOut === 'separate' ? gpu.upload('norm', Float32Array.of(-1, -1)) : undefined;
  const normOut = o.normOut === 'same' ? { buffer: S, offset: 3 } : Nb ? { buffer: Nb, offset: 1 } : undefined;
  const ds = await gradClip(gpu, {
    n: g.length,
    grads: { buffer: G, offset: off },
    maxNorm,
    scaleOut: { buffer: S, offset: 1 },
    normOut,
    maxGroupsX: o.maxGroupsX,
    maxBindingBytes: o.maxBindingBytes,
  });
  await gpu.run(ds);
  const s = await gpu.readF32(S, 0, 4);
  const nrm = normOut ? (await gpu.readF32(normOut.buffer, normOut.offset, 1))[0] : undefined;
  return {
    ds,
    G,
    S,
    Nb,
    scale: s[1],
    norm: nrm,
    untouched: [s[0], s[2]],
    cleanup: () => {
      gpu.release(...ds);
      gpu.free(G, S, Nb);
    },
  };
}

describe('gradient clipping against torch semantics', () => {
  const N1 = 64 * 37 + 5;
  const N2 = 300 * GRADCLIP_CHUNK + 777; // 301 partial sums: more than one per invocation in pass 2
  test.each([
    ['n = 64·37+5, clipping', N1, 0.5, 'same', {}],
    ['n = 64·37+5, under the threshold (scale 1)', N1, 1e4, 'separate', {}],
    ['n = 64·37+5, off (maxNorm 0), norm still computed', N1, 0, 'same', {}],
    ['n ≈ 1.23 M, grid folded into y', N2, 3, 'separate', { maxGroupsX: 7 }],
    [
      'n ≈ 1.23 M, windows of 4 blocks (storage-binding limit)',
      N2,
      3,
      'none',
      { maxBindingBytes: 4 * GRADCLIP_CHUNK * 4 + 256 },
    ],
    ['n = 64·37+4 at offset 4 (4 floats a load), clipping', N1 - 1, 0.5, 'same', { off: 4 }],
    [
      'n ≈ 1.23 M at offset 0 (4 floats a load), windows of 4 blocks',
      N2 + 3,
      3,
      'none',
      { off: 0, maxBindingBytes: 4 * GRADCLIP_CHUNK * 4 + 256 },
    ],
  ] as [
    string,
    number,
    number,
    'same' | 'separate' | 'none',
    { off?: number; maxGroupsX?: number; maxBindingBytes?: number },
  ][])('%s', async (_name, n, maxNorm, normOut, o) => {
    const g = rand.uniform(n, -0.02, 0.02);
    const r = await clip(g, maxNorm, { off: 3, normOut, ...o });
    if (o.maxBindingBytes) expect(r.ds.length).toBe(Math.ceil(n / (4 * GRADCLIP_CHUNK)) + 1);
    const want = norm(g);
    if (maxNorm > 0) {
      const ref = clipGradNorm([g], maxNorm);
      expectClose([ref.norm], [want], 1e-12, 'reference norm');
      expectClose([r.scale], [ref.scale], 1e-6, 'scale');
      if (maxNorm > want) expect(r.scale).toBe(1);
    } else {
      expect(r.scale).toBe(1);
    }
    if (r.norm !== undefined) expectClose([r.norm], [want], 1e-6, 'norm');
    expect(r.untouched).toEqual([-1, -1]);
    r.cleanup();
  });

  test('bit-identical when run twice, and with or without windows', async () => {
    const g = rand.normal(20 * GRADCLIP_CHUNK + 99);
    const a = await clip(g, 1, { normOut: 'same' });
    await gpu.run(a.ds);
    const again = await gpu.readF32(a.S, 0, 4);
    expect([again[1], again[3]]).toEqual([a.scale, a.norm]);
    const b = await clip(g, 1, { normOut: 'same', maxBindingBytes: 3 * GRADCLIP_CHUNK * 4 + 256 });
    expect(b.ds.length).toBe(8);
    expect([b.scale, b.norm]).toEqual([a.scale, a.norm]);
    a.cleanup();
    b.cleanup();
  });

  // 12 chunks and a partial 13th: some all ±0, one whose only nonzero is 1e-30 (its square underflows to 0).
  test.each([
    ['one float a load, whole buffer', 3, undefined],
    ['4 floats a load, windows of 3 blocks', 0, 3 * GRADCLIP_CHUNK * 4 + 256],
  ])('chunk flags: 1 where a gradient is not ±0 (%s), the norm unchanged', async (_name, off, maxBindingBytes) => {
    const n = 12 * GRADCLIP_CHUNK + (off ? 501 : 500);
    const g = rand.normal(n);
    const zero = (c: number) => g.fill(0, c * GRADCLIP_CHUNK, Math.min(n, (c + 1) * GRADCLIP_CHUNK));
    for (const c of [0, 2, 3, 7, 12]) zero(c);
    for (let i = 3 * GRADCLIP_CHUNK; i < 4 * GRADCLIP_CHUNK; i += 7) g[i] = -0;
    g[7 * GRADCLIP_CHUNK + 4095] = 1e-30;
    g[12 * GRADCLIP_CHUNK] = -0;
    const want = [0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    const padded = new Float32Array(off + n).fill(1e6);
    padded.set(g, off);
    const G = gpu.upload('grads', padded);
    const S = gpu.upload('scalars', Float32Array.of(-1, -1));
    const F = gpu.upload('flags', new Uint32Array(2 + want.length).fill(7));
    const run = async (flags: boolean) => {
      const ds = await gradClip(gpu, {
        n,
        grads: { buffer: G, offset: off },
        maxNorm: 1,
        scaleOut: { buffer: S, offset: 0 },
        normOut: { buffer: S, offset: 1 },
        chunkFlags: flags ? { buffer: F, offset: 1 } : undefined,
        maxBindingBytes,
      });
      await gpu.run(ds);
      gpu.release(...ds);
      return gpu.read(S, Uint32Array, 0, 2);
    };
    const withFlags = await run(true);
    expect(Array.from(await gpu.read(F, Uint32Array, 0, 2 + want.length))).toEqual([7, ...want, 7]);
    expect(Array.from(await run(false))).toEqual(Array.from(withFlags));
    expectClose([new Float32Array(withFlags.buffer)[1]], [norm(g)], 1e-6, 'norm');
    gpu.free(G, S, F);
  });

  test('the scale feeds AdamW on the GPU: one step equals clip_grad_norm_ then AdamW', async () => {
    const n = 5000;
    const p0 = rand.uniform(n);
    const g = rand.normal(n);
    const P = gpu.upload('params', p0);
    const G = gpu.upload('grads', g);
    const M = gpu.buffer('m', n * 4);
    const V = gpu.buffer('v', n * 4);
    const S = gpu.buffer('scalars', 16);
    const ds = await gradClip(gpu, {
      n,
      grads: { buffer: G },
      maxNorm: 1,
      scaleOut: { buffer: S },
      normOut: { buffer: S, offset: 1 },
    });
    const opt = await AdamW.create(gpu, {
      n,
      params: { buffer: P },
      grads: { buffer: G },
      m: { buffer: M },
      v: { buffer: V },
      gradScale: { buffer: S },
      weightDecay: 0.1,
    });
    opt.setStep(1, 1e-3);
    await gpu.run([...ds, ...opt.dispatches]);
    const {
      grads: [gc],
    } = clipGradNorm([g], 1);
    const ref = adamwStep(p0, gc, new Float64Array(n), new Float64Array(n), 1, { lr: 1e-3, weightDecay: 0.1 });
    expectClose(await gpu.readF32(M, 0, n), ref.m, 1e-5, 'm (clipped gradients)');
    expectClose(await gpu.readF32(P, 0, n), ref.param, 1e-6, 'params');
    expect(Array.from(await gpu.readF32(G, 0, n))).toEqual(Array.from(g)); // gradients untouched
    gpu.release(...ds, ...opt.dispatches);
    gpu.free(P, G, M, V, S);
  });
});

test.each([
  ['clipping', 0.5],
  ['under the threshold', 1e4],
  ['off', 0],
])('loss scaling (%s): the norm and the scale are those of the gradients divided by S', async (_n, maxNorm) => {
  const n = 64 * 11 + 3;
  const S = 1024; // a power of two: g·S and back is exact
  const g = rand.uniform(n, -0.02, 0.02);
  const G = gpu.upload(
    'scaled grads',
    Float32Array.from(g, (x) => x * S),
  );
  const out = gpu.upload('scalars', Float32Array.of(-1, -1, -1, -1));
  const lossScale = gpu.upload('loss scale', Float32Array.of(7, S));
  const ds = await gradClip(gpu, {
    n,
    grads: { buffer: G },
    maxNorm,
    scaleOut: { buffer: out, offset: 0 },
    normOut: { buffer: out, offset: 1 },
    unscale: { buffer: lossScale, offset: 1 },
  });
  await gpu.run(ds);
  const [scale, nrm] = await gpu.readF32(out, 0, 2);
  const want = norm(g);
  expectClose([nrm], [want], 1e-6, 'unscaled norm');
  const clipScale = maxNorm > 0 ? clipGradNorm([g], maxNorm).scale : 1;
  expectClose([scale * S], [clipScale], 1e-6, 'scale × S');
  gpu.release(...ds);
  gpu.free(G, out, lossScale);
});

test('bad specs are refused with the reason', async () => {
  const G = gpu.buffer('g', 64);
  const S = gpu.buffer('s', 16);
  await expect(gradClip(gpu, { n: 4, grads: { buffer: G }, maxNorm: -1, scaleOut: { buffer: S } })).rejects.toThrow(
    /maxNorm/,
  );
  await expect(gradClip(gpu, { n: 0, grads: { buffer: G }, maxNorm: 1, scaleOut: { buffer: S } })).rejects.toThrow(
    /positive integer/,
  );
  await expect(
    gradClip(gpu, { n: 4, grads: { buffer: G }, maxNorm: 1, scaleOut: { buffer: G, offset: 8 } }),
  ).rejects.toThrow(/must not share/);
  await expect(
    gradClip(gpu, { n: 4, grads: { buffer: G }, maxNorm: 1, scaleOut: { buffer: S }, normOut: { buffer: S } }),
  ).rejects.toThrow(/same element/);
  gpu.free(G, S);
});

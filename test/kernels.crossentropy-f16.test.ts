// The fused cross-entropy head on mixed-precision inputs and with a gradient multiplier (issue 15):
//   - h and/or wte as f16 tensors (packed halves, offsets in halves, odd ones included) against float64 computed on
//     the f16-rounded values: evaluation (losses, argmax) and training (dh, dwte accumulating), odd N, V no multiple of
//     the row tile, chunks smaller than N, a logit scale ≠ 1 (the CWT head's 1 / temperature), ignored targets, the
//     software (REGS) and the hardware (staged) plans;
//   - the GPU-side gradient multiplier (dynamic loss scaling): a power of two scales dh and dwte exactly and leaves
//     losses and argmax bit for bit, in f32 and in f16;
//   - the specs refused (dh over an f16 h, f16 outputs, a multiplier without gradients).
// Training on the software plan runs both forwards (CrossEntropySpec.forward): the fused one and matmul's product.
// Tolerances: the inputs are exactly representable in f32 and the arithmetic is f32, so the errors are those of the
// f32 head (kernels.crossentropy.test.ts: 1e-5); only the reference's inputs are rounded to f16.
import { asAdapterKind, F16_PATHS, openTestGpu, useF16TestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import { bothForwards, expectArgmaxMaximal, padded } from './helpers/crossentropy.js';
import type { Gpu } from '../src/gpu/device.js';
import { crossEntropyHead, type CrossEntropySpec } from '../src/kernels/crossentropy.js';
import type { TensorRef } from '../src/kernels/types.js';
import { crossEntropyTied, crossEntropyTiedBackward } from '../src/reference/crossentropy.js';
import { packF16, roundF16 } from '../src/util/f16.js';

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
  logitScale?: number;
  /** Rows whose target is -1. */
  ignored?: number[];
  hHalf?: boolean;
  eHalf?: boolean;
  /** Offsets in their tensors' elements (halves for f16). */
  offH?: number;
  offE?: number;
  /** Which gradients (none: evaluation, with argmax). */
  dh?: boolean;
  dwte?: boolean;
  /** The gradient multiplier's value; where it sits (its own buffer, or the losses' after the N rows). */
  gradScale?: number;
  gradScaleInLosses?: boolean;
  /** dwte starts at zero rather than random (for the exact-scaling comparison). */
  zeroDwte?: boolean;
  /** Build under the hardware plan (staged tiles instead of per-invocation rows). */
  hardware?: boolean;
  /** Reuse these inputs (h, E, targets, dwte0) instead of fresh ones. */
  inputs?: Inputs;
  /** With gradients: how the logits are computed (default: the adapter's). */
  forward?: 'fused' | 'matmul';
}

interface Inputs {
  h: Float32Array;
  E: Float32Array;
  targets: Int32Array;
  dwte0: Float32Array;
}

/** A tensor in a buffer of its own, `offset` elements in, surrounded by random values: f32 or packed halves. */
function upload(name: string, data: Float32Array, offset: number, half: boolean): TensorRef {
  const all = padded(rand, data, offset);
  return half
    ? { buffer: gpu.upload(name, packF16(all)), offset, dtype: 'f16' }
    : { buffer: gpu.upload(name, all), offset };
}

async function runCase(c: Case) {
  const { N, V, d } = c;
  const inputs: Inputs = c.inputs ?? {
    h: rand.uniform(N * d),
    E: rand.uniform(V * d),
    targets: Int32Array.from(rand.int(N, V), (t, i) => (c.ignored?.includes(i) ? -1 : t)),
    dwte0: c.zeroDwte ? new Float32Array(V * d) : rand.uniform(V * d),
  };
  const { targets, dwte0 } = inputs;
  // What the kernel sees: f16 tensors hold the rounded values.
  const h = c.hHalf ? inputs.h.map(roundF16) : inputs.h;
  const E = c.eHalf ? inputs.E.map(roundF16) : inputs.E;
  const grads = Boolean(c.dh || c.dwte);
  const count = targets.filter((t) => t >= 0).length;

  const H = upload('h', inputs.h, c.offH ?? 0, Boolean(c.hHalf));
  const W = upload('wte', inputs.E, c.offE ?? 0, Boolean(c.eHalf));
  const T = gpu.upload('targets', targets);
  const L = gpu.buffer('losses', (N + 2) * 4);
  const S = gpu.upload('loss scale', Float32Array.of(count > 0 ? 1 / count : 0));
  let gradScale: TensorRef | undefined;
  let GS: GPUBuffer | undefined;
  if (c.gradScale !== undefined) {
    if (c.gradScaleInLosses) {
      gradScale = { buffer: L, offset: N + 1 };
    } else {
      GS = gpu.buffer('grad scale', 12);
      gradScale = { buffer: GS, offset: 2 };
    }
    gpu.write(gradScale.buffer, Float32Array.of(c.gradScale), gradScale.offset! * 4);
  }
  const DH = c.dh ? gpu.buffer('dh', (N * d + 1) * 4) : undefined;
  const G = c.dwte ? gpu.upload('dwte', padded(rand, dwte0, 5)) : undefined;
  const A = grads ? undefined : gpu.buffer('argmax', N * 4);

  const spec: CrossEntropySpec = {
    N,
    V,
    d,
    chunkRows: c.chunkRows,
    logitScale: c.logitScale,
    h: H,
    wte: W,
    targets: { buffer: T },
    losses: { buffer: L },
    lossScale: grads ? { buffer: S } : undefined,
    gradScale,
    dh: DH && { buffer: DH, offset: 1 },
    dwte: G && { buffer: G, offset: 5 },
    argmax: A && { buffer: A },
    forward: c.forward,
  };
  const head = await asAdapterKind(gpu, c.hardware ? 'hardware' : gpu.adapter.kind, () => crossEntropyHead(gpu, spec));
  try {
    await gpu.run(head.dispatches);
    return {
      h,
      E,
      inputs,
      losses: await gpu.readF32(L, 0, N),
      argmax: A ? await gpu.read(A, Uint32Array, 0, N) : undefined,
      dh: DH ? await gpu.readF32(DH, 1, N * d) : undefined,
      dwte: G ? await gpu.readF32(G, 5, V * d) : undefined,
    };
  } finally {
    gpu.release(...head.dispatches);
    gpu.free(H.buffer, W.buffer, T, L, S, GS, DH, G, A);
  }
}

/** The float64 head on what the kernel saw: logits = s·h·Eᵀ, so the reference runs on s·h and dh picks up s. */
function checkAgainstReference(c: Case, r: Awaited<ReturnType<typeof runCase>>, tol = 1e-5) {
  const { N, V, d } = c;
  const s = c.logitScale ?? 1;
  const sh = Float64Array.from(r.h, (x) => s * x);
  const ref = crossEntropyTied(sh, r.E, r.inputs.targets, N, V, d);
  expectClose(r.losses, ref.nll, tol, 'losses');
  if (r.argmax) expectArgmaxMaximal(r.argmax, ref.logits, N, V);
  const g = c.gradScale ?? 1;
  const back = crossEntropyTiedBackward(1, sh, r.E, r.inputs.targets, N, V, d);
  if (r.dh)
    expectClose(
      r.dh,
      back.dh.map((x) => g * s * x),
      tol,
      'dh',
    );
  if (r.dwte)
    expectClose(
      r.dwte,
      back.dE.map((x, i) => g * x + r.inputs.dwte0[i]),
      tol,
      'dwte (accumulated)',
    );
}

// Both f16 kernel paths (Gpu.f16Kernels), each on a device of its own.
describe.each(F16_PATHS)('%s kernels', (kernels, device) => {
  useF16TestGpu(
    kernels,
    device,
    () => gpu,
    (g) => (gpu = g),
  );

  describe('f16 h and wte: evaluation (losses, argmax) against float64 on the rounded inputs', () => {
    const cases: [string, Case][] = [
      ['f16 h, N=7 V=131 d=10, chunks of 3, odd offset', { N: 7, V: 131, d: 10, chunkRows: 3, hHalf: true, offH: 3 }],
      [
        'f16 wte, N=9 V=203 d=12, odd offset, logit scale 1/0.7, an ignored row',
        { N: 9, V: 203, d: 12, eHalf: true, offE: 5, logitScale: 1 / 0.7, ignored: [4] },
      ],
      [
        'both f16, N=13 V=77 d=9 (odd d: rows start mid-word), chunks of 4, two ignored rows',
        { N: 13, V: 77, d: 9, chunkRows: 4, hHalf: true, eHalf: true, offH: 1, offE: 7, ignored: [0, 12] },
      ],
      [
        'both f16, the hardware plan (staged tiles), N=11 V=300 d=16, chunks of 5, logit scale 2.5',
        {
          N: 11,
          V: 300,
          d: 16,
          chunkRows: 5,
          hHalf: true,
          eHalf: true,
          offH: 4,
          offE: 3,
          logitScale: 2.5,
          hardware: true,
        },
      ],
    ];
    test.each(cases)('%s', async (_name, c) => {
      checkAgainstReference(c, await runCase(c));
    });
  });

  describe('f16 h and wte: training (dh, dwte accumulating) against float64 on the rounded inputs', () => {
    // dh = scratch·wte and dwte += scratchᵀ·h read wte and h through matmul's f16 operands.
    const cases: [string, Case][] = [
      [
        'f16 h, N=7 V=131 d=10, chunks of 3, odd offset, ignored rows, logit scale 1/0.7',
        { N: 7, V: 131, d: 10, chunkRows: 3, hHalf: true, offH: 3, ignored: [1, 5], logitScale: 1 / 0.7, dh: true },
      ],
      [
        'f16 wte, dwte alone, N=9 V=77 d=12, chunks of 4, odd offset',
        { N: 9, V: 77, d: 12, chunkRows: 4, eHalf: true, offE: 5, ignored: [3], dwte: true },
      ],
      [
        'f16 wte, N=9 V=77 d=12, chunks of 4, odd offset',
        { N: 9, V: 77, d: 12, chunkRows: 4, eHalf: true, offE: 5, ignored: [3], dh: true, dwte: true },
      ],
      [
        'both f16, N=13 V=140 d=9, chunks of 5, odd offsets, logit scale 1/0.7',
        {
          N: 13,
          V: 140,
          d: 9,
          chunkRows: 5,
          hHalf: true,
          eHalf: true,
          offH: 1,
          offE: 3,
          ignored: [6],
          logitScale: 1 / 0.7,
          dh: true,
          dwte: true,
        },
      ],
      [
        'both f16, the hardware plan, N=11 V=203 d=16, chunks of 4',
        { N: 11, V: 203, d: 16, chunkRows: 4, hHalf: true, eHalf: true, offH: 2, offE: 1, dh: true, dwte: true },
      ],
    ];
    test.each(bothForwards(cases))('%s', async (_name, c) => {
      checkAgainstReference(c, await runCase(c));
    });
  });
});

describe('the gradient multiplier', () => {
  const cases: [string, Case][] = [
    ['f32, ×1024, in a buffer of its own', { N: 9, V: 131, d: 10, chunkRows: 4, gradScale: 1024 }],
    [
      'f32, ×2⁻³, beside the losses, logit scale 1/0.7',
      { N: 7, V: 77, d: 12, logitScale: 1 / 0.7, gradScale: 0.125, gradScaleInLosses: true },
    ],
    ['f16 h, ×65536 (2¹⁶)', { N: 9, V: 131, d: 10, chunkRows: 4, hHalf: true, offH: 1, gradScale: 65536 }],
    [
      'f16 h and wte, ×2⁻⁵, the hardware plan',
      { N: 7, V: 203, d: 16, chunkRows: 3, hHalf: true, eHalf: true, offE: 3, gradScale: 1 / 32, hardware: true },
    ],
  ];
  test.each(bothForwards(cases))('%s: exactly scale × the unscaled gradients, the same losses', async (_name, c) => {
    // dwte from zero, so that the accumulation adds nothing of its own (scale·(x + y) ≠ scale·x + y in rounding).
    const grads = { dh: true, dwte: true, zeroDwte: true };
    const scaled = await runCase({ ...c, ...grads });
    const plain = await runCase({ ...c, ...grads, gradScale: undefined, inputs: scaled.inputs });
    expect(Array.from(scaled.losses)).toEqual(Array.from(plain.losses));
    const k = c.gradScale!;
    let off = 0;
    for (const [got, base] of [
      [scaled.dh!, plain.dh!],
      [scaled.dwte!, plain.dwte!],
    ])
      for (let i = 0; i < base.length; i++) if (!(got[i] === k * base[i])) off++; // NaN counts as off
    expect(off).toBe(0);
    expect(plain.dh!.some((x) => x !== 0)).toBe(true);
    checkAgainstReference({ ...c, ...grads }, scaled);
  });

  test('evaluation is untouched: a multiplier without gradients is refused', async () => {
    const b = (n: number) => gpu.buffer('b', n * 4);
    const bufs = [b(16), b(16), b(4), b(4), b(1)];
    const [h, wte, t, l, g] = bufs;
    await expect(
      crossEntropyHead(gpu, {
        N: 4,
        V: 4,
        d: 4,
        h: { buffer: h },
        wte: { buffer: wte },
        targets: { buffer: t },
        losses: { buffer: l },
        gradScale: { buffer: g },
      }),
    ).rejects.toThrow(/gradScale scales gradients/);
    gpu.free(...bufs);
  });
});

test('f16 specs refused with the reason', async () => {
  const b = (n: number) => gpu.buffer('b', n * 4);
  const bufs = { h: b(64), wte: b(64), t: b(8), l: b(8), s: b(4), g: b(4), dh: b(64), dwte: b(64) };
  const base = {
    N: 4,
    V: 4,
    d: 4,
    h: { buffer: bufs.h, dtype: 'f16' as const },
    wte: { buffer: bufs.wte },
    targets: { buffer: bufs.t },
    losses: { buffer: bufs.l },
    lossScale: { buffer: bufs.s },
  };
  await expect(crossEntropyHead(gpu, { ...base, dh: { buffer: bufs.h } })).rejects.toThrow(
    /dh \(f32\) cannot overwrite an f16 h/,
  );
  await expect(crossEntropyHead(gpu, { ...base, dh: { buffer: bufs.dh, dtype: 'f16' } })).rejects.toThrow(
    /dh must be f32/,
  );
  await expect(crossEntropyHead(gpu, { ...base, dwte: { buffer: bufs.dwte, dtype: 'f16' } })).rejects.toThrow(
    /dwte must be f32/,
  );
  await expect(
    crossEntropyHead(gpu, { ...base, dh: { buffer: bufs.dh }, gradScale: { buffer: bufs.g, dtype: 'f16' } }),
  ).rejects.toThrow(/gradScale must be f32/);
  await expect(
    crossEntropyHead(gpu, { ...base, dh: { buffer: bufs.dh }, gradScale: { buffer: bufs.l, offset: 2 } }),
  ).rejects.toThrow(/gradScale lies inside the losses/);
  await expect(
    crossEntropyHead(gpu, { ...base, dh: { buffer: bufs.dh }, gradScale: { buffer: bufs.dh, offset: 63 } }),
  ).rejects.toThrow(/gradScale and dh must be in different buffers/);
  gpu.free(...Object.values(bufs));
});

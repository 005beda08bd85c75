// The step guard: its decision against the host reference for finite, huge, subnormal, NaN and
// ±Inf losses and norms, sticky or not; and the optimizers it drives: a skipped AdamW or SGD step
// leaves parameters and moments bit for bit as they were, and an applied one is bit for bit the
// step of an optimizer without the guard. With loss scaling: overflows skip without sticking, and the scale
// halves, grows or stays fixed as the host reference says.
import { openTestGpu } from './helpers/gpu.js';
import { SEED, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { AdamW, Sgd } from '../src/kernels/optimizer.js';
import { GUARD_BYTES, GUARD_LOSS_OFFSET, readLossScale, stepGuard, writeLossScale } from '../src/kernels/step-guard.js';
import { guardStep, type GuardState } from '../src/reference/step-guard.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());

const SPECIAL = [0, 1.5, -2.25, 3e38, -3e38, 1e-45, NaN, Infinity, -Infinity];

async function guardWords(guard: GPUBuffer): Promise<GuardState> {
  const w = await gpu.read(guard, Uint32Array, 0, 2);
  return { skip: w[0] !== 0, skipped: w[1] };
}

test.each([true, false])('the guard decides as the reference does (sticky %s)', async (sticky) => {
  const guard = gpu.buffer('guard', GUARD_BYTES);
  const scalars = gpu.buffer('scalars', 16);
  const check = await stepGuard(gpu, { guard, norm: { buffer: scalars, offset: 3 }, sticky });
  let want: GuardState = { skip: false, skipped: 0 };
  // Finite pairs first (nothing skipped), then every special pair, in an order that comes back to finite ones.
  const pairs: [number, number][] = [
    [2.5, 0.5],
    [3e38, 1e-45],
  ];
  for (const a of SPECIAL) for (const b of SPECIAL) pairs.push([a, b]);
  pairs.push([1, 1], [0.5, 2]);
  for (const [loss, norm] of pairs) {
    gpu.write(guard, Float32Array.of(loss), GUARD_LOSS_OFFSET);
    gpu.write(scalars, Float32Array.of(norm), 12);
    await gpu.run([check]);
    want = guardStep(want, Math.fround(loss), Math.fround(norm), sticky);
    expect([loss, norm, await guardWords(guard)]).toEqual([loss, norm, want]);
  }
  expect(want.skipped).toBeGreaterThan(0);
  gpu.release(check);
  gpu.free(guard, scalars);
});

const N = 64 * 9 + 3;

async function optimizers(rand: ReturnType<typeof makeRandom>, skip?: GPUBuffer) {
  const params = gpu.upload('params', rand.uniform(N));
  const grads = gpu.upload('grads', rand.normal(N));
  const m = gpu.upload('m', rand.normal(N, 0.1));
  const v = gpu.upload(
    'v',
    Float32Array.from(rand.uniform(N), (x) => Math.abs(x)),
  );
  const adamw = await AdamW.create(gpu, {
    n: N,
    params: { buffer: params },
    grads: { buffer: grads },
    m: { buffer: m },
    v: { buffer: v },
    skip,
    weightDecay: 0.1,
  });
  const sgdParams = gpu.upload('sgd params', rand.uniform(N));
  const sgd = await Sgd.create(gpu, { n: N, params: { buffer: sgdParams }, grads: { buffer: grads }, skip });
  adamw.setStep(3, 1e-2);
  sgd.setStep(3, 1e-2);
  return { buffers: [params, m, v, sgdParams, grads], dispatches: [...adamw.dispatches, ...sgd.dispatches] };
}

async function snapshot(buffers: GPUBuffer[]): Promise<Buffer[]> {
  return Promise.all(buffers.map(async (b) => Buffer.from((await gpu.read(b, Uint32Array)).buffer)));
}

test('a skipped step changes nothing; an applied one is the unguarded step, bit for bit', async () => {
  const guard = gpu.buffer('guard', GUARD_BYTES);
  const guarded = await optimizers(makeRandom(SEED), guard);
  const before = await snapshot(guarded.buffers);

  gpu.write(guard, Uint32Array.of(1), 0); // the flag as the guard sets it
  await gpu.run(guarded.dispatches);
  const skipped = await snapshot(guarded.buffers);
  skipped.forEach((b, i) => expect([i, b.equals(before[i])]).toEqual([i, true]));

  gpu.write(guard, Uint32Array.of(0), 0);
  await gpu.run(guarded.dispatches);
  const applied = await snapshot(guarded.buffers);
  expect(applied[0].equals(before[0])).toBe(false);

  // The same inputs through optimizers with no guard at all.
  const plain = await optimizers(makeRandom(SEED));
  const plainBefore = await snapshot(plain.buffers);
  plainBefore.forEach((b, i) => expect([i, b.equals(before[i])]).toEqual([i, true]));
  await gpu.run(plain.dispatches);
  (await snapshot(plain.buffers)).forEach((b, i) => expect([i, b.equals(applied[i])]).toEqual([i, true]));
});

describe('loss scaling', () => {
  // A sequence that overflows (finite loss, Inf/NaN norm), diverges (non-finite loss), runs good steps and overflows
  // at scale 1 (a divergence then).
  const steps: [number, number][] = [
    [2, 0.5],
    [2, Infinity],
    [2, NaN],
    [1, 1],
    [1, 1],
    [1, 1],
    [1, -Infinity],
    [1, 2],
  ];
  test.each([
    ['dynamic, growth 2', 8, 2],
    ['dynamic, halving down to 1, where an overflow is a divergence', 2, 3],
    ['fixed', 4, 0],
  ])('%s: skip, scale, good steps and overflows as the reference, never sticky for an overflow', async (_n, s, g) => {
    const guard = gpu.buffer('guard', GUARD_BYTES);
    const scalars = gpu.buffer('scalars', 16);
    const norm = { buffer: scalars, offset: 2 };
    const check = await stepGuard(gpu, { guard, norm, sticky: false, scaling: { scale: s, growth: g } });
    writeLossScale(gpu, guard, { scale: s, goodSteps: 0, overflows: 0 });
    let want: GuardState = { skip: false, skipped: 0, scale: s, goodSteps: 0, overflows: 0 };
    const seen: GuardState[] = [];
    for (const [loss, norm] of steps) {
      gpu.write(guard, Float32Array.of(loss), GUARD_LOSS_OFFSET);
      gpu.write(scalars, Float32Array.of(norm), 8);
      await gpu.run([check]);
      want = guardStep(want, loss, norm, false, { growth: g });
      const st = await readLossScale(gpu, guard);
      const w = await gpu.read(guard, Uint32Array, 0, 2);
      const got: GuardState = { skip: w[0] !== 0, skipped: w[1], ...st };
      expect([loss, norm, got]).toEqual([loss, norm, want]);
      seen.push(got);
    }
    // The sequence exercised what it is for: an overflow skip, an applied step after it.
    expect(seen[1].skip && !seen[3].skip).toBe(s > 1);
    if (g === 2) expect(seen.some((x, i) => i > 0 && x.scale! > seen[i - 1].scale!)).toBe(true);
    if (g === 0) expect(seen.every((x) => x.scale === s)).toBe(true);
    gpu.release(check);
    gpu.free(guard, scalars);
  });

  test('a scale outside 1..2^24 or a fractional growth is refused', async () => {
    const guard = gpu.buffer('guard', GUARD_BYTES);
    const norm = { buffer: gpu.buffer('n', 16) };
    await expect(stepGuard(gpu, { guard, norm, scaling: { scale: 0.5, growth: 1 } })).rejects.toThrow(/1\.\.16777216/);
    await expect(stepGuard(gpu, { guard, norm, scaling: { scale: 8, growth: 1.5 } })).rejects.toThrow(/whole number/);
    gpu.free(guard, norm.buffer);
  });
});

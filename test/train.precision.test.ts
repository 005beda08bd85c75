// Mixed precision (--precision f16), on the packed-f16 path (llvmpipe) unless said otherwise:
//   - the whole training step against float64 for CE and CWT, decoder and encoder, under --loss-scale 1024: one
//     plain SGD step (the single-step contract of DESIGN.md) within 3e-2 relative update error per tensor, through
//     both f16 kernel paths (packed-f16 on llvmpipe, shader-f16 on lavapipe);
//   - a forced overflow (a loss scale far past f16's range) skips the step: weights and AdamW moments bit for bit as
//     they were, the overflow counted; a dynamic scale halves, a fixed one stays;
//   - a dynamic scale that changes during the run survives --resume bit for bit (weights, moments, losses, scales);
//   - --precision auto trains in f32 here and says why; --loss-scale with f32 is refused;
//   - the GLUE fine-tuner in f16 gives the f32 gradient within f16 rounding.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { F16_PATHS, openTestGpu, useF16TestGpu } from './helpers/gpu.js';
import { checkF16Step, F16_STEP_CASES } from './helpers/f16-step.js';
import { SINGLE_STEP, TINY_DECODER, tinyTrainingDir } from './helpers/tiny-run.js';
import { relErr } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { pretrain, readMetrics, type PretrainOptions } from '../src/train/pretrain.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { initParams } from '../src/model/params.js';
import { Trainer } from '../src/train/trainer.js';
import { resolvePrecision } from '../src/train/precision.js';
import { Finetuner } from '../src/glue/finetune.js';
import type { Update } from '../src/train/update.js';

let gpu: Gpu;
let dir: string;
let corpus: string;
const decoder = TINY_DECODER;

beforeAll(async () => {
  gpu = await openTestGpu();
  ({ dir, corpus } = await tinyTrainingDir('precision'));
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function opts(out: string, o: Partial<PretrainOptions>): PretrainOptions {
  return { ...SINGLE_STEP, data: [corpus], out: join(dir, out), seqLen: 8, batchSize: 2, precision: 'f16', ...o };
}

const ck = (run: string) => loadCheckpoint(join(dir, run, 'checkpoint'), { optimizer: true });

describe.each(F16_PATHS)('%s kernels', (kernels, device) => {
  useF16TestGpu(
    kernels,
    device,
    () => gpu,
    (g) => (gpu = g),
  );
  const title = '%s %s: one SGD step at --precision f16 --loss-scale 1024 against float64';
  test.each(F16_STEP_CASES)(title, (arch, objective) => checkF16Step(gpu, { dir, corpus }, kernels, arch, objective));
});

describe('a forced overflow', () => {
  test.each([
    ['dynamic', 1],
    ['fixed', 0],
  ])('%s scale: the step is skipped, weights and moments bit for bit as they were', async (_name, growth) => {
    const scale = 2 ** 24; // gradients times 2^24 overflow f16 (65504) long before they reach a weight
    const tr = await Trainer.create(gpu, decoder, {
      B: 2,
      T: 8,
      historySize: 4,
      optimizer: 'adamw',
      weightDecay: 0.1,
      gradClip: 1,
      precision: 'f16',
      lossScaling: { scale, growth },
    });
    try {
      const params = initParams(decoder, 5);
      const n = params.length;
      const m = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e-3);
      const v = Float32Array.from({ length: n }, (_, i) => (1 + Math.cos(i)) * 1e-6);
      tr.writeState(params, { m, v });
      const tokens = Array.from({ length: 16 }, (_, i) => (i * 7919) % 50000);
      tr.step([{ inputs: tokens, targets: tokens.map((t) => (t + 1) % 50000) }], 1, 1e-2, 0);
      const [rec] = await tr.readHistory(1);
      expect([Number.isFinite(rec.loss), Number.isFinite(rec.gradNorm), rec.skipped, rec.lossScale]).toEqual([
        true,
        false,
        true,
        scale,
      ]);
      const st = await tr.readState();
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
      expect([same(st.params, params), same(st.m!, m), same(st.v!, v)]).toEqual([true, true, true]);
      expect(await tr.readLossScale()).toEqual({ scale: growth ? scale / 2 : scale, goodSteps: 0, overflows: 1 });
      // Not a divergence: nothing sticks, and the next step at a small scale applies.
      expect(await tr.skippedSteps()).toBe(0);
      tr.writeLossScale({ scale: 8, goodSteps: 0, overflows: 1 });
      tr.step([{ inputs: tokens, targets: tokens.map((t) => (t + 1) % 50000) }], 2, 1e-2, 1);
      const [, next] = await tr.readHistory(2);
      expect([next.skipped, Number.isFinite(next.gradNorm)]).toEqual([false, true]);
      expect(same((await tr.readState()).params, params)).toBe(false);
    } finally {
      tr.destroy();
    }
  });
});

test('a dynamic scale that changes during the run: N steps, then --resume for N more, bit for bit', async () => {
  // Growth every 2 steps from 65536: the tiny model's gradients overflow at the start, so the scale both halves and
  // doubles within the run.
  const common = { optimizer: 'adamw', lr: 1e-2, gradClip: 1, weightDecay: 0.1, lossScaleGrowth: 2 } as const;
  await pretrain(gpu, opts('whole', { ...common, steps: 8 }));
  await pretrain(gpu, opts('split', { ...common, steps: 4, scheduleSteps: 8 }));
  await pretrain(gpu, opts('split', { ...common, steps: 8, resume: true }));
  const [a, b] = [await ck('whole'), await ck('split')];
  expect(Buffer.from(b.params.buffer).equals(Buffer.from(a.params.buffer))).toBe(true);
  expect(Buffer.from(b.optimizer!.m.buffer).equals(Buffer.from(a.optimizer!.m.buffer))).toBe(true);
  expect(b.hlm.loss_scale).toEqual(a.hlm.loss_scale);
  const rows = (run: string) =>
    readMetrics(join(dir, run))
      .filter((r) => 'loss' in r)
      .map((r) => [r.step, r.loss, r.loss_scale, r.skipped]);
  expect(rows('split')).toEqual(rows('whole'));
  const scales = new Set(rows('whole').map((r) => r[2]));
  expect(scales.size).toBeGreaterThan(1);
});

test('--precision auto trains in f32 on this adapter and says why; --loss-scale needs f16', async () => {
  const auto = resolvePrecision(gpu, { precision: 'auto' });
  expect(auto.precision).toBe('f32');
  expect(auto.reason).toMatch(/packed-f16/);
  expect(resolvePrecision(gpu, { precision: 'f16' }).lossScaling).toEqual({ scale: 65536, growth: 2000 });
  expect(resolvePrecision(gpu, { precision: 'f16', lossScale: 512 }).lossScaling).toEqual({ scale: 512, growth: 0 });
  expect(() => resolvePrecision(gpu, { precision: 'f32', lossScale: 512 })).toThrow(/--loss-scale applies to/);
  const r = await pretrain(gpu, opts('auto', { precision: 'auto' }));
  expect(r.precision).toBe('f32');
  // Refused before anything is written.
  await expect(pretrain(gpu, opts('contradiction', { precision: 'f32', lossScale: 8 }))).rejects.toThrow(
    /--loss-scale applies to --precision f16/,
  );
  expect(existsSync(join(dir, 'contradiction'))).toBe(false);
});

test('GLUE fine-tuner, f16 with a loss scale of 1024: the f32 gradient within f16 rounding', async () => {
  const config = { ...decoder, n_positions: 40, num_labels: 3 };
  const params = initParams(config, 5);
  const rows = [5, 9, 3, 33, 17, 2].map((len) =>
    Array.from({ length: len }, (_, i) => ((len * 31 + i * 17) % 999) + 1),
  );
  // AdamW's first moment after one step from zero, without clipping, is (1 − β1)·g: the gradient, read back.
  const firstMoment = async (precision: 'f32' | 'f16') => {
    const ft = await Finetuner.create(gpu, config, {
      batchSize: 3,
      gradAccum: 2,
      maxSeqLen: 40,
      pooling: 'mean',
      optimizer: 'adamw',
      weightDecay: 0,
      gradClip: 0,
      precision,
      lossScaling: precision === 'f16' ? { scale: 1024, growth: 0 } : undefined,
    });
    try {
      ft.reset(params);
      ft.step(rows, [0, 2, 1, 1, 0, 2], undefined, 1, 0);
      const [loss] = await ft.readLosses();
      const m = await gpu.readF32((ft as unknown as { update: Update }).update.m!, 0, params.length);
      return { loss, m, overflows: await ft.overflowSkips() };
    } finally {
      ft.destroy();
    }
  };
  const f32 = await firstMoment('f32');
  const f16 = await firstMoment('f16');
  const err = relErr(f16.m, f32.m);
  console.log(`GLUE fine-tuner, f16 against f32: relative gradient error ${err.toExponential(2)}`);
  expect([!(err <= 3e-2), err > 0]).toEqual([false, true]);
  expect(!(Math.abs(f16.loss - f32.loss) <= 1e-2 * f32.loss)).toBe(false);
  expect(f16.overflows).toBe(0);
});

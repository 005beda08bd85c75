// The train suite: one optimizer step (forward, head, backward, gradient clipping, AdamW) of a
// preset decoder with the CE head and with the CWT head, through the same Trainer that
// `hlm pretrain` uses. Throughput is tokens/s; gpu_ms.phases splits the GPU time into
// forward, head, backward and optimizer where the adapter has timestamp queries.
// --quick: the tiny preset only. bench/torch_bench.py runs the same steps in PyTorch.
// --precision f16 runs the mixed-precision step (src/train/precision.ts) instead; its records carry
// params.precision f16, so that they never pair with an f32 record, and params.f16_kernels (packed-f16 or shader-f16).
import { crossEntropyFlops } from '../kernels/crossentropy.js';
import { streamRng } from '../data/random.js';
import { preset, type ModelConfig, type Objective } from '../model/config.js';
import { initParams, paramCount } from '../model/params.js';
import { Trainer } from '../train/trainer.js';
import { precisionOf, resolvePrecision, type PrecisionOptions } from '../train/precision.js';
import type { BenchCase, Prepared } from './harness.js';

/**
 * Batch and sequence per preset: the same on every device, so that runs compare (small: 16×512, the batch of issue 3's
 * PyTorch reference).
 */
export const TRAIN_SHAPES = { tiny: { B: 4, T: 64 }, small: { B: 16, T: 512 }, base: { B: 8, T: 512 } } as const;

/**
 * FLOPs of one step: 6 per non-embedding parameter and token, attention's full T×T scores, and the head's three
 * products.
 */
export function trainStepFlops(c: ModelConfig, B: number, T: number): number {
  const N = B * T;
  const d = c.n_embd;
  const body = paramCount(c) - c.vocab_size * d - c.n_positions * d;
  const attention = 12 * c.n_layer * B * T * T * d;
  const head =
    c.objective === 'ce'
      ? crossEntropyFlops(N, c.vocab_size, d, { dh: true, dwte: true })
      : crossEntropyFlops(N, N, d, { dh: true, dwte: true });
  return 6 * N * body + attention + head;
}

function trainCase(name: keyof typeof TRAIN_SHAPES, objective: Objective, precision: PrecisionOptions): BenchCase {
  const { B, T } = TRAIN_SHAPES[name];
  const config: ModelConfig = { ...preset(name), objective };
  const f16 = precision.precision === 'f16';
  const params: BenchCase['params'] = {
    preset: name,
    objective,
    batch: B,
    seq: T,
    optimizer: 'adamw',
    ...(f16 ? { precision: 'f16' } : {}),
  };
  return {
    suite: 'train',
    name: `train-${name}`,
    test: `${objective} step ${B}x${T}${f16 ? ' f16' : ''}`,
    params,
    build: async ({ gpu }): Promise<Prepared> => {
      const resolved = resolvePrecision(gpu, precision);
      const trainer = await Trainer.create(gpu, config, {
        ...precisionOf(resolved),
        B,
        T,
        optimizer: 'adamw',
        weightDecay: 0.1,
        gradClip: 1,
        historySize: 1,
      });
      // Which f16 kernels (src/gpu/device.ts f16Kernels) the device's products took: known once they are built (a
      // subgroup-matrix device whose check fails has fallen back to shader-f16 by then).
      if (f16) params.f16_kernels = gpu.f16Kernels;
      try {
        trainer.writeState(initParams(config, 1));
        const next = streamRng(20240520, B, T);
        const rows = Array.from({ length: B }, () =>
          Int32Array.from({ length: T + 1 }, () => Math.floor(next() * config.vocab_size)),
        );
        const inputs = Int32Array.from(rows.flatMap((r) => Array.from(r.subarray(0, T))));
        const targets = Int32Array.from(rows.flatMap((r) => Array.from(r.subarray(1))));
        const forward = new Set(trainer.model.forward);
        const head = new Set(trainer.head.train);
        const backward = new Set(trainer.model.backward);
        let step = 0;
        return {
          step: () => trainer.step([{ inputs, targets }], ++step, 1e-4, 0),
          work: { tokens: B * T, flops: trainStepFlops(config, B, T) },
          unit: 'tokens/s',
          phase: (d) =>
            forward.has(d) ? 'forward' : head.has(d) ? 'head' : backward.has(d) ? 'backward' : 'optimizer',
          check: async () => {
            const [h] = await trainer.readHistory(1);
            return {
              reference:
                'none at this size (hlm check compares a 2x9-token step with float64): the last loss must be finite',
              metric: 'loss',
              value: Number.isFinite(h.loss) ? h.loss : null,
              ok: Number.isFinite(h.loss),
            };
          },
          dispose: () => trainer.destroy(),
        };
      } catch (e) {
        trainer.destroy();
        throw e;
      }
    },
  };
}

export function trainCases(quick: boolean, precision: PrecisionOptions = {}): BenchCase[] {
  const presets = quick ? (['tiny'] as const) : (['tiny', 'small', 'base'] as const);
  return presets.flatMap((p) => [trainCase(p, 'ce', precision), trainCase(p, 'cwt', precision)]);
}

// The single-step contract under mixed precision (DESIGN.md): one plain SGD step at --precision f16 --loss-scale 1024
// from a tiny checkpoint against the float64 step (src/reference/gpt2.ts), within 3e-2 relative update error per
// tensor; shared by test/train.precision.test.ts (packed-f16, shader-f16) and the subgroup-matrix phase's test.
import { join } from 'node:path';
import { EOT, SINGLE_STEP, TINY_DECODER, TINY_ENCODER } from './tiny-run.js';
import { worstUpdateError } from './check.js';
import type { Gpu } from '../../src/gpu/device.js';
import { pretrain, readMetrics, type PretrainOptions } from '../../src/train/pretrain.js';
import { loadCheckpoint } from '../../src/model/checkpoint.js';
import { BatchSource } from '../../src/data/batches.js';
import { maskTokens } from '../../src/data/mlm.js';
import { prepareData } from '../../src/data/shards.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';
import { gpt2LossAndGrads } from '../../src/reference/gpt2.js';

export const F16_STEP_CASES = [
  ['decoder', 'ce'],
  ['decoder', 'cwt'],
  ['encoder', 'ce'],
  ['encoder', 'cwt'],
] as const;

/** In tinyTrainingDir's `dir` (its init checkpoints) on `corpus`: trains the step, checks it, logs the worst error. */
export async function checkF16Step(
  gpu: Gpu,
  where: { dir: string; corpus: string },
  kernels: string,
  arch: 'decoder' | 'encoder',
  objective: 'ce' | 'cwt',
): Promise<void> {
  const { dir, corpus } = where;
  const opts = (out: string, o: Partial<PretrainOptions>): PretrainOptions => ({
    ...SINGLE_STEP,
    data: [corpus],
    out: join(dir, out),
    seqLen: 8,
    batchSize: 2,
    precision: 'f16',
    ...o,
  });
  const ck = (run: string) => loadCheckpoint(join(dir, run, 'checkpoint'), { optimizer: true });
  const config = arch === 'decoder' ? TINY_DECODER : TINY_ENCODER;
  const init = join(dir, arch === 'decoder' ? 'init' : 'init-enc');
  const out = `f16-${kernels}-${arch}-${objective}`;
  const B = 2;
  const S = 8;
  // A large lr: every update far above the float32 rounding of p + Δ (LayerNorm weights sit at 1).
  const lr = 100;
  await pretrain(gpu, opts(out, { init, arch, objective, cwtTemperature: 0.8, lr, lossScale: 1024 }));
  const start = await loadCheckpoint(init);
  const after = await ck(out);
  const tok = await loadTokenizer('gpt2');
  const data = await prepareData([corpus], tok);
  const src = BatchSource.open(data.shards, { batchSize: B, seqLen: S, order: 'sequential', seed: 3 });
  const batch = src.batchAt(0);
  src.close();
  const m =
    arch === 'decoder'
      ? batch
      : maskTokens(batch.inputs, {
          seed: 3,
          step: 1,
          maskId: EOT + 1,
          vocabSize: tok.vocabSize,
          specialIds: tok.specialIds,
        });
  const named: Record<string, Float64Array> = {};
  for (const t of start.layout.tensors)
    named[t.name] = Float64Array.from(start.params.subarray(t.offset, t.offset + t.size));
  const ref = gpt2LossAndGrads(named, config, m.inputs, m.targets, B, S, objective, { temperature: 0.8 });
  const w = worstUpdateError(
    start.params,
    after.params,
    (name, size) => Float64Array.from({ length: size }, (_, i) => -lr * ref.grads[name][i]),
    config,
  );
  const worst = `worst relative update error ${w.err.toExponential(2)} (${w.name})`;
  console.log(`--precision f16 (${kernels} kernels), ${arch} ${objective}: ${worst}`);
  expect([w.name, !(w.err <= 3e-2)]).toEqual([w.name, false]);
  const [row] = readMetrics(join(dir, out));
  // The loss is computed in f32 from f16 operands: close to float64, not equal.
  expect(!(Math.abs(row.loss - ref.loss) <= 1e-2 * ref.loss)).toBe(false);
  expect([row.loss_scale, row.skipped]).toEqual([1024, false]);
}

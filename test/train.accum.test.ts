// Gradient accumulation (--grad-accum N): N micro-batches' gradients summed, every target of the step weighing the
// same, before one update.
//   - one SGD step at --grad-accum 2 --batch-size B equals one at --batch-size 2B for the CE decoder (the
//     single-step contract of DESIGN.md), in either data order;
//   - the whole step against float64 for CE and CWT, decoder and encoder: the expected update is
//     −lr·Σ_i (K_i/K)·g_i over the micro-batches' mean gradients g_i and target counts K_i (CWT scores each target
//     against its own micro-batch; an encoder masks each micro-batch on its own, drawn by its batch index);
//   - resume stays bit for bit, and the data position advances by N micro-batches a step;
//   - the GLUE fine-tuner: one step of 2 micro-batches (in different length buckets, with class weights) adds up to
//     the gradient of one batch of all their rows.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { EOT, SINGLE_STEP, TINY_DECODER, TINY_ENCODER, tinyTrainingDir } from './helpers/tiny-run.js';
import { expectClose, makeRandom, relErr, worstUpdateError } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { pretrain, readMetrics, type PretrainOptions } from '../src/train/pretrain.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { BatchSource } from '../src/data/batches.js';
import { maskTokens } from '../src/data/mlm.js';
import { prepareData } from '../src/data/shards.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { gpt2LossAndGrads } from '../src/reference/gpt2.js';
import type { ModelConfig } from '../src/model/config.js';
import { initParams } from '../src/model/params.js';
import { Finetuner } from '../src/glue/finetune.js';
import type { Update } from '../src/train/update.js';

let gpu: Gpu;
let dir: string;
let corpus: string;
const rand = makeRandom();
const decoder = TINY_DECODER;
const encoder = TINY_ENCODER;

beforeAll(async () => {
  gpu = await openTestGpu();
  ({ dir, corpus } = await tinyTrainingDir('accum'));
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const T = 16;
function opts(out: string, o: Partial<PretrainOptions>): PretrainOptions {
  return { ...SINGLE_STEP, seqLen: T, data: [corpus], out: join(dir, out), ...o };
}

const ck = (run: string) => loadCheckpoint(join(dir, run, 'checkpoint'));

test.each(['sequential', 'shuffled'] as const)(
  'CE decoder, %s order: one SGD step at --grad-accum 2 --batch-size 2 is the step at --batch-size 4',
  async (order) => {
    const init = join(dir, 'init');
    await pretrain(gpu, opts(`ce-whole-${order}`, { init, order, batchSize: 4 }));
    await pretrain(gpu, opts(`ce-accum-${order}`, { init, order, batchSize: 2, gradAccum: 2 }));
    const [start, whole, accum] = await Promise.all([
      loadCheckpoint(init),
      ck(`ce-whole-${order}`),
      ck(`ce-accum-${order}`),
    ]);
    const w = worstUpdateError(
      start.params,
      accum.params,
      (name, size) => {
        const t = start.layout.byName.get(name)!;
        return Float64Array.from({ length: size }, (_, i) => whole.params[t.offset + i] - start.params[t.offset + i]);
      },
      decoder,
    );
    expect(!(w.err <= 1e-5)).toBe(false);
    const [a] = readMetrics(join(dir, `ce-accum-${order}`));
    const [b] = readMetrics(join(dir, `ce-whole-${order}`));
    expectClose([a.loss, a.grad_norm], [b.loss, b.grad_norm], 1e-6, 'loss and gradient norm');
    expect(a.tokens).toBe(b.tokens);
    // The same rows: two micro-batches of 2 where the big run took one batch of 4.
    expect((accum.hlm.data as { position: number }).position).toBe(2);
    expect((whole.hlm.data as { position: number }).position).toBe(1);
    expect(JSON.parse(readFileSync(join(dir, `ce-accum-${order}`, 'checkpoint', 'run.json'), 'utf8')).grad_accum).toBe(
      2,
    );
  },
);

test.each([
  ['decoder', 'ce'],
  ['decoder', 'cwt'],
  ['encoder', 'ce'],
  ['encoder', 'cwt'],
] as const)('%s %s: the whole step over 3 micro-batches against float64', async (arch, objective) => {
  const config = arch === 'decoder' ? decoder : encoder;
  const init = join(dir, arch === 'decoder' ? 'init' : 'init-enc');
  const out = `f64-${arch}-${objective}`;
  const B = 2;
  const S = 8; // 16 positions a micro-batch: an encoder masks 2 of them
  // A large lr: every update far above the float32 rounding of p + Δ (LayerNorm weights sit at 1).
  const lr = 100;
  await pretrain(
    gpu,
    opts(out, { init, arch, objective, batchSize: B, seqLen: S, gradAccum: 3, cwtTemperature: 0.8, lr }),
  );
  const start = await loadCheckpoint(init);
  const after = await ck(out);

  // The step's micro-batches as hlm draws them: batches 0..2 at batch size B, an encoder's masked at batch index + 1.
  const tok = await loadTokenizer('gpt2');
  const data = await prepareData([corpus], tok);
  const src = BatchSource.open(data.shards, { batchSize: B, seqLen: S, order: 'sequential', seed: 3 });
  const named: Record<string, Float64Array> = {};
  for (const t of start.layout.tensors)
    named[t.name] = Float64Array.from(start.params.subarray(t.offset, t.offset + t.size));
  const grads: { count: number; loss: number; grads: Record<string, Float64Array> }[] = [];
  for (let b = 0; b < 3; b++) {
    const batch = src.batchAt(b);
    const m =
      arch === 'decoder'
        ? batch
        : maskTokens(batch.inputs, {
            seed: 3,
            step: b + 1,
            maskId: EOT + 1,
            vocabSize: tok.vocabSize,
            specialIds: tok.specialIds,
          });
    grads.push(gpt2LossAndGrads(named, config, m.inputs, m.targets, B, S, objective, { temperature: 0.8 }));
  }
  src.close();
  const K = grads.reduce((s, g) => s + g.count, 0);
  const w = worstUpdateError(
    start.params,
    after.params,
    (name, size) => {
      const u = new Float64Array(size);
      for (const g of grads) for (let i = 0; i < size; i++) u[i] -= (lr * g.count * g.grads[name][i]) / K;
      return u;
    },
    config,
  );
  console.log(`grad-accum 3, ${arch} ${objective}: worst relative update error ${w.err.toExponential(2)} (${w.name})`);
  expect(!(w.err <= 1e-4)).toBe(false);
  const [m] = readMetrics(join(dir, out));
  const loss = grads.reduce((s, g) => s + (g.count * g.loss) / K, 0);
  expectClose([m.loss], [loss], 1e-5, 'logged loss (the mean over every target of the step)');
  expect(m.tokens).toBe(3 * B * S);
});

test('N steps at --grad-accum 2, then --resume for N more: bit for bit the weights of 2N steps', async () => {
  const o = { optimizer: 'adamw', weightDecay: 0.1, gradClip: 1, order: 'shuffled', lr: 1e-2, warmup: 1 } as const;
  const common = { ...o, batchSize: 2, gradAccum: 2, schedule: 'cosine' as const, scheduleSteps: 4, logEvery: 3 };
  await pretrain(gpu, opts('resume-whole', { ...common, steps: 4 }));
  await pretrain(gpu, opts('resume-split', { ...common, steps: 2 }));
  await pretrain(gpu, opts('resume-split', { ...common, steps: 4, resume: true }));
  const [a, b] = await Promise.all([ck('resume-whole'), ck('resume-split')]);
  expect(Buffer.from(b.params.buffer).equals(Buffer.from(a.params.buffer))).toBe(true);
  expect(Buffer.from(b.optimizer!.v.buffer).equals(Buffer.from(a.optimizer!.v.buffer))).toBe(true);
  expect((b.hlm.data as { position: number }).position).toBe(8);
  const losses = (run: string) =>
    readMetrics(join(dir, run))
      .filter((m) => 'loss' in m)
      .map((m) => [m.step, m.loss, m.tokens]);
  expect(losses('resume-split')).toEqual(losses('resume-whole'));
  expect(losses('resume-whole').map(([, , tokens]) => tokens)).toEqual([64, 128, 192, 256]);
});

test('GLUE fine-tuner: two micro-batches in different buckets, class weights: the gradient of the union', async () => {
  const config: ModelConfig = { ...decoder, n_positions: 40, num_labels: 3 };
  const params = initParams(config, 5);
  const rows = [5, 9, 3, 33, 17, 2].map((len) => Array.from(rand.int(len, 1000), (x) => x + 1));
  const labels = [0, 2, 1, 1, 0, 2];
  const weights = [1, 0.5, 2, 1, 3, 0.25];
  // AdamW's first moment after one step from zero, without clipping, is (1 − β1)·g: the gradient, read back.
  const firstMoment = async (batchSize: number, gradAccum: number) => {
    const ft = await Finetuner.create(gpu, config, {
      batchSize,
      gradAccum,
      maxSeqLen: 40,
      pooling: 'last',
      optimizer: 'adamw',
      weightDecay: 0,
      gradClip: 0,
    });
    try {
      ft.reset(params);
      ft.step(rows, labels, weights, 1, 0);
      const [loss] = await ft.readLosses();
      const m = await gpu.readF32((ft as unknown as { update: Update }).update.m!, 0, params.length);
      return { loss, m };
    } finally {
      ft.destroy();
    }
  };
  const whole = await firstMoment(6, 1);
  const accum = await firstMoment(3, 2); // rows 0..2 in the 16 bucket, rows 3..5 in the 40 one
  const err = relErr(accum.m, whole.m);
  expect(!(err <= 1e-5)).toBe(false);
  expectClose([accum.loss], [whole.loss], 1e-6, 'loss');
  await expect(firstMoment(2, 2)).rejects.toThrow(/a step takes 1\.\.4 rows/);
});

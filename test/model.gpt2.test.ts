// The whole GPU model against the float64 reference: one micro-batch's loss and the gradient
// of every parameter, for a decoder and an encoder, on a tiny odd-sized GPT-2.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom, randomGpt2Params } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { Gpt2 } from '../src/model/gpt2.js';
import { createCeHead, createCwtHead } from '../src/model/heads.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { paramLayout } from '../src/model/params.js';
import { gpt2LossAndGrads } from '../src/reference/gpt2.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

function tinyConfig(causal: boolean): ModelConfig {
  return {
    ...preset('tiny'),
    vocab_size: 37,
    n_positions: 11,
    n_embd: 12,
    n_layer: 2,
    n_head: 3,
    causal,
    mask_token_id: causal ? null : 36,
  };
}

async function checkStep(
  config: ModelConfig,
  B: number,
  T: number,
  targets: Int32Array,
  inputs: Int32Array,
  kind: 'ce' | 'cwt' = 'ce',
  temperature = 1,
  labels?: string[],
) {
  const layout = paramLayout(config);
  const { params, named } = randomGpt2Params(layout, rand);
  const model = await Gpt2.create(gpu, config, { B, T, train: true });
  const K = Array.from(targets).filter((t) => t >= 0).length;
  const head =
    kind === 'ce'
      ? await createCeHead(model, { rows: config.causal ? undefined : K })
      : await createCwtHead(model, { K, temperature });
  model.writeParams(params);
  model.setTokens(inputs);
  head.setTargets(targets);
  const step = [{ clear: model.grads! }, ...model.forward, ...head.train, ...model.backward];
  labels?.push(...step.flatMap((c) => ('label' in c ? [c.label] : [])));
  await gpu.run(step);
  const loss = (await gpu.readF32(head.loss, 0, 1))[0];
  const grads = await model.readGrads();
  const ref = gpt2LossAndGrads(named, { ...config }, inputs, targets, B, T, kind, { temperature });
  expectClose(await gpu.readF32(model.hf, 0, B * T * config.n_embd), ref.hidden, 1e-5, 'final hidden states');
  expectClose([loss], [ref.loss], 1e-5, 'loss');
  for (const t of layout.tensors) {
    expectClose(grads.subarray(t.offset, t.offset + t.size), ref.grads[t.name], 2e-4, `d ${t.name}`);
  }
  head.destroy();
  model.destroy();
}

test('decoder: loss and every gradient match float64', async () => {
  const config = tinyConfig(true);
  const B = 2;
  const T = 7;
  const tokens = rand.int(B * (T + 1), config.vocab_size);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = tokens[b * (T + 1) + t];
      targets[b * T + t] = tokens[b * (T + 1) + t + 1];
    }
  targets[3] = -1; // an ignored position
  await checkStep(config, B, T, targets, inputs);
});

// What a hardware GPU runs, here on the software adapter: 128x128 tiles, the whole CE head in
// one chunk, and K split in the head's dh and dwte (K = V, K = rows) and in every weight
// gradient (K = B·T = 1,024), the partial products sharing one scratch buffer.
test(
  'decoder under the hardware plan (split-K products, one head chunk): loss and every ' + 'gradient match float64',
  async () => {
    const adapter = gpu.adapter as { kind: string };
    const kind = adapter.kind;
    adapter.kind = 'hardware';
    try {
      const config = { ...tinyConfig(true), vocab_size: 1100, n_positions: 128 };
      const B = 8;
      const T = 128;
      const tokens = rand.int(B * (T + 1), config.vocab_size);
      const inputs = new Int32Array(B * T);
      const targets = new Int32Array(B * T);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          inputs[b * T + t] = tokens[b * (T + 1) + t];
          targets[b * T + t] = tokens[b * (T + 1) + t + 1];
        }
      const labels: string[] = [];
      await checkStep(config, B, T, targets, inputs, 'ce', 1, labels);
      const split = labels.filter((l) => / K parts\)$/.test(l));
      expect(split.some((l) => l.includes('dh')) && split.some((l) => l.includes('c_fc dW'))).toBe(true);
    } finally {
      adapter.kind = kind;
    }
  },
);

test('encoder (bidirectional, masked targets): loss and every gradient match float64', async () => {
  const config = tinyConfig(false);
  const B = 3;
  const T = 5;
  const inputs = Int32Array.from(rand.int(B * T, 36));
  const targets = new Int32Array(B * T).fill(-1);
  for (const p of [0, 4, 7, 8, 13]) {
    targets[p] = inputs[p];
    inputs[p] = 36;
  }
  await checkStep(config, B, T, targets, inputs);
});

test(
  'decoder with the CWT head (every position a target, duplicate targets, τ = 0.7): loss and every gradient ' +
    'match float64',
  async () => {
    const config = tinyConfig(true);
    const B = 2;
    const T = 7;
    const inputs = Int32Array.from(rand.int(B * T, 37));
    const targets = Int32Array.from(rand.int(B * T, 5)); // few distinct tokens: many duplicates among the negatives
    await checkStep(config, B, T, targets, inputs, 'cwt', 0.7);
  },
);

test('encoder with the CWT head (masked positions only): loss and every gradient match float64', async () => {
  const config = tinyConfig(false);
  const B = 3;
  const T = 5;
  const inputs = Int32Array.from(rand.int(B * T, 36));
  const targets = new Int32Array(B * T).fill(-1);
  for (const p of [1, 4, 7, 8, 13, 14]) {
    targets[p] = inputs[p];
    inputs[p] = 36;
  }
  targets[8] = targets[1]; // a duplicate target
  await checkStep(config, B, T, targets, inputs, 'cwt');
});

test(
  'finite differences through the GPU model itself (decoder and encoder, CE and CWT heads) ' +
    'agree with its gradients',
  async () => {
    for (const [causal, kind] of [
      [true, 'ce'],
      [false, 'ce'],
      [true, 'cwt'],
      [false, 'cwt'],
    ] as const) {
      const config = tinyConfig(causal);
      const B = 2;
      const T = 5;
      const N = B * T;
      const layout = paramLayout(config);
      const params = new Float32Array(layout.total);
      for (const t of layout.tensors)
        params.set(
          t.name.includes('ln_') && t.name.endsWith('weight')
            ? rand.uniform(t.size, 0.5, 1.5)
            : rand.normal(t.size, 0.3),
          t.offset,
        );
      const inputs = Int32Array.from(rand.int(N, 36));
      const targets = Int32Array.from(rand.int(N, 36));
      if (!causal) for (let i = 0; i < N; i += 3) targets[i] = -1; // an encoder scores some positions only
      const K = Array.from(targets).filter((t) => t >= 0).length;
      const model = await Gpt2.create(gpu, config, { B, T, train: true });
      const head =
        kind === 'ce' ? await createCeHead(model, { rows: K }) : await createCwtHead(model, { K, temperature: 1 });
      model.setTokens(inputs);
      head.setTargets(targets);
      const lossAt = async (p: Float32Array) => {
        model.writeParams(p);
        await gpu.run([...model.forward, ...head.eval]);
        return (await gpu.readF32(head.loss, 0, 1))[0];
      };
      model.writeParams(params);
      await gpu.run([{ clear: model.grads! }, ...model.forward, ...head.train, ...model.backward]);
      const grads = await model.readGrads();
      // One coordinate per tensor, central differences in f32 with a step large enough for f32.
      const num: number[] = [];
      const ana: number[] = [];
      for (const t of layout.tensors) {
        const i = t.offset + Math.floor(rand.next() * t.size);
        const h = 1e-2;
        const p = params.slice();
        p[i] = params[i] + h;
        const up = await lossAt(p);
        p[i] = params[i] - h;
        const down = await lossAt(p);
        num.push((up - down) / (2 * h));
        ana.push(grads[i]);
      }
      expectClose(ana, num, 2e-2, `${causal ? 'decoder' : 'encoder'} ${kind} finite differences`);
      head.destroy();
      model.destroy();
    }
  },
);

// The GLUE head through the whole GPU model against the float64 GPT-2 with the reference
// classifier: loss and every gradient (score head included), for each pooling, encoder and
// decoder, right-padded rows of different lengths and a partial batch; and padding that
// changes nothing: a row's logits are the same alone, padded, or in another length bucket.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom, randomGpt2Params } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { Gpt2 } from '../src/model/gpt2.js';
import { createClassifierHead, poolingMatrix, type Pooling } from '../src/model/classifier.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { paramLayout } from '../src/model/params.js';
import { gpt2LossAndGrads } from '../src/reference/gpt2.js';
import { classifierHeadReference } from '../src/reference/classifier.js';
import { Finetuner, bucketLengths } from '../src/glue/finetune.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

function config(causal: boolean, C: number): ModelConfig {
  return {
    ...preset('tiny'),
    vocab_size: 41,
    n_positions: 19,
    n_embd: 12,
    n_layer: 2,
    n_head: 3,
    causal,
    mask_token_id: causal ? null : 40,
    num_labels: C,
  };
}

function randomParams(c: ModelConfig) {
  const layout = paramLayout(c);
  return { layout, ...randomGpt2Params(layout, rand) };
}

const cases: [string, boolean, Pooling, number][] = [
  ['encoder, mean pooling, 3 classes', false, 'mean', 3],
  ['encoder, first-token pooling, 2 classes', false, 'first', 2],
  ['decoder, last-token pooling, 2 classes', true, 'last', 2],
  ['decoder, mean pooling, regression', true, 'mean', 1],
];

test.each(cases)('%s: loss and every gradient match float64', async (_name, causal, pooling, C) => {
  const c = config(causal, C);
  const { layout, params, named } = randomParams(c);
  const B = 4;
  const T = 9;
  const lengths = [9, 4, 1]; // a partial batch: the fourth row is padding
  const targets = lengths.map(() => (C === 1 ? 5 * rand.uniform(1, 0, 1)[0] : rand.int(1, C)[0]));
  const weights = [1, 2.5, 0.5];
  const model = await Gpt2.create(gpu, c, { B, T, train: true, padding: true });
  const head = await createClassifierHead(model, pooling);
  const tokens = rand.int(B * T, c.vocab_size);
  model.writeParams(params);
  model.setTokens(tokens);
  head.setBatch({ lengths, targets, weights });
  await gpu.run([{ clear: model.grads! }, ...model.forward, ...head.train, ...model.backward]);
  const loss = (await gpu.readF32(head.loss, 0, 1))[0];
  const grads = await model.readGrads();
  // The reference runs the same padded batch with the key-padding mask; the padding row gets length 1, as on the GPU.
  const refHead = classifierHeadReference({
    W: named['score.weight'],
    b: named['score.bias'],
    C,
    d: c.n_embd,
    T,
    pooling,
    lengths,
    targets,
    weights,
  });
  const ref = gpt2LossAndGrads(named, c, tokens, new Int32Array(B * T), B, T, refHead, { lengths: [...lengths, 1] });
  expectClose([loss], [ref.loss], 1e-5, 'loss');
  for (const t of layout.tensors)
    expectClose(grads.subarray(t.offset, t.offset + t.size), ref.grads[t.name], 2e-4, `d ${t.name}`);
  head.destroy();
  model.destroy();
});

test('the pooling matrix: mean, first and last real positions of each row', () => {
  const P = poolingMatrix('mean', [2, 3], 3, 4);
  expect(Array.from(P.subarray(0, 12))).toEqual([0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  expect(Array.from(P.subarray(12, 24)).map((x) => +x.toFixed(6))).toEqual([
    0, 0, 0, 0, 0.333333, 0.333333, 0.333333, 0, 0, 0, 0, 0,
  ]);
  expect(Array.from(P.subarray(24))).toEqual(new Array(12).fill(0));
  expect(Array.from(poolingMatrix('last', [2], 1, 4))).toEqual([0, 1, 0, 0]);
  expect(Array.from(poolingMatrix('first', [2], 1, 4))).toEqual([1, 0, 0, 0]);
});

test.each([
  [false, 'mean'],
  [true, 'last'],
] as const)('padding and buckets change nothing (causal %s)', async (causal, pooling) => {
  const c = config(causal, 2);
  const { params } = randomParams(c);
  expect(bucketLengths(19)).toEqual([16, 19]);
  expect(bucketLengths(16)).toEqual([16]);
  expect(bucketLengths(100)).toEqual([16, 32, 64, 100]);
  const ft = await Finetuner.create(gpu, c, {
    batchSize: 3,
    maxSeqLen: 19,
    pooling,
    optimizer: 'adamw',
    weightDecay: 0,
    gradClip: 1,
  });
  ft.reset(params);
  const rows = [5, 17, 1, 12, 3].map((n) => Array.from(rand.int(n, c.vocab_size)));
  const together = await ft.predict(rows); // batched by length: some rows share a batch, in either bucket
  for (let i = 0; i < rows.length; i++) {
    const alone = await ft.predict([rows[i]]);
    expectClose(alone, together.subarray(2 * i, 2 * i + 2), 1e-5, `row ${i} alone vs batched`);
  }
  ft.destroy();
});

// GPU ownership scopes: what a scope (and its children) allocated and kept is freed together,
// and destroying a trainer, a generator, a fine-tuning head or a scoring run gives back every
// byte and buffer it took (gpu.memory() returns to where it was).
import { openTestGpu } from './helpers/gpu.js';
import { makeRandom, randomGpt2Params } from './helpers/check.js';
import type { Gpu, MemoryStats } from '../src/gpu/device.js';
import { scoreRequests } from '../src/eval/score.js';
import { Generator } from '../src/infer/generator.js';
import { add } from '../src/kernels/add.js';
import { createClassifierHead } from '../src/model/classifier.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { Gpt2 } from '../src/model/gpt2.js';
import { paramLayout } from '../src/model/params.js';
import { Trainer } from '../src/train/trainer.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 53,
  n_positions: 24,
  n_embd: 24,
  n_layer: 2,
  n_head: 3,
};

const held = (): Pick<MemoryStats, 'bytesNow' | 'buffers'> => {
  const { bytesNow, buffers } = gpu.memory();
  return { bytesNow, buffers };
};

/**
 * Run `use` twice and check that the second run leaves the device as it found it. The first
 * run may leave what lives until the device closes (split-K scratch: gpu.shared).
 */
async function leavesNothing(use: () => Promise<void>): Promise<void> {
  await use();
  const before = held();
  await use();
  expect(held()).toEqual(before);
}

test('a scope frees its buffers, the dispatches it keeps and its child scopes together', async () => {
  const before = held();
  const scope = gpu.scope('test');
  const x = scope.buffer('x', 100); // 112 bytes
  const y = scope.upload('y', new Float32Array(28)); // 112 bytes
  const child = scope.scope('child');
  const z = child.buffer('z', 112);
  const d = child.keep(await add(gpu, { rows: 4, cols: 7, out: { buffer: z }, a: { buffer: x }, b: { buffer: y } }));
  expect(d.owned.length).toBeGreaterThan(0); // its parameter block
  const adopted = scope.adopt(gpu.buffer('adopted', 16))[0];
  expect(adopted.label).toBe('adopted');
  expect(child.name).toBe('test/child');
  expect(held().buffers - before.buffers).toBe(4 + d.owned.length);
  expect(held().bytesNow - before.bytesNow).toBeGreaterThanOrEqual(3 * 112 + 16);

  // A child released on its own takes only its own share, and leaves its parent.
  const grandchild = child.scope('grandchild');
  grandchild.buffer('w', 16);
  child.release();
  expect(held().buffers - before.buffers).toBe(3);
  expect(held().bytesNow - before.bytesNow).toBe(2 * 112 + 16);
  expect(() => child.buffer('late', 16)).toThrow(/"test\/child" used after release/);
  const second = scope.scope('second');
  second.buffer('v', 32);
  scope.release();
  expect(held()).toEqual(before);
  scope.release(); // twice: nothing left to free
  expect(held()).toEqual(before);
});

test('destroying a trainer (CE, CWT) gives back every byte and buffer', async () => {
  for (const objective of ['ce', 'cwt'] as const) {
    const config = { ...CONFIG, objective };
    await leavesNothing(async () => {
      const trainer = await Trainer.create(gpu, config, {
        B: 2,
        T: 6,
        historySize: 4,
        optimizer: 'adamw',
        weightDecay: 0.1,
        gradClip: 1,
      });
      const tokens = rand.int(12, config.vocab_size);
      trainer.step([{ inputs: tokens, targets: tokens }], 1, 1e-3, 0);
      expect((await trainer.readHistory(1))[0].loss).toBeGreaterThan(0);
      trainer.destroy();
    });
  }
}, 60_000);

test('destroying a generator, with and without the KV cache, gives back every byte and buffer', async () => {
  const { params } = randomGpt2Params(paramLayout(CONFIG), rand);
  for (const cache of [true, false]) {
    await leavesNothing(async () => {
      const gen = await Generator.create(gpu, CONFIG, params, { cache, maxContext: 20 });
      await gen.prefill([1, 2, 3]); // a prefill model of 8
      await gen.step(4);
      await gen.prefill(Array.from(rand.int(9, CONFIG.vocab_size))); // another, of 16
      await gen.step(5);
      gen.destroy();
    });
  }
}, 60_000);

test('destroying a model frees the classifier head built on it; LAMBADA scoring frees what it took', async () => {
  const config = { ...CONFIG, num_labels: 3 };
  await leavesNothing(async () => {
    const model = await Gpt2.create(gpu, config, { B: 2, T: 5, train: true, padding: true });
    await createClassifierHead(model, 'mean');
    model.destroy();
  });
  const { params } = randomGpt2Params(paramLayout(CONFIG), rand);
  const requests = [0, 1, 2].map((index) => ({
    index,
    context: '',
    target: '',
    input: Array.from(rand.int(6 + index, CONFIG.vocab_size)),
    targetTokens: Array.from(rand.int(2, CONFIG.vocab_size)),
  }));
  await leavesNothing(async () => {
    const { scores } = await scoreRequests(gpu, CONFIG, params, requests, { batchSize: 2 });
    expect(scores.length).toBe(3);
  });
}, 60_000);

// The accuracy criterion of quantized inference, cheaply: a small decoder trained here for 120 steps on a
// synthetic Markov language (so its weights have a trained model's scale and its predictions are sharp) is
// scored the LAMBADA way (src/eval/score.ts) with f32, f16, int8 and q4 weights. The perplexity of int8 stays
// within 2% of f32's, q4's within 10%, f16's within 0.5%. The real-checkpoint figures are in the README.
import { openTestGpu } from './helpers/gpu.js';
import { makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import type { LambadaRequest } from '../src/eval/lambada.js';
import { aggregateLambada, Scorer, scoreRequests } from '../src/eval/score.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams } from '../src/model/params.js';
import type { WeightFormat } from '../src/model/quantize.js';
import { Trainer } from '../src/train/trainer.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

const V = 96;
const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: V,
  n_positions: 32,
  n_embd: 64,
  n_layer: 2,
  n_head: 4,
  eos_token_id: null,
};

// Each token has a likely successor (p 0.6), a second one (0.25), and otherwise any token.
const first = rand.int(V, V);
const second = rand.int(V, V);
function sequence(n: number): number[] {
  const s = [Math.floor(rand.next() * V)];
  while (s.length < n) {
    const u = rand.next();
    const t = s[s.length - 1];
    s.push(u < 0.6 ? first[t] : u < 0.85 ? second[t] : Math.floor(rand.next() * V));
  }
  return s;
}

async function train(steps: number): Promise<Float32Array> {
  const B = 8;
  const T = CONFIG.n_positions;
  const trainer = await Trainer.create(gpu, CONFIG, {
    B,
    T,
    historySize: 1,
    optimizer: 'adamw',
    weightDecay: 0,
    gradClip: 1,
  });
  try {
    trainer.writeState(initParams(CONFIG, rand.seed % 1000));
    for (let step = 1; step <= steps; step++) {
      const inputs: number[] = [];
      const targets: number[] = [];
      for (let b = 0; b < B; b++) {
        const s = sequence(T + 1);
        inputs.push(...s.slice(0, T));
        targets.push(...s.slice(1));
      }
      trainer.step([{ inputs, targets }], step, 1e-2, 0);
    }
    return (await trainer.readState()).params;
  } finally {
    trainer.destroy();
  }
}

test('perplexity of int8 within 2% of f32, q4 within 10%, f16 within 0.5% (a trained model)', async () => {
  const params = await train(120);
  const requests: LambadaRequest[] = Array.from({ length: 48 }, (_, index) => {
    const s = sequence(20 + (index % 7));
    const targetTokens = s.slice(-2);
    return { index, context: '', target: '', input: s.slice(0, -1), targetTokens };
  });
  const metrics: Partial<Record<WeightFormat, { accuracy: number; perplexity: number }>> = {};
  for (const weights of ['f32', 'f16', 'int8', 'q4'] as const) {
    const { scores } = await scoreRequests(gpu, CONFIG, params, requests, { weights });
    metrics[weights] = aggregateLambada(scores);
  }
  const f32 = metrics.f32!;
  // Trained: far below the uniform model's perplexity of V² over two target tokens.
  expect(f32.perplexity).toBeLessThan(V * 2);
  const ratio = (w: WeightFormat) => metrics[w]!.perplexity / f32.perplexity;
  const report = JSON.stringify(metrics);
  for (const [w, tol] of [
    ['f16', 0.005],
    ['int8', 0.02],
    ['q4', 0.1],
  ] as const) {
    if (!(Math.abs(ratio(w) - 1) <= tol))
      throw new Error(`${w}: perplexity ratio ${ratio(w)} (seed ${rand.seed}) ${report}`);
  }
}, 300_000);

test('a scorer with packed weights refuses log p(argmax), which the host computes from f32 weights', async () => {
  const params = initParams(CONFIG, 3);
  const scorer = await Scorer.create(gpu, CONFIG, params, { B: 1, T: 4, maxTargets: 1 }, { weights: 'int8' });
  try {
    expect(scorer.model.weights).toBe('int8');
    const row = { input: [1, 2, 3], targets: [4] };
    expect((await scorer.score([row]))[0].logprobs[0]).toBeLessThan(0);
    await expect(scorer.score([row], { argmaxLogprobs: true })).rejects.toThrow(/needs f32 weights; .* int8/);
  } finally {
    scorer.destroy();
  }
});

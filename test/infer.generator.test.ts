// Decoding against the float64 reference GPT-2: logits after the prefill and after each
// cached step equal the full reference forward of the same sequence; greedy decoding with and
// without the KV cache gives the same tokens; seeded sampling repeats; top-k 1 is greedy.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom, randomGpt2Params } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { Generator, generate, type GenerateOptions, type StopReason } from '../src/infer/generator.js';
import { argmaxHost, sampleToken } from '../src/infer/sampling.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { paramLayout } from '../src/model/params.js';
import { Rng } from '../src/model/random.js';
import { gpt2Forward } from '../src/reference/gpt2.js';
import { matmul } from '../src/reference/matmul.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 61,
  n_positions: 40,
  n_embd: 24,
  n_layer: 2,
  n_head: 3,
  eos_token_id: 60,
};

function randomModel(config: ModelConfig) {
  return randomGpt2Params(paramLayout(config), rand);
}

/** The reference's next-token logits after `seq`: the last position's h·Eᵀ (E = lm_head when untied). */
function referenceLogits(config: ModelConfig, named: Record<string, Float64Array>, seq: number[]): Float64Array {
  const { hidden } = gpt2Forward(named, config, seq, 1, seq.length, { logProbs: false });
  const d = config.n_embd;
  const E = named[config.tie_word_embeddings ? 'transformer.wte.weight' : 'lm_head.weight'];
  return matmul(hidden.subarray((seq.length - 1) * d), E, 1, config.vocab_size, d, false, true);
}

async function collect(
  gen: Generator,
  prompt: number[],
  o: GenerateOptions,
): Promise<{ tokens: number[]; stop: StopReason }> {
  const it = generate(gen, prompt, o);
  const tokens: number[] = [];
  for (let r = await it.next(); ; r = await it.next()) {
    if (r.done) return { tokens, stop: r.value };
    tokens.push(r.value);
  }
}

test.each([
  ['tied head', {}],
  ['untied lm_head', { tie_word_embeddings: false }],
])(
  'logits after prefill and each cached step equal the float64 forward (%s)',
  async (_, extra) => {
    const config = { ...CONFIG, ...extra };
    const { params, named } = randomModel(config);
    const gen = await Generator.create(gpu, config, params);
    const seq = Array.from(rand.int(5, config.vocab_size));
    await gen.prefill(seq);
    const check = async (what: string) => {
      const ref = referenceLogits(config, named, seq);
      expectClose(await gen.logits(), ref, 1e-4, what);
      expect(await gen.argmax()).toBe(argmaxHost(ref));
    };
    await check('after prefill of 5');
    for (let i = 0; i < 12; i++) {
      const t = rand.int(1, config.vocab_size)[0];
      await gen.step(t);
      seq.push(t);
      await check(`after step ${i + 1}`);
    }
    expect(gen.tokens()).toEqual(seq);
    // A new prefill starts over (a longer prompt: another prefill model, the same cache).
    const again = Array.from(rand.int(11, config.vocab_size));
    await gen.prefill(again);
    await gen.step(7);
    expectClose(await gen.logits(), referenceLogits(config, named, [...again, 7]), 1e-4, 'second sequence');
    gen.destroy();
  },
  60_000,
);

test('greedy decoding gives the same 20 tokens with and without the KV cache, and the reference argmaxes', async () => {
  const { params, named } = randomModel(CONFIG);
  const cached = await Generator.create(gpu, CONFIG, params);
  const full = await Generator.create(gpu, CONFIG, params, { cache: false });
  const prompt = Array.from(rand.int(6, 59));
  const o = { maxTokens: 20, temperature: 0, stopAtEos: false };
  const a = await collect(cached, prompt, o);
  const b = await collect(full, prompt, o);
  expect(a.tokens.length).toBe(20);
  expect(a.stop).toBe('max-tokens');
  expect(b.tokens).toEqual(a.tokens);
  // Each token is the float64 model's argmax too (where its margin is clear of rounding).
  const seq = [...prompt];
  for (const t of a.tokens) {
    const ref = referenceLogits(CONFIG, named, seq);
    const sorted = Array.from(ref).sort((x, y) => y - x);
    if (sorted[0] - sorted[1] > 1e-3) expect(t).toBe(argmaxHost(ref));
    seq.push(t);
  }
  cached.destroy();
  full.destroy();
}, 60_000);

test('sampling: a seed repeats, seeds differ, top-k 1 is greedy, the context limit stops cleanly', async () => {
  const { params } = randomModel(CONFIG);
  const gen = await Generator.create(gpu, CONFIG, params, { maxContext: 30 });
  const prompt = [1, 2, 3];
  const o = { maxTokens: 15, temperature: 1.5, topK: 0, stopAtEos: false };
  const a = await collect(gen, prompt, { ...o, seed: 3 });
  expect((await collect(gen, prompt, { ...o, seed: 3 })).tokens).toEqual(a.tokens);
  expect((await collect(gen, prompt, { ...o, seed: 4 })).tokens).not.toEqual(a.tokens);
  const greedy = await collect(gen, prompt, { maxTokens: 15, temperature: 0, stopAtEos: false });
  expect((await collect(gen, prompt, { ...o, topK: 1, seed: 9 })).tokens).toEqual(greedy.tokens);
  // 3 prompt tokens + 27 appended fill 30 positions: the 28th token is the last one possible.
  const long = await collect(gen, prompt, { maxTokens: 100, temperature: 0, stopAtEos: false });
  expect(long).toEqual({ tokens: expect.any(Array), stop: 'context' });
  expect(long.tokens.length).toBe(28);
  expect(gen.length).toBe(30);
  await expect(gen.step(1)).rejects.toThrow(/context is full/);
  // End of text: stops before yielding it.
  const eos = greedy.tokens[4];
  const stopped = await collect(gen, prompt, { maxTokens: 15, temperature: 0, eosId: eos });
  expect(stopped.stop).toBe('eos');
  expect(stopped.tokens).toEqual(greedy.tokens.slice(0, greedy.tokens.indexOf(eos)));
  gen.destroy();
}, 60_000);

test('sampleToken: top-k keeps the k largest, temperature sharpens, draws follow the softmax', () => {
  const logits = Float32Array.from([0.5, 2, 1, 2, -1, 0]);
  const rng = new Rng(1, 'test');
  const counts = (o: { temperature: number; topK: number; vocab?: number }, n = 4000) => {
    const c = new Array(logits.length).fill(0);
    for (let i = 0; i < n; i++) c[sampleToken(logits, o, rng)]++;
    return c;
  };
  expect(sampleToken(logits, { temperature: 0, topK: 0 }, rng)).toBe(1); // first of the tie
  expect(sampleToken(logits, { temperature: 5, topK: 1 }, rng)).toBe(1);
  const top2 = counts({ temperature: 1, topK: 2 });
  expect(top2[0] + top2[2] + top2[4] + top2[5]).toBe(0); // only the two 2's
  const top3 = counts({ temperature: 1, topK: 3 });
  expect(top3[0] + top3[4] + top3[5]).toBe(0);
  // Frequencies near softmax(logits) over the whole vocabulary.
  const all = counts({ temperature: 1, topK: 0 }, 20000);
  const z = Array.from(logits).reduce((s, x) => s + Math.exp(x), 0);
  all.forEach((c, i) => expect(Math.abs(c / 20000 - Math.exp(logits[i]) / z)).toBeLessThan(0.02));
  // A low temperature puts nearly everything on the top logits.
  const cold = counts({ temperature: 0.05, topK: 0 });
  expect(cold[1] + cold[3]).toBeGreaterThan(3990);
  // vocab limits the ids drawn.
  expect(Math.max(...counts({ temperature: 1, topK: 0, vocab: 3 }).map((c, i) => (c ? i : 0)))).toBeLessThan(3);
  expect(() => sampleToken(logits, { temperature: -1, topK: 0 }, rng)).toThrow(/temperature/);
});

test('refusals: encoders, prompts past the context, tokens outside the vocabulary, step before prefill', async () => {
  const encoder = { ...CONFIG, causal: false, mask_token_id: 60 };
  await expect(Generator.create(gpu, encoder, new Float32Array(paramLayout(encoder).total))).rejects.toThrow(
    /encoder \(causal: false\)/,
  );
  const { params } = randomModel(CONFIG);
  const gen = await Generator.create(gpu, CONFIG, params, { maxContext: 10 });
  await expect(gen.step(1)).rejects.toThrow(/before prefill/);
  await expect(gen.prefill(new Array(11).fill(1))).rejects.toThrow(/11 tokens does not fit the context of 10/);
  await expect(gen.prefill([1, 61])).rejects.toThrow(/outside the model's vocabulary/);
  await expect(Generator.create(gpu, CONFIG, params, { maxContext: 41 })).rejects.toThrow(/maxContext/);
  gen.destroy();
}, 60_000);

test(
  "rewind: decoding again from a shorter prefix gives that prefix's logits (the benchmark " +
    'decodes from one prefill)',
  async () => {
    const { params, named } = randomModel(CONFIG);
    const gen = await Generator.create(gpu, CONFIG, params);
    const seq = Array.from(rand.int(9, CONFIG.vocab_size));
    await gen.prefill(seq.slice(0, 5));
    for (const t of seq.slice(5)) await gen.step(t); // the cache now holds 9 positions
    gen.rewind(5);
    expect(gen.tokens()).toEqual(seq.slice(0, 5));
    const other = (seq[5] + 1) % CONFIG.vocab_size;
    await gen.step(other); // overwrites cache row 5; rows 6..8 are stale and must not be read
    expectClose(
      await gen.logits(),
      referenceLogits(CONFIG, named, [...seq.slice(0, 5), other]),
      1e-4,
      'logits after rewind',
    );
    expect(() => gen.rewind(0)).toThrow(/rewind: 0 is not in 1\.\.6/);
    gen.destroy();
  },
);

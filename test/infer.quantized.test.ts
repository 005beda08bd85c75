// Inference with packed weights against float64: a model quantized once at load (src/model/quantize.ts) gives,
// after a prefill and after each cached step, the logits of the float64 GPT-2 run on the weights the packed
// formats hold (unpacked by src/reference/matmul-q.ts), tied and untied, with widths that pad q4's groups. Also
// what a packed model refuses, and the memory it saves.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom, randomGpt2Params, relErr } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { Generator } from '../src/infer/generator.js';
import { argmaxHost } from '../src/infer/sampling.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { Gpt2 } from '../src/model/gpt2.js';
import { paramLayout, type ParamLayout } from '../src/model/params.js';
import { quantLayout, quantizeParams, weightBytes, weightBytesPerPass } from '../src/model/quantize.js';
import { gpt2Forward } from '../src/reference/gpt2.js';
import { matmul } from '../src/reference/matmul.js';
import { unpackParams } from '../src/reference/matmul-q.js';
import type { QuantFormat } from '../src/kernels/matmul-q.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

// d = 40: c_attn's and c_fc's K = 40 ends in a q4 group of 8; c_proj's K = 160 in one of 0.
const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 67,
  n_positions: 32,
  n_embd: 40,
  n_layer: 2,
  n_head: 4,
  eos_token_id: null,
};

/** The weights a packed model computes with, in float64 by name. */
function packedWeights(layout: ParamLayout, params: Float32Array, format: QuantFormat): Record<string, Float64Array> {
  const q = quantLayout(layout, format);
  const { words } = quantizeParams(q, layout, params);
  return unpackParams(format, layout.tensors, params, q.quantized, words);
}

function referenceLogits(config: ModelConfig, named: Record<string, Float64Array>, seq: number[]): Float64Array {
  const { hidden } = gpt2Forward(named, config, seq, 1, seq.length, { logProbs: false });
  const d = config.n_embd;
  const E = named[config.tie_word_embeddings ? 'transformer.wte.weight' : 'lm_head.weight'];
  return matmul(hidden.subarray((seq.length - 1) * d), E, 1, config.vocab_size, d, false, true);
}

describe.each(['f16', 'int8', 'q4'] as QuantFormat[])('%s weights', (format) => {
  test.each([
    ['tied head', {}],
    ['untied lm_head', { tie_word_embeddings: false }],
  ])('logits after prefill and cached steps equal float64 on the packed weights (%s)', async (_, extra) => {
    const config = { ...CONFIG, ...extra };
    const layout = paramLayout(config);
    const { params, named } = randomGpt2Params(layout, rand);
    const packed = packedWeights(layout, params, format);
    const gen = await Generator.create(gpu, config, params, { weights: format });
    try {
      expect(gen.weights).toBe(format);
      const seq = Array.from(rand.int(6, config.vocab_size));
      await gen.prefill(seq);
      for (let i = 0; ; i++) {
        const ref = referenceLogits(config, packed, seq);
        expectClose(await gen.logits(), ref, 1e-4, `${format} after ${seq.length} tokens`);
        expect(await gen.argmax()).toBe(argmaxHost(ref));
        if (i === 4) break;
        const t = rand.int(1, config.vocab_size)[0];
        await gen.step(t);
        seq.push(t);
      }
      // The packed weights differ from the f32 ones by more than the tolerance: a model that ignored them fails.
      const drift = relErr(referenceLogits(config, packed, seq), referenceLogits(config, named, seq));
      expect(drift).toBeGreaterThan(format === 'f16' ? 0 : 1e-3);
    } finally {
      gen.destroy();
    }
  });
});

test('a packed model refuses training, reading f32 parameters back, and f32 views of packed tensors', async () => {
  await expect(Gpt2.create(gpu, CONFIG, { B: 1, T: 4, train: true, weights: 'int8' })).rejects.toThrow(
    /int8 weights are for inference/,
  );
  const m = await Gpt2.create(gpu, CONFIG, { B: 1, T: 4, train: false, weights: 'q4' });
  try {
    await expect(m.readParams()).rejects.toThrow(/weights are q4/);
    expect(() => m.P('transformer.h.1.mlp.c_fc.weight')).toThrow(/mlp.c_fc.weight is stored q4/);
    expect(m.P('transformer.h.1.mlp.c_fc.bias').buffer).toBe(m.params);
    await expect(Gpt2.create(gpu, CONFIG, { B: 1, T: 8, train: false, shareWith: m, weights: 'int8' })).rejects.toThrow(
      /weights are q4, not int8/,
    );
  } finally {
    m.destroy();
  }
});

test('packed weights take the bytes they say on the GPU', async () => {
  const config = { ...CONFIG, vocab_size: 1000 };
  const layout = paramLayout(config);
  const sizes: Record<string, number> = {};
  for (const format of ['f32', 'f16', 'int8', 'q4'] as const) {
    const before = gpu.memory().bytesNow;
    const m = await Gpt2.create(gpu, config, { B: 1, T: 1, train: false, weights: format });
    sizes[format] = format === 'f32' ? m.params.size : m.params.size + m.packed!.size;
    expect(gpu.memory().bytesNow - before).toBeGreaterThanOrEqual(sizes[format]);
    m.destroy();
  }
  // Buffers round tensors up to 256 bytes; the counted bytes leave padding out.
  for (const format of ['f32', 'f16', 'int8', 'q4'] as const) {
    const counted = weightBytes(layout, format);
    expect(sizes[format]).toBeGreaterThanOrEqual(counted);
    expect(sizes[format]).toBeLessThan(counted + 256 * layout.tensors.length);
  }
  expect(sizes.q4).toBeLessThan(sizes.int8);
  expect(sizes.int8).toBeLessThan(sizes.f16);
  expect(sizes.f16).toBeLessThan(sizes.f32);
  // A decode step reads every block weight, ln_f and the tied head once, plus one row of each embedding.
  const d = config.n_embd;
  const body = layout.tensors
    .filter((t) => t.name.startsWith('transformer.h.') || t.name.startsWith('transformer.ln_f'))
    .reduce((a, t) => a + 4 * t.size, 0);
  expect(weightBytesPerPass(layout, 'f32', 1)).toBe(body + 4 * config.vocab_size * d + 4 * d + 4 * d);
  expect(weightBytesPerPass(layout, 'f32', 8)).toBe(body + 4 * config.vocab_size * d + 8 * (4 * d + 4 * d));
});

// The infer suite: llama-bench's two tests through `hlm generate`'s Generator (KV cache), plus
// the latencies a user feels. Per preset (prompt = min(512, n_positions/2) tokens, decode
// steps = min(128, the rest), as bench/torch_bench.py uses):
//   prefill P   one repetition = the prompt through the model, cache filled (pp512 on small)
//   decode S    one repetition = S greedy steps from the same prefilled cache (tg128 on small):
//               each step reads its argmax back, as a streaming decoder must
//   first-token one repetition = prefill + reading the first token back: time to first token
//   token       one repetition = one decode step at position P: latency_ms p50/p99 is the time
//               per output token
// Weights are random (initParams): speed does not depend on them. The check compares the
// Generator's logits, after a prefill and after each of a few cached steps, with the float64
// GPT-2 (on a short prompt, where float64 in JS is cheap).
// `--weights f16,int8,q4` repeats the tests with the weights packed (src/model/quantize.ts): their params
// gain `weights` (f32 tests keep the params PyTorch's records match), every record carries the format, the
// weights' bytes on the GPU and the bytes of weights a token reads, and the check runs the float64 GPT-2 on
// the weights as packed.
import { streamRng } from '../data/random.js';
import { relErr } from '../util/stats.js';
import { Generator } from '../infer/generator.js';
import { preset, type ModelConfig } from '../model/config.js';
import { initParams, paramLayout } from '../model/params.js';
import { quantLayout, quantizeParams, weightBytes, weightBytesPerPass, type WeightFormat } from '../model/quantize.js';
import { gpt2Forward } from '../reference/gpt2.js';
import { unpackParams } from '../reference/matmul-q.js';
import type { BenchCase, BenchContext, Prepared } from './harness.js';

type PresetName = 'tiny' | 'small' | 'base';

/** Prompt and decode lengths of a preset (llama-bench's pp512/tg128 where the context allows). */
export function inferShape(name: PresetName): { prompt: number; steps: number } {
  const n = preset(name).n_positions;
  const prompt = Math.min(512, Math.floor(n / 2));
  return { prompt, steps: Math.min(128, n - prompt) };
}

function promptTokens(config: ModelConfig, n: number): number[] {
  const next = streamRng(20240520, n);
  return Array.from({ length: n }, () => Math.floor(next() * config.vocab_size));
}

/** Logits after a prefill of 8 tokens and after each of 4 cached steps, against float64. */
async function checkGenerator(
  ctx: BenchContext,
  config: ModelConfig,
  params: Float32Array,
  weights: WeightFormat,
): Promise<Prepared> {
  const gen = await Generator.create(ctx.gpu, config, params, { maxContext: 16, weights });
  const named = referenceWeights(config, params, weights);
  return {
    step: () => undefined,
    work: {},
    unit: 'tokens/s',
    check: async () => {
      const seq = promptTokens(config, 12);
      const got: number[] = [];
      const want: number[] = [];
      const V = config.vocab_size;
      await gen.prefill(seq.slice(0, 8));
      for (let n = 8; ; n++) {
        // Logits are defined up to a constant: compare both centred over the vocabulary.
        got.push(...centred(await gen.logits()));
        want.push(...centred(gpt2Forward(named, config, seq.slice(0, n), 1, n).logProbs!.subarray((n - 1) * V, n * V)));
        if (n === 12) break;
        await gen.step(seq[n]);
      }
      const value = relErr(got, want);
      return {
        reference:
          'float64 GPT-2 log-probabilities after a prefill and each cached step' +
          (weights === 'f32' ? '' : `, on the ${weights} weights dequantized`),
        metric: 'relative L2 error',
        value: Number.isFinite(value) ? value : null,
        tolerance: 1e-4,
        ok: value <= 1e-4,
      };
    },
    dispose: () => gen.destroy(),
  };
}

/** The weights by name in float64, as the model computes with them (packed ones unpacked). */
function referenceWeights(config: ModelConfig, params: Float32Array, weights: WeightFormat) {
  const layout = paramLayout(config);
  if (weights === 'f32')
    return Object.fromEntries(
      layout.tensors.map((t) => [t.name, Float64Array.from(params.subarray(t.offset, t.offset + t.size))]),
    );
  const q = quantLayout(layout, weights);
  return unpackParams(weights, layout.tensors, params, q.quantized, quantizeParams(q, layout, params).words);
}

function centred(x: ArrayLike<number>): Float64Array {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i] / x.length;
  return Float64Array.from(x, (v) => v - mean);
}

/** Weights larger than GPT-2's init, so that the logits differ and the check has signal. */
function checkParams(config: ModelConfig): Float32Array {
  const layout = paramLayout(config);
  const next = streamRng(7, layout.total);
  const p = Float32Array.from({ length: layout.total }, () => 0.6 * (next() - 0.5));
  for (const t of layout.tensors)
    if (t.name.includes('ln_') && t.name.endsWith('weight')) for (let i = 0; i < t.size; i++) p[t.offset + i] += 1;
  return p;
}

function inferCase(
  name: PresetName,
  test: 'prefill' | 'decode' | 'first-token' | 'token',
  weights: WeightFormat,
): BenchCase {
  const config = preset(name);
  const { prompt, steps } = inferShape(name);
  const label =
    test === 'prefill'
      ? `prefill ${prompt}`
      : test === 'decode'
        ? `decode ${steps}`
        : test === 'first-token'
          ? `first-token ${prompt}`
          : `token at ${prompt}`;
  const params = { preset: name, prompt, steps, ...(weights === 'f32' ? {} : { weights }) };
  const params1 = () => initParams(config, 1);
  const layout = paramLayout(config);
  const info = (rows: number) => ({
    format: weights,
    bytes: weightBytes(layout, weights),
    bytes_per_token: weightBytesPerPass(layout, weights, rows) / rows,
  });
  // A decode step reads the weights for one token; a prefill once for the prompt (time to first token too).
  const perToken = info(test === 'prefill' || test === 'first-token' ? prompt : 1);
  return {
    suite: 'infer',
    name: `infer-${name}`,
    test: label,
    params,
    build: async ({ gpu }): Promise<Prepared> => {
      const gen = await Generator.create(gpu, config, params1(), { weights });
      try {
        const tokens = promptTokens(config, prompt);
        await gen.prefill(tokens);
        const first = await gen.argmax();
        const dispose = () => gen.destroy();
        const common = { unit: 'tokens/s' as const, dispose, weights: perToken };
        switch (test) {
          case 'prefill':
            return { step: () => gen.prefill(tokens), work: { tokens: prompt }, ...common };
          case 'first-token':
            return {
              step: async () => {
                await gen.prefill(tokens);
                await gen.argmax();
              },
              work: { tokens: 1 },
              ...common,
            };
          case 'decode':
            return {
              step: async () => {
                gen.rewind(prompt);
                let next = first;
                for (let s = 0; s < steps; s++) {
                  await gen.step(next);
                  next = await gen.argmax();
                }
              },
              work: { tokens: steps },
              ...common,
            };
          case 'token':
            return {
              step: async () => {
                gen.rewind(prompt);
                await gen.step(first);
                await gen.argmax();
              },
              work: { tokens: 1 },
              ...common,
            };
        }
      } catch (e) {
        gen.destroy();
        throw e;
      }
    },
    checkOn:
      test === 'prefill' || test === 'decode'
        ? {
            shape: `${name}, 8-token prompt + 4 cached steps`,
            build: (ctx) => checkGenerator(ctx, config, checkParams(config), weights),
          }
        : undefined,
  };
}

export function inferCases(quick: boolean, weights: readonly WeightFormat[] = ['f32']): BenchCase[] {
  const presets: PresetName[] = quick ? ['tiny'] : ['tiny', 'small', 'base'];
  return presets.flatMap((p) =>
    weights.flatMap((w) => (['prefill', 'decode', 'first-token', 'token'] as const).map((t) => inferCase(p, t, w))),
  );
}

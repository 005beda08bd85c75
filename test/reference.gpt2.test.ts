// The float64 GPT-2: every parameter's gradient against central finite differences of the
// loss, for decoder and encoder, CE and CWT heads (a random subset of each big tensor's
// coordinates, all of the small ones), and the forward's conventions: causality, key
// padding, log-probs, the CWT rows' order, and Hugging Face's parameter count.
import { SEED, makeRandom } from './helpers/check.js';
import { numericGrad, pick } from '../src/reference/gradcheck.js';
import {
  gpt2Forward,
  gpt2Loss,
  gpt2LossAndGrads,
  gpt2ParamShapes,
  type Gpt2Config,
  type Gpt2Head,
} from '../src/reference/gpt2.js';
import { cwtLoss } from '../src/reference/cwt.js';

const r = makeRandom(SEED);
const randn = (n: number, std = 1) => Float64Array.from(r.normal(n, std));
const B = 2;
const T = 5;
const tiny = (causal: boolean): Gpt2Config => ({
  vocab_size: 23,
  n_positions: 7,
  n_embd: 12,
  n_layer: 2,
  n_head: 3,
  layer_norm_epsilon: 1e-5,
  causal,
});

/** Random weights at scales where nothing saturates: LayerNorm gains near 1, weights ~1/√fan-in. */
function randomParams(config: Gpt2Config): Record<string, Float64Array> {
  const params: Record<string, Float64Array> = {};
  for (const [name, shape] of Object.entries(gpt2ParamShapes(config))) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (/ln_.*\.weight$/.test(name)) params[name] = randn(n, 0.2).map((v) => 1 + v);
    else if (name.endsWith('.bias')) params[name] = randn(n, 0.1);
    else if (/w[tp]e/.test(name)) params[name] = randn(n, 0.5);
    else params[name] = randn(n, 1 / Math.sqrt(shape[0]));
  }
  return params;
}

/** n distinct indices below len, or all of them when len ≤ n. */
function subset(len: number, n: number): number[] {
  const all = Array.from({ length: len }, (_, i) => i);
  if (len <= n) return all;
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(r.next() * (len - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, n).sort((a, b) => a - b);
}

/** Decoder: next-token targets, the last of each row ignored. Encoder: about half the positions masked-LM targets. */
function batch(config: Gpt2Config) {
  const inputs = Int32Array.from(r.int(B * T, config.vocab_size));
  inputs[3] = inputs[1]; // a repeated token: CWT duplicates, repeated embedding rows
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      if (config.causal) targets[n] = t < T - 1 ? inputs[n + 1] : -1;
      else if (t === 0 || r.next() < 0.5) targets[n] = r.int(1, config.vocab_size)[0];
    }
  }
  if (!config.causal) targets[T] = targets[0]; // a duplicate target in the encoder too
  return { inputs, targets };
}

// Per tensor: ‖analytic − numeric‖ / max(‖numeric‖, 1e-3). The floor keeps gradients that are
// zero in exact arithmetic (the key bias of c_attn: softmax ignores a constant added to every
// score) from comparing rounding noise with rounding noise.
const TOL = 1e-6;

describe.each([
  ['decoder, ce', true, 'ce', undefined, undefined],
  ['decoder, cwt', true, 'cwt', undefined, undefined],
  ['encoder, ce', false, 'ce', undefined, undefined],
  ['encoder, cwt', false, 'cwt', undefined, undefined],
  ['encoder with key padding, cwt at temperature 0.5', false, 'cwt', [3, 5], 0.5],
] as [string, boolean, Gpt2Head, number[] | undefined, number | undefined][])(
  '%s',
  (_, causal, head, lengths, temperature) => {
    test("every parameter's gradient against finite differences", () => {
      const config = tiny(causal);
      const params = randomParams(config);
      const { inputs, targets } = batch(config);
      const opts = { lengths, temperature };
      const { loss, count, grads } = gpt2LossAndGrads(params, config, inputs, targets, B, T, head, opts);
      if (!Number.isFinite(loss) || count < 2) throw new Error(`loss ${loss}, count ${count}`);
      expect(gpt2Loss(params, config, inputs, targets, B, T, head, opts)).toEqual({ loss, count });
      expect(Object.keys(grads)).toEqual(Object.keys(gpt2ParamShapes(config)));
      const f = () => gpt2Loss(params, config, inputs, targets, B, T, head, opts).loss;
      for (const [name, p] of Object.entries(params)) {
        expect(grads[name].length).toBe(p.length);
        const idx = subset(p.length, 24);
        const num = numericGrad(f, p, idx);
        const ana = pick(grads[name], idx);
        let diff = 0;
        let ref = 0;
        for (let i = 0; i < idx.length; i++) {
          diff += (ana[i] - num[i]) ** 2;
          ref += num[i] ** 2;
        }
        const err = Math.sqrt(diff) / Math.max(Math.sqrt(ref), 1e-3);
        if (!(err <= TOL)) throw new Error(`${name}: error ${err} > ${TOL} (HLM_TEST_SEED=${SEED})`);
      }
      // Positions past T never reach the loss.
      expect(grads['transformer.wpe.weight'].subarray(T * config.n_embd).every((v) => v === 0)).toBe(true);
    });
  },
);

describe('forward conventions', () => {
  test('Hugging Face GPT-2 small has 124,439,808 parameters under these shapes', () => {
    const shapes = gpt2ParamShapes({
      vocab_size: 50257,
      n_positions: 1024,
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      causal: true,
    });
    expect(Object.keys(shapes)).toHaveLength(2 + 12 * 12 + 2);
    expect(Object.values(shapes).reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0)).toBe(124439808);
    expect(shapes['transformer.h.11.attn.c_attn.weight']).toEqual([768, 2304]);
    expect(shapes['transformer.h.0.mlp.c_proj.weight']).toEqual([3072, 768]);
  });

  test("log-probs are normalised, agree with both heads' losses, and the hidden states match", () => {
    const config = tiny(true);
    const params = randomParams(config);
    const { inputs, targets } = batch(config);
    const { hidden, logProbs } = gpt2Forward(params, config, inputs, B, T);
    const V = config.vocab_size;
    const d = config.n_embd;
    for (let n = 0; n < B * T; n++) {
      const z = logProbs!.subarray(n * V, (n + 1) * V).reduce((s, lp) => s + Math.exp(lp), 0);
      if (!(Math.abs(z - 1) <= 1e-12)) throw new Error(`position ${n}: probabilities sum to ${z}`);
    }
    const ce = gpt2LossAndGrads(params, config, inputs, targets, B, T, 'ce');
    let nll = 0;
    let count = 0;
    for (let n = 0; n < B * T; n++)
      if (targets[n] >= 0) {
        nll -= logProbs![n * V + targets[n]];
        count++;
      }
    if (!(Math.abs(ce.loss - nll / count) <= 1e-12)) throw new Error(`ce ${ce.loss} vs log-probs ${nll / count}`);
    expect(Array.from(ce.hidden)).toEqual(Array.from(hidden));
    expect(gpt2Forward(params, config, inputs, B, T, { logProbs: false })).toEqual({ hidden });
    // CWT: the rows are the positions with a target, in row-major order.
    const pos = Array.from(targets.keys()).filter((n) => targets[n] >= 0);
    const hK = Float64Array.from(pos.flatMap((n) => Array.from(hidden.subarray(n * d, (n + 1) * d))));
    const want = cwtLoss(
      hK,
      params['transformer.wte.weight'],
      pos.map((n) => targets[n]),
      pos.length,
      d,
    ).loss;
    expect(gpt2LossAndGrads(params, config, inputs, targets, B, T, 'cwt').loss).toBe(want);
  });

  test('a decoder never sees later tokens; an encoder does', () => {
    for (const causal of [true, false]) {
      const config = tiny(causal);
      const params = randomParams(config);
      const { inputs } = batch(config);
      const changed = Int32Array.from(inputs);
      changed[3] = (inputs[3] + 1) % config.vocab_size;
      const a = gpt2Forward(params, config, inputs, B, T, { logProbs: false }).hidden;
      const b = gpt2Forward(params, config, changed, B, T, { logProbs: false }).hidden;
      const before = 3 * config.n_embd;
      const same = a.subarray(0, before).every((v, i) => v === b[i]);
      expect(same).toBe(causal);
      expect(
        a.subarray(B * T * config.n_embd - T * config.n_embd).every((v, i) => v === b[(B - 1) * T * config.n_embd + i]),
      ).toBe(true); // other row
    }
  });

  test("with key padding, tokens past a row's length change nothing before it", () => {
    const config = tiny(false);
    const params = randomParams(config);
    const { inputs } = batch(config);
    const padded = Int32Array.from(inputs);
    padded[3] = (inputs[3] + 5) % config.vocab_size;
    padded[4] = (inputs[4] + 7) % config.vocab_size;
    const opts = { lengths: [3, 5], logProbs: false };
    const a = gpt2Forward(params, config, inputs, B, T, opts).hidden;
    const b = gpt2Forward(params, config, padded, B, T, opts).hidden;
    const valid = 3 * config.n_embd;
    const rowEnd = T * config.n_embd;
    expect(a.subarray(0, valid).every((v, i) => v === b[i])).toBe(true);
    // padded positions themselves differ
    expect(a.subarray(valid, rowEnd).every((v, i) => v === b[valid + i])).toBe(false);
  });

  test('no target: loss 0 and every gradient 0, for both heads', () => {
    const config = tiny(true);
    const params = randomParams(config);
    const { inputs } = batch(config);
    for (const head of ['ce', 'cwt'] as const) {
      const { loss, count, grads } = gpt2LossAndGrads(
        params,
        config,
        inputs,
        new Int32Array(B * T).fill(-1),
        B,
        T,
        head,
      );
      expect([loss, count]).toEqual([0, 0]);
      expect(Object.values(grads).every((g) => g.every((v) => v === 0))).toBe(true);
    }
  });

  test('a missing or mis-sized parameter is named', () => {
    const config = tiny(true);
    const params = randomParams(config);
    const { inputs, targets } = batch(config);
    const { ['transformer.h.1.ln_2.bias']: _, ...missing } = params;
    expect(() => gpt2Loss(missing, config, inputs, targets, B, T, 'ce')).toThrow(
      /transformer\.h\.1\.ln_2\.bias is missing/,
    );
    expect(() =>
      gpt2Loss({ ...params, 'transformer.wpe.weight': new Float64Array(3) }, config, inputs, targets, B, T, 'ce'),
    ).toThrow(/transformer\.wpe\.weight/);
  });
});

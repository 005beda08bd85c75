import { preset, type ModelConfig } from '../src/model/config.js';
import {
  BLOCK_TENSORS,
  PARAM_ALIGN,
  blockTensor,
  canonicalParamName,
  findTensor,
  initParams,
  outputWeight,
  paramCount,
  paramLayout,
  tensorView,
} from '../src/model/params.js';
import { Rng } from '../src/model/random.js';
import { SEED } from './helpers/check.js';

/** The textbook count: embeddings, 12d²+13d per block, final LayerNorm, optional heads. */
function analyticCount(c: ModelConfig): number {
  const { vocab_size: V, n_positions: P, n_embd: d, n_layer: L, num_labels: C } = c;
  return (
    V * d + P * d + L * (12 * d * d + 13 * d) + 2 * d + (c.tie_word_embeddings ? 0 : V * d) + (C > 0 ? C * d + C : 0)
  );
}

// Bitwise equality; jest's toEqual walks large typed arrays element by element, slowly.
const same = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function stats(a: Float32Array): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const x of a) {
    s += x;
    s2 += x * x;
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean) };
}

function expectWithin(got: number, want: number, tol: number, what: string): void {
  if (!(Math.abs(got - want) <= tol)) throw new Error(`${what}: ${got}, expected ${want} ± ${tol}`);
}

test('GPT-2 124M has 124,439,808 parameters with the tied head', () => {
  expect(paramCount(preset('base'))).toBe(124_439_808);
  expect(paramCount({ ...preset('base'), tie_word_embeddings: false })).toBe(124_439_808 + 50257 * 768);
  // GPT-2 medium (355M): 24 layers, d=1024.
  expect(paramCount({ ...preset('base'), n_layer: 24, n_embd: 1024, n_head: 16 })).toBe(354_823_168);
  for (const c of [
    preset('tiny'),
    preset('small'),
    { ...preset('tiny'), num_labels: 3, tie_word_embeddings: false, vocab_size: 101 },
  ]) {
    expect(paramCount(c)).toBe(analyticCount(c));
  }
});

test('layout: HF names, shapes and order; every offset aligned; no overlaps', () => {
  const c = {
    ...preset('tiny'),
    vocab_size: 1001,
    n_positions: 37,
    n_embd: 24,
    n_head: 3,
    num_labels: 2,
    tie_word_embeddings: false,
  };
  const layout = paramLayout(c);
  const d = 24;
  const names = layout.tensors.map((t) => t.name);
  expect(names.slice(0, 2)).toEqual(['transformer.wte.weight', 'transformer.wpe.weight']);
  expect(names.slice(2, 14)).toEqual(BLOCK_TENSORS.map((n) => `transformer.h.0.${n}`));
  expect(names.slice(-6)).toEqual([
    'transformer.h.1.mlp.c_proj.bias',
    'transformer.ln_f.weight',
    'transformer.ln_f.bias',
    'lm_head.weight',
    'score.weight',
    'score.bias',
  ]);
  expect(names.length).toBe(2 + 12 * 2 + 2 + 1 + 2);
  const shape = (n: string) => findTensor(layout, n).shape;
  expect(shape('transformer.wte.weight')).toEqual([1001, d]);
  expect(shape('transformer.wpe.weight')).toEqual([37, d]);
  expect(shape('transformer.h.1.attn.c_attn.weight')).toEqual([d, 3 * d]);
  expect(shape('transformer.h.1.attn.c_attn.bias')).toEqual([3 * d]);
  expect(shape('transformer.h.1.attn.c_proj.weight')).toEqual([d, d]);
  expect(shape('transformer.h.1.mlp.c_fc.weight')).toEqual([d, 4 * d]);
  expect(shape('transformer.h.1.mlp.c_fc.bias')).toEqual([4 * d]);
  expect(shape('transformer.h.1.mlp.c_proj.weight')).toEqual([4 * d, d]);
  expect(shape('transformer.h.1.mlp.c_proj.bias')).toEqual([d]);
  expect(shape('lm_head.weight')).toEqual([1001, d]);
  expect(shape('score.weight')).toEqual([2, d]);
  expect(shape('score.bias')).toEqual([2]);
  let end = 0;
  for (const t of layout.tensors) {
    expect(t.offset % PARAM_ALIGN).toBe(0);
    expect(t.offset).toBeGreaterThanOrEqual(end);
    expect(t.offset - end).toBeLessThan(PARAM_ALIGN);
    expect(t.size).toBe(t.shape.reduce((a, b) => a * b, 1));
    expect(t.decay).toBe(t.shape.length === 2);
    end = t.offset + t.size;
  }
  expect(layout.total % PARAM_ALIGN).toBe(0);
  expect(layout.total).toBeGreaterThanOrEqual(end);
  expect(layout.total - end).toBeLessThan(PARAM_ALIGN);
  expect(layout.count).toBe(analyticCount(c));

  const tied = paramLayout(preset('tiny'));
  expect(tied.byName.has('lm_head.weight')).toBe(false);
  expect(tied.byName.has('score.weight')).toBe(false);
  expect(tied.tensors.length).toBe(2 + 12 * 2 + 2);
});

test('the output projection: the input embeddings when tied, lm_head (which only then exists) when untied', () => {
  const tied = preset('tiny');
  const untied = { ...tied, tie_word_embeddings: false };
  expect(outputWeight(tied)).toBe('transformer.wte.weight');
  expect(outputWeight(untied)).toBe('lm_head.weight');
  expect(paramLayout(tied).byName.has('lm_head.weight')).toBe(false);
  expect(findTensor(paramLayout(untied), outputWeight(untied)).shape).toEqual([tied.vocab_size, tied.n_embd]);
});

test('names without the transformer. prefix find the same tensors', () => {
  const layout = paramLayout(preset('tiny'));
  expect(canonicalParamName('h.1.ln_2.bias')).toBe('transformer.h.1.ln_2.bias');
  expect(canonicalParamName('wte.weight')).toBe('transformer.wte.weight');
  expect(canonicalParamName('lm_head.weight')).toBe('lm_head.weight');
  expect(findTensor(layout, 'ln_f.weight')).toBe(findTensor(layout, 'transformer.ln_f.weight'));
  expect(blockTensor(layout, 1, 'attn.c_proj.bias').name).toBe('transformer.h.1.attn.c_proj.bias');
  expect(() => findTensor(layout, 'h.9.ln_1.weight')).toThrow(/no parameter named 'h.9.ln_1.weight'/);
  expect(() => blockTensor(layout, 2, 'ln_1.weight')).toThrow(/layer 2 out of range/);
});

test(
  'initialisation follows GPT-2: N(0, 0.02), residual projections scaled, LayerNorm 1/0, ' + 'biases 0, padding 0',
  () => {
    const c = { ...preset('tiny'), vocab_size: 4000, n_embd: 128, n_head: 4, n_layer: 8, num_labels: 2 };
    const layout = paramLayout(c);
    const params = initParams(layout, SEED);
    const projStd = 0.02 / Math.sqrt(2 * c.n_layer);
    for (const t of layout.tensors) {
      const v = tensorView(params, layout, t.name);
      const { mean, std } = stats(v);
      const what = `${t.name} (HLM_TEST_SEED=${SEED})`;
      if (/ln_\w+\.weight$/.test(t.name)) {
        expect(v.every((x) => x === 1)).toBe(true);
      } else if (t.name.endsWith('.bias')) {
        expect(v.every((x) => x === 0)).toBe(true);
      } else {
        const want = t.name.endsWith('c_proj.weight') ? projStd : 0.02;
        // Sample std of n normals is within a few × want/sqrt(2n) of want; the mean within a few × want/sqrt(n).
        expectWithin(std, want, (5 * want) / Math.sqrt(2 * t.size), `${what} std`);
        expectWithin(mean, 0, (5 * want) / Math.sqrt(t.size), `${what} mean`);
      }
    }
    // Padding between and after tensors stays zero (the optimizer must not move it).
    let end = 0;
    for (const t of layout.tensors) {
      expect(params.subarray(end, t.offset).every((x) => x === 0)).toBe(true);
      end = t.offset + t.size;
    }
    expect(params.subarray(end).every((x) => x === 0)).toBe(true);
    // The wte draw is normal, not just the right variance: about 68.3% within one std.
    const wte = tensorView(params, layout, 'transformer.wte.weight');
    const inside = wte.filter((x) => x < 0.02 && x > -0.02).length / wte.length;
    expectWithin(inside, 0.6827, 0.01, `fraction within 1 std (HLM_TEST_SEED=${SEED})`);
  },
);

test('initialisation is a function of the seed, and a new head leaves the body unchanged', () => {
  const c = preset('tiny');
  const a = initParams(c, 1234);
  expect(same(initParams(c, 1234), a)).toBe(true);
  const b = initParams(c, 1235);
  const layout = paramLayout(c);
  const wteA = tensorView(a, layout, 'transformer.wte.weight');
  const wteB = tensorView(b, layout, 'transformer.wte.weight');
  expect(wteA.some((x, i) => x !== wteB[i])).toBe(true);
  // Different tensors with the same shape get different draws.
  const q0 = tensorView(a, layout, 'transformer.h.0.attn.c_attn.weight');
  const q1 = tensorView(a, layout, 'transformer.h.1.attn.c_attn.weight');
  expect(q0.some((x, i) => x !== q1[i])).toBe(true);
  // Same body with a classifier head: identical body tensors.
  const withHead = { ...c, num_labels: 3 };
  const h = initParams(withHead, 1234);
  const headLayout = paramLayout(withHead);
  for (const t of layout.tensors)
    expect(same(tensorView(h, headLayout, t.name), tensorView(a, layout, t.name))).toBe(true);
  // Pinned values: a run's initial weights must stay a function of its seed across versions.
  const pinned = new Rng(42, 'x');
  expect([pinned.nextU32(), pinned.nextU32()]).toEqual([2064770480, 3944546581]);
  expect(a[0]).toBe(Math.fround(0.002958195749670267));
  expect(initParams(c, 7)[1]).toBe(Math.fround(-0.022067947313189507));
  expect(() => initParams(c, -1)).toThrow(/seed must be a non-negative integer/);
});

test('tensor views share memory with the flat buffer and check its length', () => {
  const layout = paramLayout(preset('tiny'));
  const params = new Float32Array(layout.total);
  const ln = tensorView(params, layout, 'h.0.ln_1.bias');
  ln[3] = 7;
  expect(params[findTensor(layout, 'transformer.h.0.ln_1.bias').offset + 3]).toBe(7);
  expect(() => tensorView(new Float32Array(10), layout, 'wte.weight')).toThrow(/holds 10 floats; the layout needs/);
});

test('the PRNG core is xoshiro128** (reference sequence from state 1, 2, 3, 4)', () => {
  const r = new Rng(0);
  Object.assign(r as unknown as Record<string, number>, { s0: 1, s1: 2, s2: 3, s3: 4 });
  expect(Array.from({ length: 6 }, () => r.nextU32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

test('the PRNG: uniform moments and a normal tail', () => {
  const r = new Rng(SEED, 'test');
  let s = 0;
  let s2 = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    if (!(u >= 0 && u < 1)) throw new Error(`uniform out of range: ${u}`);
    s += u;
    s2 += u * u;
  }
  expectWithin(s / n, 0.5, 0.005, `uniform mean (HLM_TEST_SEED=${SEED})`);
  expectWithin(s2 / n - (s / n) ** 2, 1 / 12, 0.002, `uniform variance (HLM_TEST_SEED=${SEED})`);
  let tail = 0;
  for (let i = 0; i < n; i++) if (Math.abs(r.normal()) > 1.96) tail++;
  expectWithin(tail / n, 0.05, 0.004, `normal two-sided 5% tail (HLM_TEST_SEED=${SEED})`);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70_000; i++) counts[r.int(7)]++;
  for (const k of counts) expectWithin(k, 10_000, 500, `int(7) bucket (HLM_TEST_SEED=${SEED})`);
  // Streams differ by name and by seed, including seeds past 2^32.
  expect(new Rng(1, 'a').nextU32()).not.toBe(new Rng(1, 'b').nextU32());
  expect(new Rng(2 ** 40, 'a').nextU32()).not.toBe(new Rng(0, 'a').nextU32());
});

import { IGNORE, maskTokens, mlmCount } from '../src/data/mlm.js';
import { makeRandom, SEED } from './helpers/check.js';

const V = 50257;
const MASK = 50257;
const EOT = 50256;

test('proportions on a large batch: 15% selected, of those 80% masked, 10% random, 10% kept', () => {
  const r = makeRandom();
  const n = 64 * 1024;
  const tokens = Int32Array.from(r.int(n, V - 1)); // no EOT: every position is a candidate
  const { inputs, targets, positions } = maskTokens(tokens, {
    seed: SEED,
    step: 3,
    maskId: MASK,
    vocabSize: V,
    specialIds: [EOT],
  });
  const k = positions.length;
  expect(k).toBe(Math.round(0.15 * n));
  let masked = 0;
  let random = 0;
  let kept = 0;
  let ignored = 0;
  let wrong = 0;
  let randomSum = 0;
  for (let i = 0; i < n; i++) {
    if (targets[i] === IGNORE) {
      ignored++;
      if (inputs[i] !== tokens[i]) wrong++;
      continue;
    }
    if (targets[i] !== tokens[i]) wrong++;
    if (inputs[i] === MASK) masked++;
    else if (inputs[i] === tokens[i])
      kept++; // a random draw equal to the original counts as kept (p = 1/V)
    else {
      random++;
      randomSum += inputs[i];
      if (inputs[i] === EOT || !(inputs[i] >= 0 && inputs[i] < V)) wrong++;
    }
  }
  expect(wrong).toBe(0);
  expect(ignored).toBe(n - k);
  // binomial tolerances: 5 standard deviations
  const within = (count: number, p: number, what: string) => {
    const sd = Math.sqrt(k * p * (1 - p));
    if (!(Math.abs(count - k * p) <= 5 * sd))
      throw new Error(`${what}: ${count} of ${k}, expected ${k * p} ± ${5 * sd} (HLM_TEST_SEED=${SEED})`);
  };
  within(masked, 0.8, 'masked');
  within(random, 0.1, 'random');
  within(kept, 0.1, 'kept');
  // random replacements are uniform over the vocabulary: mean near (V-1)/2
  const mean = randomSum / random;
  const sdMean = V / Math.sqrt(12 * random);
  if (!(Math.abs(mean - (V - 1) / 2) <= 5 * sdMean))
    throw new Error(`random token mean ${mean} (HLM_TEST_SEED=${SEED})`);
  // selected positions are spread over the batch, not bunched at the start
  const firstHalf = Array.from(positions).filter((p) => p < n / 2).length;
  within(firstHalf, 0.5, 'positions in the first half');
});

test('deterministic in (seed, step); different for another step or seed', () => {
  const tokens = Int32Array.from(makeRandom().int(4096, 1000));
  const o = { seed: 11, step: 5, maskId: 1000, vocabSize: 1000 };
  const a = maskTokens(tokens, o);
  const b = maskTokens(tokens, o);
  expect(a.inputs).toEqual(b.inputs);
  expect(a.targets).toEqual(b.targets);
  expect(maskTokens(tokens, { ...o, step: 6 }).positions).not.toEqual(a.positions);
  expect(maskTokens(tokens, { ...o, seed: 12 }).positions).not.toEqual(a.positions);
  expect(Array.from(a.positions)).toEqual([...a.positions].sort((x, y) => x - y));
});

test('never zero positions; special tokens are not selected while others exist', () => {
  for (let step = 0; step < 50; step++) {
    for (const n of [1, 2, 3, 6]) {
      const tokens = Int32Array.from({ length: n }, (_, i) => i + 1);
      const m = maskTokens(tokens, { seed: SEED, step, maskId: 100, vocabSize: 100 });
      expect(m.positions.length).toBeGreaterThanOrEqual(1);
      expect(Array.from(m.targets).filter((t) => t !== IGNORE).length).toBe(m.positions.length);
    }
  }
  expect(mlmCount(1)).toBe(1);
  expect(mlmCount(6)).toBe(1);
  expect(mlmCount(100)).toBe(15);
  // a batch that is mostly EOT: only the ordinary tokens are chosen
  const tokens = Int32Array.from({ length: 200 }, (_, i) => (i % 10 === 0 ? 7 : EOT));
  const m = maskTokens(tokens, { seed: 1, step: 1, maskId: MASK, vocabSize: V, specialIds: [EOT] });
  expect(m.positions.length).toBe(Math.min(20, mlmCount(200)));
  for (const p of m.positions) expect(tokens[p]).toBe(7);
  // all special: positions are drawn from all of them
  const allEot = maskTokens(new Int32Array(10).fill(EOT), {
    seed: 1,
    step: 1,
    maskId: MASK,
    vocabSize: V,
    specialIds: [EOT],
  });
  expect(allEot.positions.length).toBe(mlmCount(10));
  expect(mlmCount(10)).toBe(2);
});

test('bad settings are refused', () => {
  const t = new Int32Array(10);
  expect(() => maskTokens(new Int32Array(0), { seed: 1, step: 0, maskId: 5, vocabSize: 5 })).toThrow(RangeError);
  expect(() => maskTokens(t, { seed: 1, step: 0, maskId: 5, vocabSize: 5, rate: 0 })).toThrow(/rate/);
  expect(() =>
    maskTokens(t, { seed: 1, step: 0, maskId: 5, vocabSize: 5, maskFraction: 0.95, randomFraction: 0.1 }),
  ).toThrow(/fraction/);
  expect(() => maskTokens(t, { seed: 1, step: 0, maskId: 2, vocabSize: 2, specialIds: [0, 1] })).toThrow(
    /no ordinary token/,
  );
});

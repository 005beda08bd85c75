import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { BatchSource } from '../src/data/batches.js';
import { IndexPermutation, hash32 } from '../src/data/random.js';
import { writeShard } from '../src/data/shards.js';
import { makeRandom } from './helpers/check.js';

/** Shards holding the token stream 0, 1, 2, ... (mod 65536) cut at the given sizes. */
function stream(sizes: number[], version: 1 | 2 = 1): { paths: string[]; n: number } {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-batches-'));
  let start = 0;
  const paths = sizes.map((size, i) => {
    const p = join(dir, `s${i}.bin`);
    writeShard(
      p,
      Array.from({ length: size }, (_, k) => (start + k) % 65536),
      version,
    );
    start += size;
    return p;
  });
  return { paths, n: start };
}

test('sequential: row r of batch b is tokens [(bB+r)T, (bB+r)T+T+1), across shards and around the end', () => {
  const { paths, n } = stream([50, 7, 0, 60], 1); // 117 tokens, an empty shard in between
  const B = 3;
  const T = 8;
  const src = BatchSource.open(paths, { batchSize: B, seqLen: T, order: 'sequential' });
  expect(src.tokens).toBe(n);
  for (let b = 0; b < 12; b++) {
    const batch = src.next();
    expect(batch.index).toBe(b);
    for (let r = 0; r < B; r++) {
      const start = (b * B + r) * T;
      for (let t = 0; t < T; t++) {
        expect(batch.inputs[r * T + t]).toBe((start + t) % n);
        expect(batch.targets[r * T + t]).toBe((start + t + 1) % n);
      }
    }
  }
  src.close();
});

test('uint32 shards read the same way', () => {
  const { paths } = stream([10, 10], 2);
  const src = BatchSource.open(paths, { batchSize: 2, seqLen: 4, order: 'sequential' });
  const b = src.batchAt(1);
  expect(Array.from(b.inputs)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
  expect(Array.from(b.targets)).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
  src.close();
});

test('shuffled: each epoch visits every window once, in a seeded order that differs by epoch and seed', () => {
  const { paths, n } = stream([400, 333]);
  const T = 16;
  const B = 5;
  const src = BatchSource.open(paths, { batchSize: B, seqLen: T, order: 'shuffled', seed: 7 });
  const W = Math.floor((n - 1) / T);
  expect(src.windowsPerEpoch).toBe(W);
  const starts = (s: BatchSource, epoch: number) => Array.from({ length: W }, (_, i) => s.rowStart(epoch * W + i));
  const e0 = starts(src, 0);
  const e1 = starts(src, 1);
  const all = Array.from({ length: W }, (_, i) => i * T);
  expect([...e0].sort((a, b) => a - b)).toEqual(all);
  expect([...e1].sort((a, b) => a - b)).toEqual(all);
  expect(e0).not.toEqual(e1);
  expect(e0).not.toEqual(all);
  const other = BatchSource.open(paths, { batchSize: B, seqLen: T, order: 'shuffled', seed: 8 });
  expect(starts(other, 0)).not.toEqual(e0);
  // every row is a real window: consecutive tokens, targets shifted by one
  const batch = src.batchAt(3);
  for (let r = 0; r < B; r++) {
    const s = batch.inputs[r * T];
    expect(s % T).toBe(0);
    for (let t = 0; t < T; t++) {
      expect(batch.inputs[r * T + t]).toBe(s + t);
      expect(batch.targets[r * T + t]).toBe(s + t + 1);
    }
  }
  src.close();
  other.close();
});

test('resume: a saved position gives bit-identical batches; a different corpus or setting is refused', () => {
  const { paths } = stream([1000]);
  const opts = { batchSize: 4, seqLen: 32, order: 'shuffled' as const, seed: 1234 };
  const a = BatchSource.open(paths, opts);
  for (let i = 0; i < 5; i++) a.next();
  const state = JSON.parse(JSON.stringify(a.state()));
  const expected = [a.next(), a.next(), a.next()];
  const b = BatchSource.open(paths, opts);
  b.restore(state);
  for (const e of expected) {
    const got = b.next();
    expect(got.inputs).toEqual(e.inputs);
    expect(got.targets).toEqual(e.targets);
  }
  const c = BatchSource.open(paths, { ...opts, seed: 1 });
  expect(() => c.restore(state)).toThrow('cannot resume the data order: saved seed 1234, now 1');
  const { paths: morePaths } = stream([1001]);
  const d = BatchSource.open(morePaths, opts);
  expect(() => d.restore(state)).toThrow(/saved tokens 1000, now 1001/);
  for (const s of [a, b, c, d]) s.close();
});

test('with a vocabulary size, a token beyond it names the shard and index', () => {
  const { paths } = stream([100, 100]);
  const src = BatchSource.open(paths, { batchSize: 1, seqLen: 10, order: 'sequential', vocabSize: 150 });
  expect(src.batchAt(13).inputs[0]).toBe(130);
  expect(() => src.batchAt(15)).toThrow(
    `token shard ${paths[1]}: token 150 at index 50 is outside the vocabulary of 150 (made with another tokenizer?)`,
  );
  src.close();
});

test('too little data for one sequence is a clear error', () => {
  const { paths } = stream([8]);
  expect(() => BatchSource.open(paths, { batchSize: 1, seqLen: 8 })).toThrow(HlmError);
  expect(() => BatchSource.open(paths, { batchSize: 1, seqLen: 8 })).toThrow(
    'the data has 8 tokens, fewer than one sequence of 8 plus its next token',
  );
  const ok = BatchSource.open(paths, { batchSize: 3, seqLen: 7, order: 'shuffled' });
  expect(ok.windowsPerEpoch).toBe(1);
  expect(Array.from(ok.batchAt(0).inputs)).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]);
  ok.close();
});

test('IndexPermutation is a bijection for awkward sizes, and hash32 spreads bits', () => {
  const r = makeRandom();
  for (const n of [1, 2, 3, 5, 17, 64, 1000, 4097]) {
    const p = new IndexPermutation(n, [r.int(1, 1000)[0]]);
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) seen[p.at(i)]++;
    expect(seen.every((c) => c === 1)).toBe(true);
  }
  const big = new IndexPermutation(3_000_000_000, [1, 2]);
  const x = big.at(2_999_999_999);
  expect(x >= 0 && x < 3_000_000_000).toBe(true);
  expect(() => big.at(3_000_000_000)).toThrow(RangeError);
  // flipping one input bit flips about half of the output bits
  let flips = 0;
  for (let i = 0; i < 1000; i++) flips += popcount(hash32(i, 5) ^ hash32(i ^ 1, 5));
  const mean = flips / 1000;
  if (!(Math.abs(mean - 16) < 1)) throw new Error(`hash32 avalanche: ${mean} bits of 32 flip on average`);
  expect(hash32(2 ** 40)).not.toBe(hash32(0));
});

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v; v &= v - 1) c++;
  return c;
}

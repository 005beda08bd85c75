// Embedding and frequency files (round trips, detection, errors naming file and line) and the
// STS pieces (tokenizer, Spearman with ties against hand values, dataset readers).
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readEmbeddings,
  readFrequencies,
  writeEmbeddings,
  type EmbeddingFormat,
  type Embeddings,
} from '../src/whiten/formats.js';
import { evaluateSts, findStsDatasets, ranks, readStsBenchmark, spearman, tokenize } from '../src/whiten/sts.js';
import { makeRandom } from './helpers/check.js';

const rand = makeRandom();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-whiten-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('embedding files', () => {
  const e: Embeddings = {
    words: ['the', 'of', 'naïve', 'x-ray', 'B'],
    dim: 3,
    vectors: rand.normal(15),
    format: 'word2vec',
  };
  test.each([
    ['word2vec', 'v.txt'],
    ['glove', 'g.txt'],
    ['word2vec-bin', 'v.bin'],
  ] as [EmbeddingFormat, string][])('%s round trip is exact and detected', async (format, name) => {
    const p = join(dir, name);
    writeEmbeddings(p, e, format);
    const back = await readEmbeddings(p);
    expect(back.format).toBe(format);
    expect(back.words).toEqual(e.words);
    expect(back.dim).toBe(3);
    expect(Array.from(back.vectors)).toEqual(Array.from(e.vectors));
  });

  test('malformed files fail naming the file and line', async () => {
    await expect(readEmbeddings(file('short.txt', '2 3\na 1 2 3\nb 1 2\n'))).rejects.toThrow(
      /short\.txt:3: "b" has 2 values, expected 3/,
    );
    await expect(readEmbeddings(file('nan.txt', '2 3\na 1 2 3\nb 1 zz 3\n'))).rejects.toThrow(
      /nan\.txt:3: value 2 of "b" is not a finite number: "zz"/,
    );
    await expect(readEmbeddings(file('count.txt', '3 3\na 1 2 3\nb 1 2 3\n'))).rejects.toThrow(
      /count\.txt: header announces 3 words, the file has 2/,
    );
    await expect(readEmbeddings(file('hdr.txt', '2 3\na 1 2 3\nb 4 5 6\nc 7 8 9\n'))).rejects.toThrow(
      /hdr\.txt:4: more rows than the 2/,
    );
    await expect(readEmbeddings(file('dup.txt', 'a 1 2\nb 3 4\na 5 6\n'))).rejects.toThrow(
      /dup\.txt:3: duplicate word "a" \(first on line 1\)/,
    );
    await expect(readEmbeddings(file('glove.txt', 'a 1 2 3\nb 3 4\n'))).rejects.toThrow(
      /glove\.txt:2: "b" has 2 values, expected 3/,
    );
    const bin = Buffer.concat([Buffer.from('2 2\na '), Buffer.alloc(8), Buffer.from('\nb '), Buffer.alloc(4)]);
    await expect(readEmbeddings(file('cut.bin', bin))).rejects.toThrow(
      /cut\.bin: word 2 of 2 \("b"\): file ends inside its vector/,
    );
    await expect(readEmbeddings(join(dir, 'missing.txt'))).rejects.toThrow(/missing\.txt: cannot read/);
  });

  test('frequency files', async () => {
    const f = await readFrequencies(file('f.txt', 'the 100\nof 50 extra\r\n\nx 1\n'));
    expect([...f]).toEqual([
      ['the', 100],
      ['of', 50],
      ['x', 1],
    ]);
    await expect(readFrequencies(file('f2.txt', 'the 100\nof\n'))).rejects.toThrow(/f2\.txt:2: expected "word count"/);
    await expect(readFrequencies(file('f3.txt', 'the 100\nof -3\n'))).rejects.toThrow(
      /f3\.txt:2: count of "of" must be a positive number/,
    );
    await expect(readFrequencies(file('f4.txt', 'the 100\nthe 3\n'))).rejects.toThrow(
      /f4\.txt:2: duplicate word "the"/,
    );
  });
});

describe('STS', () => {
  test('tokenizer lowercases and strips punctuation', () => {
    expect(tokenize("A woman's HAT, (red)!  ok.")).toEqual(['a', 'woman', 's', 'hat', 'red', 'ok']);
  });

  test('average ranks and Spearman with ties against hand values', () => {
    expect(Array.from(ranks([10, 20, 20, 5]))).toEqual([2, 3.5, 3.5, 1]);
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 12); // scipy.stats.spearmanr
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    expect(spearman([1, 1, 2, 2], [1, 2, 3, 4])).toBeCloseTo(0.894427190999916, 12);
  });

  test('readers and evaluation: STS-B (with extra columns), SICK, SentEval (blank gold skipped)', () => {
    const sts = join(dir, 'sts');
    mkdirSync(join(sts, 'STSBenchmark'), { recursive: true });
    mkdirSync(join(sts, 'SICK'), { recursive: true });
    mkdirSync(join(sts, 'STS12'), { recursive: true });
    writeFileSync(
      join(sts, 'STSBenchmark/sts-test.csv'),
      'g\tf\ty\t1\t5.0\tA cat.\tthe cat\ng\tf\ty\t2\t0.5\tA cat.\tA dog\textra\tcols\ng\tf\ty\t3\t2.5\tcat dog\tA ' +
        'dog!\n',
    );
    writeFileSync(
      join(sts, 'SICK/SICK_test_annotated.txt'),
      'pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n1\tcat\tcat\t4.5\tE\r\n2' +
        '\tcat\tdog\t1\tN\r\n',
    );
    writeFileSync(join(sts, 'STS12/STS.input.toy.txt'), 'cat\tcat\ncat\tdog\nzebra\tcat\n');
    writeFileSync(join(sts, 'STS12/STS.gs.toy.txt'), '5\n\n1\n');
    expect(readStsBenchmark(join(sts, 'STSBenchmark/sts-test.csv'))[1]).toEqual({ a: 'A cat.', b: 'A dog', gold: 0.5 });
    const sets = findStsDatasets(sts);
    expect(sets.map((s) => [s.name, s.pairs.length])).toEqual([
      ['SICK-R test', 2],
      ['STS12 toy', 2],
      ['STS-B test', 3],
    ]);
    const e: Embeddings = {
      words: ['cat', 'dog', 'the', 'a'],
      dim: 2,
      vectors: Float32Array.from([1, 0, 0, 1, 0.1, 0.1, 0.1, 0.1]),
      format: 'glove',
    };
    const stsb = evaluateSts(e, sets[2]);
    // cosines: (a cat, the cat) ≈ 0.997 > (cat dog, a dog) ≈ 0.73 > (a cat, a dog) ≈ 0.18: same order as gold
    expect(stsb).toEqual({ name: 'STS-B test', pairs: 3, empty: 0, spearman: 100 });
    const toy = evaluateSts(e, sets[1]);
    // The blank gold line drops "cat|dog"; "zebra" has no vector, so that pair scores cosine 0.
    expect(sets[1].pairs.map((p) => [p.a, p.b, p.gold])).toEqual([
      ['cat', 'cat', 5],
      ['zebra', 'cat', 1],
    ]);
    expect(toy.empty).toBe(1);
    expect(toy.spearman).toBeCloseTo(100, 9);
    expect(() => findStsDatasets(join(dir, 'nothing-here'))).toThrow(/not a directory/);
  });
});

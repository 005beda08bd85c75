// Other inputs of hlm whiten: an hlm checkpoint's token embeddings with token frequencies counted
// from llm.c shards, word counts from a text corpus (--count-from), and the --sif STS baseline.
// The CLI tests need `npm run build` (the CLI loads commands from dist/).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { hlm } from './helpers/cli.js';
import { makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { writeShard } from '../src/data/shards.js';
import { preset } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { BYTE_TO_CHAR } from '../src/data/byte-level.js';
import { hfByteLevelJson } from '../src/data/tokenizer-json.js';
import { readEmbeddings } from '../src/whiten/formats.js';
import {
  countCorpusTokens,
  countCorpusWords,
  countShardTokens,
  readCheckpointEmbeddings,
} from '../src/whiten/inputs.js';
import { whiten } from '../src/whiten/whiten.js';

const abs = Math.abs;
const max = Math.max;
const rand = makeRandom();
const V = 50;
const D = 8;
let gpu: Gpu;
let dir: string;
let ck: string;
let shards: string;
// Token ids 0..39 appear (id t: 1 + (t % 7) times, more of the small ones); 40..49 never do.
const tokens: number[] = [];
for (let t = 0; t < 40; t++) for (let k = 0; k < 1 + (t % 7) + (t < 10 ? 5 : 0); k++) tokens.push(t);

// A checkpoint with its own tokenizer.json: byte-level, id = byte value, one merge "t h" → 257, end-of-text 256.
const VT = 260;
let ckTok: string;
const tinyConfig = (vocab: number) => ({
  ...preset('tiny'),
  vocab_size: vocab,
  n_layer: 1,
  n_embd: D,
  n_head: 2,
  n_positions: 16,
  eos_token_id: null,
});

beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-whiten-inputs-'));
  const config = tinyConfig(V);
  ck = join(dir, 'ck');
  await saveCheckpoint(ck, { config, params: initParams(config, 5) });
  ckTok = join(dir, 'ck-tok');
  await saveCheckpoint(ckTok, { config: tinyConfig(VT), params: initParams(tinyConfig(VT), 6) });
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[BYTE_TO_CHAR[b]] = b;
  vocab['th'] = 257;
  const json = hfByteLevelJson(vocab, ['t h'], [{ id: 256, content: '<|endoftext|>' }]);
  writeFileSync(join(ckTok, 'tokenizer.json'), JSON.stringify(json));
  shards = join(dir, 'shards');
  mkdirSync(shards);
  const half = tokens.length >> 1;
  writeShard(join(shards, 'a_000000.bin'), tokens.slice(0, half), 1);
  writeShard(join(shards, 'a_000001.bin'), tokens.slice(half), 1);
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function handCounts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of tokens) m.set(String(t), (m.get(String(t)) ?? 0) + 1);
  return m;
}

test('checkpoint token embeddings: rows of transformer.wte.weight, words = token ids', async () => {
  const e = await readCheckpointEmbeddings(ck);
  expect(e.words.length).toBe(V);
  expect(e.dim).toBe(D);
  expect(e.words.slice(0, 3)).toEqual(['0', '1', '2']);
  const config = {
    ...preset('tiny'),
    vocab_size: V,
    n_layer: 1,
    n_embd: D,
    n_head: 2,
    n_positions: 16,
    eos_token_id: null,
  };
  const wte = paramLayout(config).byName.get('transformer.wte.weight')!;
  const params = initParams(config, 5);
  let err = 0;
  for (let i = 0; i < V * D; i++) err = max(err, abs(e.vectors[i] - params[wte.offset + i]));
  expect(err).toBe(0);
});

test('token counts from a shard directory equal hand counts; a token id ≥ V names the shard', () => {
  expect(countShardTokens(shards, V)).toEqual(handCounts());
  expect(countShardTokens(join(shards, 'a_000000.bin'), V).size).toBeGreaterThan(0);
  const bad = join(dir, 'bad.bin');
  writeShard(bad, [1, 2, V + 3], 1);
  expect(() => countShardTokens(bad, V)).toThrow(
    /bad\.bin: token id 53 at index 2 is outside the checkpoint's vocabulary of 50/,
  );
});

test('zipfian whitening of a checkpoint with shard counts: Σ p z zᵀ = I and Σ p z = 0 over the kept ids', async () => {
  const e = await readCheckpointEmbeddings(ck);
  const r = await whiten(gpu, e, countShardTokens(shards, V), 'zipfian');
  expect(r.out.words.length).toBe(40);
  expect(r.dropped).toEqual({ noFrequency: 10, noVector: 0 });
  const n = r.out.words.length;
  const z = r.out.vectors;
  const total = tokens.length;
  const counts = handCounts();
  let maxErr = 0;
  for (let a = 0; a < D; a++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += (counts.get(r.out.words[i])! / total) * z[i * D + a];
    maxErr = max(maxErr, abs(m));
    for (let b = 0; b < D; b++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (counts.get(r.out.words[i])! / total) * z[i * D + a] * z[i * D + b];
      maxErr = max(maxErr, abs(s - (a === b ? 1 : 0)));
    }
  }
  expect(maxErr).toBeLessThan(1e-4); // NaN fails too
});

test('countCorpusWords: lowercased, punctuation dropped, equal to hand counts', async () => {
  const f = join(dir, 'corpus.txt');
  writeFileSync(f, 'The cat sat.\nthe CAT, the dog!\n\nA dog’s day: "dog" ran.\n');
  const c = await countCorpusWords(f);
  expect(Object.fromEntries(c)).toEqual({ the: 3, cat: 2, sat: 1, dog: 3, a: 1, s: 1, day: 1, ran: 1 });
});

/** Token-id counts of the byte tokenizer by hand: bytes, except that "th" inside a word is one token (257). */
function byteTokenCounts(texts: string[]): Map<string, number> {
  const m = new Map<string, number>();
  const add = (id: number) => m.set(String(id), (m.get(String(id)) ?? 0) + 1);
  for (const text of texts) {
    const b = Buffer.from(text);
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 0x74 && b[i + 1] === 0x68) {
        add(257);
        i++;
      } else add(b[i]);
    }
  }
  return m;
}

test('--count-from with a checkpoint: token ids of the corpus under its tokenizer.json (gzip corpus too)', async () => {
  const docs = ['the thin path', 'both this and that', 'no t-h here'];
  const corpus = join(dir, 'tok-corpus.jsonl.gz');
  writeFileSync(corpus, gzipSync(docs.map((text) => JSON.stringify({ text })).join('\n') + '\n'));
  const { counts, tokenizer } = await countCorpusTokens(corpus, ckTok, VT);
  expect(tokenizer).toMatch(/^hf-/);
  expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(byteTokenCounts(docs)));
  // Without a tokenizer.json and with a vocabulary that is not GPT-2's there is nothing to encode with.
  await expect(countCorpusTokens(corpus, ck, V)).rejects.toThrow(
    /--count-from .*tok-corpus\.jsonl\.gz: a checkpoint's rows are token ids, counted by encoding the corpus with its tokenizer, which is missing: checkpoint .* has vocab_size 50 and no tokenizer\.json/,
  );
});

describe('CLI (built dist/)', () => {
  test('issue 16 #7: --count-from with a checkpoint and no tokenizer fails clearly and writes nothing', () => {
    // Before: exit 0 and z.txt written, the corpus' numbers ("3", "12", "7", "1") matched to token ids as words.
    const corpus = join(dir, 'numbers.txt');
    writeFileSync(corpus, 'In 1990 there were 3 cats, 12 dogs and 7 birds; 3 of them sat on 1 mat.\n');
    const out = join(dir, 'count-from-out');
    mkdirSync(out);
    const r = hlm([
      'whiten',
      '--embeddings',
      ck,
      '--count-from',
      corpus,
      '--method',
      'center',
      '--out',
      join(out, 'z.txt'),
      '--device',
      'cpu',
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hlm: --count-from .*numbers\.txt: a checkpoint's rows are token ids/m);
    expect(r.stderr).toMatch(/no tokenizer\.json/);
    expect(readdirSync(out)).toEqual([]);
  });

  test('--count-from with a checkpoint and its tokenizer.json: kept rows are the ids the corpus uses', () => {
    const docs = ['the thin path', 'both this and that'];
    const corpus = join(dir, 'tok.txt');
    writeFileSync(corpus, docs.join(' '));
    const out = join(dir, 'tok-z.txt');
    const r = hlm([
      'whiten',
      '--embeddings',
      ckTok,
      '--count-from',
      corpus,
      '--method',
      'center',
      '--out',
      out,
      '--device',
      'cpu',
    ]);
    if (r.status !== 0) throw new Error(r.stderr);
    expect(existsSync(out)).toBe(true);
    const rj = hlm([
      'whiten',
      '--embeddings',
      ckTok,
      '--count-from',
      corpus,
      '--method',
      'center',
      '--json',
      '--device',
      'cpu',
    ]);
    if (rj.status !== 0) throw new Error(rj.stderr);
    const j = JSON.parse(rj.stdout);
    const hand = byteTokenCounts([docs.join(' ')]);
    expect(j).toMatchObject({
      input: { format: 'checkpoint', words: VT },
      frequencies: { source: 'corpus', words: hand.size },
      kept: hand.size,
      dropped: { noFrequency: VT - hand.size, noVector: 0 },
    });
    expect(j.frequencies.tokenizer).toMatch(/^hf-/);
  });

  test('checkpoint + shard directory → word2vec text with ids as words; --json reports the sources', async () => {
    const out = join(dir, 'wte.txt');
    const r = hlm(['whiten', '--embeddings', ck, '--frequencies', shards, '--out', out, '--device', 'cpu', '--json']);
    if (r.status !== 0) throw new Error(r.stderr);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      kept: 40,
      input: { format: 'checkpoint', words: V, dim: D },
      frequencies: { source: 'shards', words: 40 },
    });
    const z = await readEmbeddings(out);
    expect(z.format).toBe('word2vec');
    expect(z.words).toEqual(Array.from({ length: 40 }, (_, i) => String(i)));
    expect(z.vectors.every((v) => Number.isFinite(v))).toBe(true);
  });

  test('a bad token id fails naming the shard; shards need a checkpoint', () => {
    const bad = join(dir, 'bad2.bin');
    writeShard(bad, [0, 1, 99], 1);
    const r = hlm(['whiten', '--embeddings', ck, '--frequencies', bad, '--device', 'cpu']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad2\.bin: token id 99 at index 2 is outside/);
    const emb = join(dir, 'v.txt');
    writeFileSync(emb, '2 2\n0 1 2\n1 3 4\n');
    const r2 = hlm(['whiten', '--embeddings', emb, '--frequencies', shards, '--device', 'cpu']);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/only a checkpoint --embeddings has/);
  });

  test(
    '--count-from counts a corpus; with --frequencies, or with neither, a clear error; --sif ' + 'adds the SIF row',
    () => {
      const words = ['the', 'cat', 'sat', 'dog', 'ran', 'a', 'day', 'big', 'old'];
      const emb = join(dir, 'w.txt');
      const x = rand.normal(words.length * 4);
      const rows = words.map(
        (w, i) => `${w} ${Array.from({ length: 4 }, (_, c) => x[i * 4 + c].toFixed(5)).join(' ')}`,
      );
      writeFileSync(emb, `${words.length} 4\n${rows.join('\n')}\n`);
      const corpus = join(dir, 'c.txt');
      writeFileSync(
        corpus,
        'The cat sat. The dog ran!\nA big old dog, a big day; the cat ran the day.\nOld cat, old dog.\n',
      );
      mkdirSync(join(dir, 'sts'), { recursive: true });
      writeFileSync(
        join(dir, 'sts/sts-test.csv'),
        'g\tf\ty\t1\t5\tthe cat\tthe cat sat\ng\tf\ty\t2\t1\tbig dog\tan old day\ng\tf\ty\t3\t3\tcat ran\tdog ' +
          'ran\ng\tf\ty\t4\t2\tthe day\ta big cat\n',
      );
      const r = hlm([
        'whiten',
        '--embeddings',
        emb,
        '--count-from',
        corpus,
        '--eval-sts',
        join(dir, 'sts'),
        '--sif',
        '--device',
        'cpu',
        '--json',
      ]);
      if (r.status !== 0) throw new Error(r.stdout + r.stderr);
      const j = JSON.parse(r.stdout);
      expect(j).toMatchObject({
        kept: 9,
        frequencies: { source: 'corpus', words: 9 },
        dropped: { noFrequency: 0, noVector: 0 },
      });
      expect(j.sts.sif).toHaveLength(1);
      expect(j.sts.sif[0]).toMatchObject({ name: 'STS-B test', pairs: 4 });
      expect(Number.isFinite(j.sts.sif[0].spearman)).toBe(true);
      const human = hlm([
        'whiten',
        '--embeddings',
        emb,
        '--count-from',
        corpus,
        '--eval-sts',
        join(dir, 'sts'),
        '--sif',
        '--device',
        'cpu',
      ]);
      if (human.status !== 0) throw new Error(human.stderr);
      expect(human.stdout).toMatch(/STS-B test .* SIF -?\d+\.\d\d/);
      const both = hlm([
        'whiten',
        '--embeddings',
        emb,
        '--count-from',
        corpus,
        '--frequencies',
        corpus,
        '--device',
        'cpu',
      ]);
      expect(both.status).toBe(1);
      expect(both.stderr).toMatch(/either --frequencies or --count-from, not both/);
      const neither = hlm(['whiten', '--embeddings', emb, '--device', 'cpu']);
      expect(neither.status).toBe(1);
      expect(neither.stderr).toMatch(/give --frequencies <file\|shards> or --count-from <corpus>/);
    },
  );
});

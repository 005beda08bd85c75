import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { defaultCorpusPath, readDocuments } from '../src/data/corpus.js';
import { gpt2Tokenizer } from '../src/data/gpt2-tokenizer.js';
import {
  cacheRoot,
  prepareData,
  readShard,
  readShardHeader,
  SHARD_HEADER_BYTES,
  shardVersionFor,
  ShardWriter,
  tokenizeCorpus,
  writeShard,
} from '../src/data/shards.js';
import { collect, makeRandom } from './helpers/check.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'hlm-shards-'));

test('llm.c layout: 256 int32 header (magic, version, count) then uint16 or uint32 tokens', () => {
  const dir = scratch();
  const r = makeRandom();
  const small = Array.from(r.int(1000, 65536));
  writeShard(join(dir, 'v1.bin'), small, 1);
  const bytes = readFileSync(join(dir, 'v1.bin'));
  expect(bytes.length).toBe(1024 + 2 * 1000);
  expect([bytes.readInt32LE(0), bytes.readInt32LE(4), bytes.readInt32LE(8)]).toEqual([20240520, 1, 1000]);
  for (let i = 3; i < 256; i++) expect(bytes.readInt32LE(4 * i)).toBe(0);
  expect(bytes.readUInt16LE(1024 + 2 * 7)).toBe(small[7]);
  expect(Array.from(readShard(join(dir, 'v1.bin')))).toEqual(small);

  const big = [0, 65536, 4294967295, 123456789];
  writeShard(join(dir, 'v2.bin'), big, 2);
  const b2 = readFileSync(join(dir, 'v2.bin'));
  expect([b2.readInt32LE(4), b2.readInt32LE(8), b2.readUInt32LE(1024 + 8)]).toEqual([2, 4, 4294967295]);
  expect(readShard(join(dir, 'v2.bin'))).toEqual(Uint32Array.from(big));
  expect(() => writeShard(join(dir, 'x.bin'), [65536], 1)).toThrow(/does not fit a version 1 shard/);
  expect(readdirSync(dir).sort()).toEqual(['v1.bin', 'v2.bin']); // no temporary files left behind
  expect(shardVersionFor(50257)).toBe(1);
  expect(shardVersionFor(65536)).toBe(1);
  expect(shardVersionFor(65537)).toBe(2);
});

test('a damaged shard is refused with the file and the byte counts', () => {
  const dir = scratch();
  const p = join(dir, 's.bin');
  writeShard(
    p,
    Array.from({ length: 100 }, (_, i) => i),
    1,
  );
  truncateSync(p, 1024 + 150);
  expect(() => readShardHeader(p)).toThrow(HlmError);
  expect(() => readShard(p)).toThrow(
    `token shard ${p} is truncated: its header promises 100 tokens (1224 bytes with the header) but the file has ` +
      `1174 bytes`,
  );
  truncateSync(p, 500);
  expect(() => readShardHeader(p)).toThrow(`token shard ${p} is truncated: 500 bytes, less than the 1024-byte header`);
  writeShard(p, [1, 2, 3], 1);
  appendFileSync(p, Buffer.from([0, 0]));
  expect(() => readShardHeader(p)).toThrow(/2 bytes past the 3 tokens/);
  const notShard = join(dir, 'n.bin');
  writeFileSync(notShard, Buffer.alloc(2048, 7));
  expect(() => readShardHeader(notShard)).toThrow(
    `${notShard} is not an llm.c token shard: magic 117901063, expected 20240520`,
  );
  const v3 = Buffer.alloc(1024);
  v3.writeInt32LE(20240520, 0);
  v3.writeInt32LE(3, 4);
  writeFileSync(join(dir, 'v3.bin'), v3);
  expect(() => readShardHeader(join(dir, 'v3.bin'))).toThrow(/version 3 is unknown/);
  expect(() => readShardHeader(join(dir, 'missing.bin'))).toThrow(/no such file/);
});

test('ShardWriter splits at the shard size and keeps every token in order', () => {
  const dir = scratch();
  const w = new ShardWriter(dir, 2, 1000);
  const all: number[] = [];
  for (let i = 0; i < 37; i++) {
    const chunk = Array.from({ length: 97 * i }, (_, k) => i * 10000 + k);
    all.push(...chunk);
    w.push(chunk);
  }
  const paths = w.finish();
  expect(paths.length).toBe(Math.ceil(all.length / 1000));
  expect(w.counts.slice(0, -1).every((c) => c === 1000)).toBe(true);
  const back = paths.flatMap((p) => Array.from(readShard(p)));
  expect(back).toEqual(all);
});

function corpusDir(): string {
  const dir = scratch();
  writeFileSync(join(dir, 'a.txt'), 'Hello world');
  writeFileSync(join(dir, 'b.jsonl'), '{"text": "The quick brown fox"}\n{"text": "a  b"}\n');
  return dir;
}

test('tokenising a corpus: EOT before each document, cached by files and tokenizer', async () => {
  const cache = scratch();
  const dir = corpusDir();
  const tok = gpt2Tokenizer();
  const first = await tokenizeCorpus([dir], tok, { cacheDir: cache });
  expect(first.cached).toBe(false);
  expect(first.documents).toBe(3);
  const tokens = first.shards.flatMap((p) => Array.from(readShard(p)));
  expect(tokens).toEqual([50256, 15496, 995, 50256, 464, 2068, 7586, 21831, 50256, 64, 220, 275]);
  expect(first.tokens).toBe(tokens.length);
  expect(readShardHeader(first.shards[0]).version).toBe(1);

  const again = await tokenizeCorpus([dir], tok, { cacheDir: cache });
  expect(again.cached).toBe(true);
  expect(again.shards).toEqual(first.shards);

  // touching a file (new mtime) or changing its size makes a new entry
  const later = new Date(Date.now() + 5000);
  utimesSync(join(dir, 'a.txt'), later, later);
  const touched = await tokenizeCorpus([dir], tok, { cacheDir: cache });
  expect(touched.cached).toBe(false);
  expect(touched.dir).not.toBe(first.dir);
  writeFileSync(join(dir, 'a.txt'), 'Hello world!');
  const grown = await tokenizeCorpus([dir], tok, { cacheDir: cache });
  expect(grown.tokens).toBe(first.tokens + 1);
  expect(readdirSync(join(cache, 'shards')).every((n) => !n.includes('.tmp-'))).toBe(true);
});

test('a different tokenizer is a different cache entry; HLM_CACHE_DIR moves the cache', async () => {
  const dir = corpusDir();
  const cache = scratch();
  const saved = process.env.HLM_CACHE_DIR;
  process.env.HLM_CACHE_DIR = cache;
  try {
    expect(cacheRoot()).toBe(cache);
    const tok = gpt2Tokenizer();
    const a = await tokenizeCorpus([dir], tok);
    expect(a.dir.startsWith(cache)).toBe(true);
    const other = { ...tok, fingerprint: 'another', encodeBatch: tok.encodeBatch.bind(tok), name: 'x' };
    const b = await tokenizeCorpus([dir], other as typeof tok);
    expect(b.cached).toBe(false);
    expect(b.dir).not.toBe(a.dir);
  } finally {
    if (saved === undefined) delete process.env.HLM_CACHE_DIR;
    else process.env.HLM_CACHE_DIR = saved;
  }
  delete process.env.XDG_CACHE_HOME;
  expect(cacheRoot()).toMatch(/\.cache\/hlm$/);
});

test('prepareData takes .bin shards as they are and tokenises the text beside them', async () => {
  const dir = corpusDir();
  const cache = scratch();
  writeShard(join(dir, 'given.bin'), [1, 2, 3, 4], 1);
  const prep = await prepareData([dir], gpt2Tokenizer(), { cacheDir: cache });
  expect(prep.shards[0]).toBe(join(dir, 'given.bin'));
  expect(prep.shards.length).toBe(2);
  expect(prep.tokens).toBe(4 + 12);
  const onlyShard = await prepareData([join(dir, 'given.bin')], gpt2Tokenizer(), { cacheDir: cache });
  expect(onlyShard).toEqual({ shards: [join(dir, 'given.bin')], tokens: 4, tokenized: undefined });
  writeFileSync(join(dir, 'broken.bin'), Buffer.alloc(10));
  await expect(prepareData([dir], gpt2Tokenizer(), { cacheDir: cache })).rejects.toThrow(/broken\.bin is truncated/);
});

test('a real corpus excerpt: tokens decode back to the documents', async () => {
  const cache = scratch();
  const dir = scratch();
  const wiki = join(dir, 'wiki_small');
  // the first 150 articles of the bundled corpus
  const src = readFileSync(defaultCorpusPath(), 'utf8').split('</doc>\n').slice(0, 150).join('</doc>\n') + '</doc>\n';
  writeFileSync(wiki, src);
  const tok = gpt2Tokenizer();
  const t = await tokenizeCorpus([wiki], tok, { cacheDir: cache, shardTokens: 5000 });
  expect(t.shards.length).toBeGreaterThan(1);
  const tokens = t.shards.flatMap((p) => Array.from(readShard(p)));
  const docs = await collect(readDocuments([wiki]));
  expect(tokens.filter((x) => x === 50256).length).toBe(docs.length);
  expect(tok.decodeSync(tokens)).toBe(docs.map((d) => '<|endoftext|>' + d).join(''));
  expect(statSync(t.shards[0]).size).toBe(SHARD_HEADER_BYTES + 2 * 5000);
});

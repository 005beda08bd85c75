// Issue 16: embedding files of any size. Readers stream word2vec text and binary, GloVe, fastText
// .vec and .npy, plain or gzip; --max-vocab stops reading (a corrupt tail past it is never
// decompressed); rows without a frequency are read past; a text file over V8's longest string
// (512 MiB) reads; a failing --out write keeps the previous output. CLI tests need `npm run build`.
import { spawnSync } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createGzip, gzipSync } from 'node:zlib';
import { hlm, repoRoot } from './helpers/cli.js';
import { makeRandom } from './helpers/check.js';
import {
  readEmbeddings,
  readFrequencies,
  serializeEmbeddings,
  writeEmbeddings,
  type EmbeddingFormat,
  type Embeddings,
} from '../src/whiten/formats.js';

const rand = makeRandom();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-whiten-stream-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, data: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

/** n words w0, w1, … of dimension d with fresh random vectors. */
function embeddings(n: number, d: number, format: EmbeddingFormat = 'word2vec'): Embeddings {
  return { words: Array.from({ length: n }, (_, i) => `w${i}`), dim: d, vectors: rand.normal(n * d), format };
}

/** The rows `rows` of e. */
function rowsOf(e: Embeddings, rows: number[]): number[] {
  return rows.flatMap((r) => Array.from(e.vectors.subarray(r * e.dim, (r + 1) * e.dim)));
}

const FORMATS: [EmbeddingFormat, string][] = [
  ['word2vec', 'v.txt'],
  ['glove', 'g.txt'],
  ['word2vec-bin', 'v.bin'],
  ['npy', 'v.npy'],
];

/** A float array's bytes (a fast exact comparison). */
function bytesOf(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

describe.each(FORMATS)('%s', (format, name) => {
  // 13,000 rows of 97 dimensions: every format spans many 1 MiB chunks (records cross chunk boundaries), and the
  // compressed file is over 4 MiB, more than a reader has in flight.
  const e = embeddings(13000, 97, format);
  const vocab = (p: string) => p.replace(/\.npy(\.gz)?$/, '.vocab');
  let plain: string;
  let gz: string;
  beforeAll(() => {
    plain = join(dir, `${format}-${name}`);
    writeEmbeddings(plain, e, format);
    gz = `${plain}.gz`;
    writeFileSync(gz, gzipSync(readFileSync(plain), { level: 1 }));
    if (format === 'npy') writeFileSync(vocab(gz), readFileSync(vocab(plain)));
  });

  test('plain and .gz read the same rows, exactly', async () => {
    expect(statSync(gz).size).toBeGreaterThan(4 << 20);
    for (const p of [plain, gz]) {
      const back = await readEmbeddings(p);
      expect(back.format).toBe(format);
      expect(back.rows).toBe(13000);
      expect(back.words).toEqual(e.words);
      expect(bytesOf(back.vectors).equals(bytesOf(e.vectors))).toBe(true);
    }
  });

  test('keep: only the kept rows are stored, in file order; maxVocab: only the first N rows are read', async () => {
    const keep = new Set(['w12999', 'w7', 'w1500', 'absent']);
    const kept = await readEmbeddings(gz, undefined, { keep: (w) => keep.has(w) });
    expect(kept.rows).toBe(13000);
    expect(kept.words).toEqual(['w7', 'w1500', 'w12999']);
    expect(Array.from(kept.vectors)).toEqual(rowsOf(e, [7, 1500, 12999]));
    const first = await readEmbeddings(gz, undefined, { maxVocab: 1501, keep: (w) => keep.has(w) });
    expect(first.rows).toBe(1501);
    expect(first.words).toEqual(['w7', 'w1500']);
    expect(Array.from(first.vectors)).toEqual(rowsOf(e, [7, 1500]));
  });

  test('--max-vocab stops reading: a corrupt tail past row N is never decompressed', async () => {
    // The last 64 KiB of compressed data overwritten: reading it all fails (at the garbage it decompresses to, or at
    // the gzip check), reading the first 100 rows never gets there.
    const bytes = readFileSync(gz);
    bytes.fill(0x55, bytes.length - 65536, bytes.length - 8);
    const broken = file(`broken-${name}.gz`, bytes);
    if (format === 'npy') writeFileSync(vocab(broken), e.words.join('\n') + '\n');
    await expect(readEmbeddings(broken)).rejects.toThrow(new RegExp(`^${broken}`));
    const head = await readEmbeddings(broken, undefined, { maxVocab: 100 });
    expect(head.rows).toBe(100);
    expect(head.words).toEqual(e.words.slice(0, 100));
    expect(bytesOf(head.vectors).equals(bytesOf(e.vectors.subarray(0, 100 * 97)))).toBe(true);
  });

  test('a truncated .gz is an error naming the file', async () => {
    const bytes = readFileSync(gz);
    const cut = file(`cut-${name}.gz`, bytes.subarray(0, bytes.length >> 1));
    if (format === 'npy') writeFileSync(vocab(cut), e.words.join('\n') + '\n');
    await expect(readEmbeddings(cut)).rejects.toThrow(/cut-.*\.gz: corrupt or truncated gzip data \(unexpected end/);
  });
});

test('fastText .vec (word2vec text) and GloVe 840B quirks: words with spaces, CRLF, a trailing blank', async () => {
  const vec = file('crawl.vec', '3 2\n, 0.5 -1\nthe 1 2 \r\n. . . 3 4\n\n');
  const v = await readEmbeddings(vec);
  expect(v.format).toBe('word2vec');
  expect(v.words).toEqual([',', 'the', '. . .']);
  expect(Array.from(v.vectors)).toEqual([0.5, -1, 1, 2, 3, 4]);
  const glove = file('glove.840B.txt', ', 1 2 3\nat name@domain.com 4 5 6\n');
  const g = await readEmbeddings(glove);
  expect(g.format).toBe('glove');
  expect(g.words).toEqual([',', 'at name@domain.com']);
  // A row with fewer values than the first one is still an error naming its line.
  await expect(readEmbeddings(file('short.txt', 'a 1 2 3\nb 1 2\n'))).rejects.toThrow(
    /short\.txt:2: "b" has 2 values, expected 3/,
  );
  // Not gzip although named so.
  await expect(readEmbeddings(file('fake.txt.gz', 'a 1 2\n'))).rejects.toThrow(
    /fake\.txt\.gz: named \.gz but not gzip/,
  );
});

test('frequencies read plain or .gz', async () => {
  const text = 'the 100\nof 50\n';
  const a = await readFrequencies(file('f.txt', text));
  const b = await readFrequencies(file('f.txt.gz', gzipSync(text)));
  expect([...b]).toEqual([...a]);
  expect([...a]).toEqual([
    ['the', 100],
    ['of', 50],
  ]);
});

test('issue 16 #10: a GloVe text file over 512 MiB (longer than V8 can hold as one string) streams', async () => {
  // Rows "w<i> 0 0 … 0" (300 zeros) until the text is past the longest string V8 holds; three rows have values.
  const zeros = ' 0'.repeat(300);
  const rowBytes = `w0000000${zeros}\n`.length;
  const rows = Math.ceil((bufferConstants.MAX_STRING_LENGTH + (1 << 20)) / rowBytes);
  const path = join(dir, 'huge.txt.gz');
  const gzip = createGzip({ level: 1 });
  const done = once(gzip.pipe(createWriteStream(path)), 'finish');
  const special = new Map([
    [0, 1],
    [rows >> 1, 2],
    [rows - 1, 3],
  ]);
  const block: string[] = [];
  for (let i = 0; i < rows; i++) {
    const s = special.get(i);
    block.push(`w${String(i).padStart(7, '0')}${s === undefined ? zeros : ` ${s}`.repeat(300)}`);
    if (block.length === 4096 || i === rows - 1) {
      if (!gzip.write(block.join('\n') + '\n')) await once(gzip, 'drain');
      block.length = 0;
    }
  }
  gzip.end();
  await done;
  const keep = new Set([...special.keys()].map((i) => `w${String(i).padStart(7, '0')}`));
  const e = await readEmbeddings(path, undefined, { keep: (w) => keep.has(w) });
  expect(rows * rowBytes).toBeGreaterThan(bufferConstants.MAX_STRING_LENGTH);
  expect(e.rows).toBe(rows);
  expect(e.format).toBe('glove');
  expect(e.words).toEqual([...keep]);
  expect(Array.from(e.vectors)).toEqual([...special.values()].flatMap((s) => new Array(300).fill(s)));
}, 300_000);

describe('CLI (built dist/)', () => {
  const words = Array.from({ length: 400 }, (_, i) => `w${i}`);
  let emb: string;
  let freq: string;
  beforeAll(() => {
    emb = file('cli.bin.gz', gzipSync(serializeEmbeddings({ ...embeddings(400, 6), words }, 'word2vec-bin')));
    freq = file('cli-freq.txt.gz', gzipSync(words.map((w, i) => `${w} ${1000 - i}`).join('\n') + '\nunseen 3\n'));
  });

  test('--max-vocab N whitens the first N rows of a .bin.gz; --json reports rows read and kept', () => {
    const out = join(dir, 'cli-z.bin');
    const r = hlm(['whiten', '--embeddings', emb, '--frequencies', freq, '--max-vocab', '150', '--out', out, '--json']);
    if (r.status !== 0) throw new Error(r.stderr);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      input: { format: 'word2vec-bin', words: 150, dim: 6 },
      kept: 150,
      dropped: { noFrequency: 0, noVector: 251 },
    });
    const bad = hlm(['whiten', '--embeddings', emb, '--frequencies', freq, '--max-vocab', '0']);
    expect(bad.status).not.toBe(0);
  });

  test('issue 16 #7: a failing --out write (file size limit, as on a full disk) keeps the previous output', () => {
    const out = join(dir, 'keep', 'z.txt');
    mkdirSync(join(dir, 'keep'));
    const args = ['whiten', '--embeddings', emb, '--frequencies', freq, '--format', 'word2vec', '--out', out];
    const first = hlm([...args, '--method', 'center']);
    if (first.status !== 0) throw new Error(first.stderr);
    const before = readFileSync(out);
    expect(before.length).toBeGreaterThan(16 * 1024);
    // RLIMIT_FSIZE of 8 KiB: the new file's writes fail with EFBIG part way (SIGXFSZ ignored), as ENOSPC would.
    const limited = spawnSync(
      'bash',
      ['-c', 'trap "" XFSZ; ulimit -f 8; exec "$0" "$@"', process.execPath, join(repoRoot(), 'bin/run.js'), ...args],
      { encoding: 'utf8', env: { ...process.env, HLM_LOG_LEVEL: 'warn' }, cwd: repoRoot() },
    );
    expect(limited.status).toBe(1);
    expect(limited.stderr).toMatch(/^hlm: cannot write embeddings .*z\.txt: EFBIG/m);
    expect(readFileSync(out).equals(before)).toBe(true);
    expect(readdirSync(join(dir, 'keep'))).toEqual(['z.txt']);
  });
});

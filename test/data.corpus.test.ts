import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { collect } from './helpers/check.js';
import {
  defaultCorpusPath,
  detectFormat,
  firstInvalidUtf8,
  listCorpusFiles,
  projectRoot,
  readDocuments,
  readJsonl,
  readLines,
  readTextFile,
  readWikiExtractor,
} from '../src/data/corpus.js';

const shared = join(projectRoot(), '..', 'shared', 'data');
const scratch = () => mkdtempSync(join(tmpdir(), 'hlm-corpus-'));

test('WikiExtractor shard: one document per <doc>, title line dropped, empty articles skipped', async () => {
  const docs = await collect(readWikiExtractor(join(shared, 'corpus', 'enwiki', 'wiki_00')));
  expect(docs.length).toBeGreaterThan(500);
  // the shard opens with "Marcus Claudius Tacitus" (title only: skipped), then "Jarred Shaw"
  expect(
    docs[0].startsWith('Jarred Shaw (born September 28, 1990) is an American professional basketball player'),
  ).toBe(true);
  for (const d of docs) {
    expect(d).not.toMatch(/<\/?doc/);
    expect(d).toBe(d.trimEnd());
    expect(d.startsWith('\n')).toBe(false);
    expect(d.length).toBeGreaterThan(0);
  }
});

test('WikiExtractor errors name the file and the line of the unclosed <doc>', async () => {
  const dir = scratch();
  const a = join(dir, 'wiki_a');
  writeFileSync(
    a,
    '<doc id="1" url="u" title="A">\nA\n\nbody\n</doc>\n<doc id="2" url="u" title="B">\nB\nnever closed\n',
  );
  await expect(collect(readWikiExtractor(a))).rejects.toThrow(HlmError);
  await expect(collect(readWikiExtractor(a))).rejects.toThrow(`${a}:6: <doc> without </doc> (the file ends first)`);
  const b = join(dir, 'wiki_b');
  writeFileSync(b, '<doc id="1" url="u" title="A">\nA\nbody\n<doc id="2" url="u" title="B">\nx\n</doc>\n');
  await expect(collect(readWikiExtractor(b))).rejects.toThrow(
    `${b}:1: <doc> without </doc> (the next <doc> starts at line 4)`,
  );
  const c = join(dir, 'wiki_c');
  writeFileSync(c, '<doc id="1" url="u" title="Q &amp; A">\nQ & A\n\nFirst line.\nSecond.\n</doc>\n\nstray text\n');
  const it = readWikiExtractor(c);
  expect((await it.next()).value).toBe('First line.\nSecond.'); // title with an entity still recognised
  await expect(it.next()).rejects.toThrow(`${c}:8: text outside a <doc`);
});

test('JSONL: the text field of each line; errors name file and line', async () => {
  const dir = scratch();
  const ok = join(dir, 'ok.jsonl');
  writeFileSync(ok, '{"text": "one"}\n\n{"text": "two\\nlines", "id": 3}\r\n{"text": ""}\n{"text": "last"}');
  expect(await collect(readJsonl(ok))).toEqual(['one', 'two\nlines', 'last']);
  const badJson = join(dir, 'bad.jsonl');
  writeFileSync(badJson, '{"text": "one"}\n{"text": oops}\n');
  await expect(collect(readJsonl(badJson))).rejects.toThrow(new RegExp(`^${badJson}:2: not JSON`));
  const noText = join(dir, 'notext.jsonl');
  writeFileSync(noText, '{"text": "one"}\n{"text": "two"}\n{"body": "three"}\n');
  await expect(collect(readJsonl(noText))).rejects.toThrow(`${noText}:3: a JSONL line needs a string "text" field`);
  const numText = join(dir, 'num.jsonl');
  writeFileSync(numText, '[1, 2]\n');
  await expect(collect(readJsonl(numText))).rejects.toThrow(`${numText}:1: a JSONL line needs a string "text" field`);
  // the shared LAMBADA sample is JSONL
  expect((await collect(readJsonl(join(shared, 'lambada', 'lambada_test_sample200.jsonl')))).length).toBe(200);
});

test('plain text: one document per file, BOM removed; bad UTF-8 is named by line and column', async () => {
  const dir = scratch();
  const t = join(dir, 'a.txt');
  writeFileSync(t, '\uFEFFFirst paragraph.\n\nSecond paragraph.\n');
  expect(await collect(readTextFile(t))).toEqual(['First paragraph.\n\nSecond paragraph.\n']);
  const bad = join(dir, 'bad.txt');
  writeFileSync(
    bad,
    Buffer.concat([Buffer.from('ok line\nsecond é line\nthird '), Buffer.from([0xc3, 0x28]), Buffer.from(' rest\n')]),
  );
  await expect(collect(readTextFile(bad))).rejects.toThrow(`${bad}:3:7: not valid UTF-8 (byte 0xc3)`);
  const badJsonl = join(dir, 'bad.jsonl');
  writeFileSync(
    badJsonl,
    Buffer.concat([Buffer.from('{"text": "a"}\n{"text": "'), Buffer.from([0xff]), Buffer.from('"}\n')]),
  );
  await expect(collect(readJsonl(badJsonl))).rejects.toThrow(`${badJsonl}:2:11: not valid UTF-8 (byte 0xff)`);
  expect(firstInvalidUtf8(Buffer.from('héllo 😀'))).toBe(-1);
  expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc0, 0x80]))).toBe(1); // overlong
  expect(firstInvalidUtf8(Uint8Array.from([0xed, 0xa0, 0x80]))).toBe(0); // surrogate
  expect(firstInvalidUtf8(Uint8Array.from([0xf0, 0x9f, 0x98]))).toBe(0); // cut short
});

test('lines stream across chunk boundaries and keep their numbers', () => {
  const dir = scratch();
  const f = join(dir, 'long.txt');
  const lines = Array.from({ length: 3000 }, (_, i) => `${i} ${'é😀x'.repeat(i % 700)}`);
  writeFileSync(f, lines.join('\n')); // > 1 MiB, no final newline
  expect(statSync(f).size).toBeGreaterThan(1 << 21);
  let n = 0;
  for (const { line, lineNo } of readLines(f)) {
    expect(line).toBe(lines[lineNo - 1]);
    n++;
  }
  expect(n).toBe(3000);
});

test('formats are told apart by content; directories expand recursively and skip notes', async () => {
  const dir = scratch();
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(dir, 'wiki_00'), '\n<doc id="1" url="u" title="T">\nT\n\nBody.\n</doc>\n');
  writeFileSync(join(dir, 'sub', 'data'), '{"text": "json without extension"}\n');
  writeFileSync(join(dir, 'sub', 'deeper', 'book.txt'), '{ braces in prose }\nare still prose');
  writeFileSync(join(dir, 'sub', 'x.jsonl'), '{"text": "j"}\n');
  writeFileSync(join(dir, 'README.md'), 'about this data');
  writeFileSync(join(dir, 'sub', 'LASER_repo_LICENSE'), 'licence');
  writeFileSync(join(dir, '.hidden'), 'hidden');
  const files = listCorpusFiles([dir]);
  expect(files.map((f) => [f.path.slice(dir.length + 1), f.format])).toEqual([
    ['sub/data', 'jsonl'],
    ['sub/deeper/book.txt', 'text'],
    ['sub/x.jsonl', 'jsonl'],
    ['wiki_00', 'wikiextractor'],
  ]);
  expect(await collect(readDocuments([dir]))).toEqual([
    'json without extension',
    '{ braces in prose }\nare still prose',
    'j',
    'Body.',
  ]);
  writeFileSync(join(dir, 'blob'), Buffer.from([1, 2, 0, 3]));
  expect(() => detectFormat(join(dir, 'blob'))).toThrow(/looks binary/);
  expect(detectFormat(join(shared, 'corpus', 'wikitext-2', 'valid.txt'))).toBe('text');
});

test('missing paths and empty corpora are clear errors', async () => {
  const dir = scratch();
  expect(() => listCorpusFiles([join(dir, 'nope')])).toThrow(`--data ${join(dir, 'nope')}: no such file or directory`);
  expect(() => listCorpusFiles([dir])).toThrow(/no corpus files in this directory/);
  expect(() => listCorpusFiles([])).toThrow(HlmError);
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '{"text": ""}\n\n');
  writeFileSync(join(dir, 'blank.txt'), '  \n\n');
  await expect(collect(readDocuments([dir]))).rejects.toThrow(
    /^empty corpus: no documents in .*blank\.txt, .*empty\.jsonl$/,
  );
});

test('the bundled default corpus is a WikiExtractor excerpt under 2 MB with its licence', async () => {
  const path = defaultCorpusPath();
  expect(statSync(path).size).toBeLessThan(2 * 1024 * 1024);
  expect(detectFormat(path)).toBe('wikiextractor');
  const docs = await collect(readDocuments([path]));
  expect(docs.length).toBeGreaterThan(500); // 2,039 articles, many of them a title alone
  expect(statSync(join(path, '..', 'LICENSE')).isFile()).toBe(true);
  // README and LICENSE are not text to train on
  expect(listCorpusFiles([join(path, '..')]).map((f) => f.path)).toEqual([path]);
});

test('gzip corpora: WikiExtractor, JSONL and plain text read as plain ones do; formats detected inside', async () => {
  const dir = scratch();
  const wiki = join(shared, 'corpus', 'enwiki', 'wiki_00');
  writeFileSync(join(dir, 'wiki_00.gz'), gzipSync(readFileSync(wiki)));
  writeFileSync(join(dir, 'data'), gzipSync('{"text": "json in gzip without extension"}\n'));
  writeFileSync(join(dir, 'book.txt.gz'), gzipSync('\uFEFFA book.\nIn gzip.\n'));
  const files = listCorpusFiles([dir]);
  expect(files.map((f) => [f.path.slice(dir.length + 1), f.format])).toEqual([
    ['book.txt.gz', 'text'],
    ['data', 'jsonl'],
    ['wiki_00.gz', 'wikiextractor'],
  ]);
  const plain = await collect(readWikiExtractor(wiki));
  expect(await collect(readWikiExtractor(join(dir, 'wiki_00.gz')))).toEqual(plain);
  expect(await collect(readDocuments([dir]))).toEqual([
    'A book.\nIn gzip.\n',
    'json in gzip without extension',
    ...plain,
  ]);
  // Bad UTF-8 inside gzip is named by line; a truncated stream and a compressed shard are refused naming the file.
  const bad = join(dir, 'bad.jsonl.gz');
  writeFileSync(
    bad,
    gzipSync(Buffer.concat([Buffer.from('{"text": "a"}\n{"text": "'), Buffer.from([0xff, 0x22, 0x7d])])),
  );
  await expect(collect(readJsonl(bad))).rejects.toThrow(`${bad}:2:11: not valid UTF-8 (byte 0xff)`);
  const cut = join(dir, 'cut.gz');
  const whole = gzipSync(readFileSync(wiki));
  writeFileSync(cut, whole.subarray(0, whole.length - 100));
  await expect(collect(readWikiExtractor(cut))).rejects.toThrow(
    `${cut}: corrupt or truncated gzip data (unexpected end of file)`,
  );
  const shard = join(dir, 'x.bin.gz');
  writeFileSync(shard, gzipSync(Buffer.alloc(1024)));
  expect(() => detectFormat(shard)).toThrow(`${shard}: a compressed llm.c token shard; decompress it (gunzip) first`);
  // readLines (the synchronous reader of GLUE TSV files) refuses gzip rather than reading its bytes as text.
  expect(() => [...readLines(bad)]).toThrow(`${bad}: gzip-compressed; this input is read uncompressed (gunzip it)`);
});

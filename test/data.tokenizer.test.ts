import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { BYTE_ORDER, BYTE_TO_CHAR, symbolsToBytes, textToSymbols } from '../src/data/byte-level.js';
import { gpt2Tokenizer, isGpt2Json, GPT2_EOT_ID } from '../src/data/gpt2-tokenizer.js';
import { HfTokenizer } from '../src/data/hf-tokenizer.js';
import { projectRoot, readWikiExtractor } from '../src/data/corpus.js';
import {
  loadTokenizer,
  maskId,
  MASK_TOKEN,
  paddedVocab,
  saveTokenizer,
  tokenizerForCheckpoint,
  tokenizerFromJson,
} from '../src/data/tokenizer.js';

const shared = join(projectRoot(), '..', 'shared', 'data');
const gpt2 = gpt2Tokenizer();

/** Strings that exercise Unicode and whitespace handling. */
const TRICKY = [
  'hello world',
  'a  b',
  '\n\n\n',
  'trailing spaces   ',
  '   leading',
  'tabs\tand\r\nCRLF\r\n',
  ' \n ',
  'café naïve Ångström façade',
  'Ωμέγα κόσμε',
  'Привет, мир!',
  '日本語のテキストと漢字',
  '中文，标点。',
  '한국어 문장',
  'עברית ومرحبا',
  '😀 emoji 👩‍👩‍👧‍👦 family 🇫🇷 flag 🙂🙃',
  'e\u0301 combining, zero\u200bwidth',
  'nbsp\u00a0here',
  "I'm sure they'll've don't",
  '1234567 3.14159 -42',
  'x'.repeat(300),
  '<|endoftext|> in text',
  '\u0000\u0001 control \u007f',
];

test('GPT-2 ids that are known exactly', async () => {
  expect(await gpt2.encode('hello world')).toEqual([31373, 995]);
  expect(await gpt2.encode('Hello world')).toEqual([15496, 995]);
  expect(await gpt2.encode('Hello, world!')).toEqual([15496, 11, 995, 0]);
  expect(await gpt2.encode('The quick brown fox')).toEqual([464, 2068, 7586, 21831]);
  expect(await gpt2.encode('\n')).toEqual([198]);
  expect(await gpt2.encode('\n\n')).toEqual([628]);
  expect(await gpt2.encode(' ')).toEqual([220]);
  expect(await gpt2.encode('!')).toEqual([0]);
  expect(gpt2.vocabSize).toBe(50257);
  expect(gpt2.eotId).toBe(50256);
});

test('GPT-2 whitespace runs: GPT-2 has no multi-space tokens, so spaces stay single', async () => {
  expect(await gpt2.encode('a  b')).toEqual([64, 220, 275]); // "a", " ", " b"
  expect(await gpt2.encode('\n\n\n')).toEqual([628, 198]);
  expect(await gpt2.encode('x   ')).toEqual([87, 220, 220, 220]);
  expect(await gpt2.encode('    return')).toEqual([220, 220, 220, 1441]);
});

test('<|endoftext|> is one id only when special tokens are asked for', async () => {
  expect(await gpt2.encode('<|endoftext|>', { special: true })).toEqual([50256]);
  // gpt-tokenizer 4.0.0 misses a special token that is not at the start; ours splits first
  expect(await gpt2.encode('a<|endoftext|>b<|endoftext|>', { special: true })).toEqual([64, 50256, 65, 50256]);
  expect(await gpt2.encode('<|endoftext|>')).toEqual([27, 91, 437, 1659, 5239, 91, 29]);
  expect(await gpt2.decode([64, 50256, 65])).toBe('a<|endoftext|>b');
});

test('GPT-2 round-trips tricky text', async () => {
  for (const s of TRICKY) {
    const ids = await gpt2.encode(s);
    expect(await gpt2.decode(ids)).toBe(s);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 50256)).toBe(true);
  }
  // no single token for this emoji: its 4 UTF-8 bytes take several ids
  expect((await gpt2.encode('😀')).length).toBeGreaterThan(1);
});

test('decode of a split character gives U+FFFD and no state leaks into the next call', async () => {
  const ids = await gpt2.encode('😀');
  expect(gpt2.decodeSync(ids.slice(0, 1))).toContain('\ufffd');
  expect(gpt2.decodeSync([31373])).toBe('hello');
  expect(() => gpt2.decodeSync([50258])).toThrow(/outside the vocabulary/);
  expect(gpt2.decodeSync([31373, 50257, 995])).toBe(`hello${MASK_TOKEN} world`);
});

test("byte-level table is GPT-2's: ids 0..255 are the bytes in GPT-2 order", async () => {
  expect(BYTE_ORDER.length).toBe(256);
  expect(new Set(BYTE_ORDER).size).toBe(256);
  expect(BYTE_TO_CHAR[32]).toBe('Ġ');
  expect(BYTE_TO_CHAR[10]).toBe('Ċ');
  expect(symbolsToBytes(textToSymbols('é 😀'))).toEqual(new Uint8Array(Buffer.from('é 😀')));
  expect(BYTE_ORDER.indexOf(32)).toBe(220); // " " is GPT-2 id 220
  expect(BYTE_ORDER.indexOf(10)).toBe(198); // "\n" is 198
  for (const b of [33, 65, 97, 126]) expect(await gpt2.encode(String.fromCharCode(b))).toEqual([BYTE_ORDER.indexOf(b)]);
});

test('mask convention: the first id past the vocabulary, padded to 64', () => {
  expect(maskId(gpt2)).toBe(50257);
  expect(paddedVocab(50257 + 1)).toBe(50304);
  expect(paddedVocab(50257)).toBe(50304);
  expect(paddedVocab(64)).toBe(64);
  expect(paddedVocab(65, 8)).toBe(72);
  expect(() => paddedVocab(0)).toThrow(RangeError);
  expect(() => paddedVocab(10, 0)).toThrow(RangeError);
});

describe('GPT-2 as a Hugging Face tokenizer.json', () => {
  let hf: HfTokenizer;
  let json: string;
  beforeAll(() => {
    json = gpt2.toJSON();
    hf = HfTokenizer.fromJson(json, 'gpt2 tokenizer.json');
  });

  test("has GPT-2's layout: 50,257 ids, 50,000 merges, <|endoftext|> at 50256", () => {
    const doc = JSON.parse(json);
    expect(Object.keys(doc.model.vocab).length).toBe(50257);
    expect(doc.model.merges.length).toBe(50000);
    expect(doc.model.merges[0]).toBe('Ġ t'); // GPT-2's first merge
    expect(doc.model.vocab['Ġt']).toBe(256);
    expect(doc.model.vocab['!']).toBe(0);
    expect(doc.added_tokens).toEqual([expect.objectContaining({ id: 50256, content: '<|endoftext|>', special: true })]);
    expect(hf.vocabSize).toBe(50257);
    expect(hf.eotId).toBe(50256);
  });

  test("Hugging Face's BPE on it gives gpt-tokenizer's ids: tricky strings, Wikipedia, LAMBADA", async () => {
    const texts = [...TRICKY.filter((s) => !s.includes('<|endoftext|>'))];
    let n = 0;
    for await (const doc of readWikiExtractor(join(shared, 'corpus', 'enwiki', 'wiki_03'))) {
      texts.push(doc);
      if (++n === 60) break;
    }
    const lambada = readFileSync(join(shared, 'lambada', 'lambada_test_sample200.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .slice(0, 60);
    for (const line of lambada) texts.push((JSON.parse(line) as { text: string }).text);
    const ours = await gpt2.encodeBatch(texts);
    const theirs = await hf.encodeBatch(texts);
    let tokens = 0;
    for (let i = 0; i < texts.length; i++) {
      expect(theirs[i]).toEqual(ours[i]);
      tokens += ours[i].length;
    }
    expect(tokens).toBeGreaterThan(20000);
    for (const s of TRICKY.slice(0, 8)) expect(await hf.decode(await hf.encode(s))).toBe(s);
    expect(await hf.encode('a<|endoftext|>b')).toEqual([64, 50256, 65]);
  });

  test('is recognised as GPT-2 when loaded (with or without the mask token), others are not', async () => {
    expect(isGpt2Json(json)).toBe(true);
    expect((await tokenizerFromJson(json)).name).toBe('gpt2');
    const masked = gpt2.toJSON({ withMask: true });
    expect(isGpt2Json(masked)).toBe(true);
    const doc = JSON.parse(json);
    [doc.model.merges[100], doc.model.merges[101]] = [doc.model.merges[101], doc.model.merges[100]];
    expect(isGpt2Json(JSON.stringify(doc))).toBe(false);
    expect(isGpt2Json('not json')).toBe(false);
    // the masked file through Hugging Face: mask taken off again, base vocabulary unchanged
    const viaHf = HfTokenizer.fromJson(masked);
    expect(viaHf.vocabSize).toBe(50257);
    expect(await viaHf.decode([31373, 50257])).toBe(`hello${MASK_TOKEN}`);
  });
});

test('loadTokenizer and tokenizerForCheckpoint pick GPT-2, a tokenizer.json, or refuse clearly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-tok-'));
  expect((await loadTokenizer('gpt2')).name).toBe('gpt2');
  expect((await tokenizerForCheckpoint(dir, 50257)).name).toBe('gpt2');
  expect((await tokenizerForCheckpoint(dir, 50304)).name).toBe('gpt2');
  await expect(tokenizerForCheckpoint(dir, 8000)).rejects.toThrow(HlmError);
  await expect(tokenizerForCheckpoint(dir, 8000)).rejects.toThrow(/vocab_size 8000 and no tokenizer\.json/);
  await expect(loadTokenizer(join(dir, 'nope.json'))).rejects.toThrow(/no such file/);
  await expect(loadTokenizer(dir)).rejects.toThrow(/has no tokenizer\.json/);
  writeFileSync(join(dir, 'bad.json'), '{"model": 3}');
  await expect(loadTokenizer(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json: the tokenizers library refused it/);
  writeFileSync(join(dir, 'worse.json'), '{not json');
  await expect(loadTokenizer(join(dir, 'worse.json'))).rejects.toThrow(
    /worse\.json: not a Hugging Face tokenizer\.json/,
  );

  // GPT-2 saved into a checkpoint folder comes back as the fast built-in tokenizer
  const ckpt = join(dir, 'ckpt');
  mkdirSync(ckpt);
  saveTokenizer(gpt2, ckpt, { withMask: true });
  const back = await tokenizerForCheckpoint(ckpt, 50304);
  expect(back.name).toBe('gpt2');
  expect(back.eotId).toBe(GPT2_EOT_ID);
});

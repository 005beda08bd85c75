import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { projectRoot } from '../src/data/corpus.js';
import { MAX_TRAINED_VOCAB, trainBpeTokenizer } from '../src/data/hf-tokenizer.js';
import { loadTokenizer, maskId, MASK_TOKEN, saveTokenizer } from '../src/data/tokenizer.js';
import { BYTE_ORDER } from '../src/data/byte-level.js';

const udhr = join(projectRoot(), '..', 'shared', 'data', 'multilingual', 'udhr');
const LANGS = ['eng', 'fra', 'deu', 'rus', 'ell_monotonic', 'cmn_hans', 'hin', 'arb'].map((l) =>
  join(udhr, `${l}.txt`),
);
const SAMPLES = [
  'Everyone has the right to life, liberty and security of person.',
  'Tous les êtres humains naissent libres et égaux en dignité et en droits.',
  'Все люди рождаются свободными и равными в своем достоинстве и правах.',
  '人人生而自由，在尊严和权利上一律平等。',
  'सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता',
  'unseen: 😀 ﷽ ᚠᛇᚻ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and a  double   space\n\n\n',
  '<|endoftext|>',
];

test('byte-level BPE trained on multilingual text: exact size, all bytes, round trip, save and reload', async () => {
  const t0 = performance.now();
  const tok = await trainBpeTokenizer(LANGS, { vocabSize: 1000 });
  const ms = performance.now() - t0;
  expect(tok.vocabSize).toBe(1000);
  expect(tok.eotId).toBe(999);
  expect(maskId(tok)).toBe(1000);
  expect(tok.specialIds).toEqual([999]);
  const doc = JSON.parse(tok.toJSON());
  expect(Object.keys(doc.model.vocab).length).toBe(1000);
  expect(doc.model.vocab['!']).toBe(0); // bytes first, in GPT-2's order
  expect(doc.model.vocab['Ġ']).toBe(BYTE_ORDER.indexOf(32)); // 220, as in GPT-2
  for (const s of SAMPLES) {
    const ids = await tok.encode(s);
    expect(ids.every((id) => id >= 0 && id < 1000)).toBe(true);
    expect(await tok.decode(ids)).toBe(s);
  }
  // merges learned something: common words are shorter than their bytes
  expect((await tok.encode(SAMPLES[0])).length).toBeLessThan(Buffer.byteLength(SAMPLES[0]) * 0.6);
  expect(await tok.encode('<|endoftext|>')).toEqual([999]);

  const dir = mkdtempSync(join(tmpdir(), 'hlm-bpe-test-'));
  saveTokenizer(tok, dir);
  const back = await loadTokenizer(dir);
  expect(back.fingerprint).toBe(tok.fingerprint);
  expect(back.vocabSize).toBe(1000);
  for (const s of SAMPLES) expect(await back.encode(s)).toEqual(await tok.encode(s));

  // an encoder checkpoint's file carries the mask token; loading takes it off again
  saveTokenizer(tok, dir, { withMask: true });
  const added = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).added_tokens;
  expect(added).toEqual(
    expect.arrayContaining([expect.objectContaining({ id: 1000, content: MASK_TOKEN, special: true })]),
  );
  const masked = await loadTokenizer(dir);
  expect(masked.vocabSize).toBe(1000);
  expect(masked.fingerprint).toBe(tok.fingerprint);
  expect(await masked.decode([...(await tok.encode('Tous')), 1000])).toBe(`Tous${MASK_TOKEN}`);
  expect(ms).toBeLessThan(20000);
});

test('training is deterministic, and a smaller vocabulary is a prefix of a larger one', async () => {
  const a = await trainBpeTokenizer(LANGS.slice(0, 3), { vocabSize: 700 });
  const b = await trainBpeTokenizer(LANGS.slice(0, 3), { vocabSize: 700 });
  expect(a.toJSON()).toBe(b.toJSON());
  const small = JSON.parse((await trainBpeTokenizer(LANGS.slice(0, 3), { vocabSize: 400 })).toJSON()).model;
  const big = JSON.parse(a.toJSON()).model;
  expect(big.merges.slice(0, small.merges.length)).toEqual(small.merges);
  for (const [t, id] of Object.entries(small.vocab as Record<string, number>))
    if (t !== '<|endoftext|>') expect(big.vocab[t]).toBe(id);
});

test('sizes that make no sense, or past the ids the trainer packs, are refused', async () => {
  await expect(trainBpeTokenizer(LANGS.slice(0, 1), { vocabSize: 256 })).rejects.toThrow(HlmError);
  await expect(trainBpeTokenizer(LANGS.slice(0, 1), { vocabSize: 1.5 })).rejects.toThrow(/integer >= 257/);
  expect(MAX_TRAINED_VOCAB).toBe(2 ** 21 + 1);
  await expect(trainBpeTokenizer(LANGS.slice(0, 1), { vocabSize: MAX_TRAINED_VOCAB + 1 })).rejects.toThrow(
    /at most 2097153/,
  );
});

test('a tiny corpus runs out of merges: the vocabulary is smaller than asked, and says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-bpe-tiny-'));
  const file = join(dir, 'tiny.txt');
  writeFileSync(file, 'abab abab abab\n');
  const tok = await trainBpeTokenizer([file], { vocabSize: 5000 });
  expect(tok.vocabSize).toBeLessThan(5000);
  expect(tok.vocabSize).toBeGreaterThan(257);
});

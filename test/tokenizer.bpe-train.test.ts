// The TypeScript BPE trainer against a naive one that recounts every pair before each merge, and
// a vocabulary past the 30,000 tokens the tokenizers binding's own trainer stops at, reached
// exactly, loaded the way `hlm pretrain --tokenizer` loads it and round-tripping text.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BYTE_ORDER, BYTE_TO_CHAR, textToSymbols } from '../src/data/byte-level.js';
import { GPT2_PATTERN, PieceCounts, trainBpe } from '../src/data/bpe-train.js';
import { listCorpusFiles, projectRoot, readFile } from '../src/data/corpus.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { trainTokenizer } from '../src/data/tokenizer-train.js';
import { collect } from './helpers/check.js';

const udhr = join(projectRoot(), '..', 'shared', 'data', 'multilingual', 'udhr');

/** Merges by recounting all pairs each time: the most frequent first, ties to the smaller (id, id). */
function naiveBpe(pieces: Map<string, number>, maxTokens: number): { tokens: string[]; merges: string[] } {
  const tokens = BYTE_ORDER.map((b) => BYTE_TO_CHAR[b]);
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const words = [...pieces].map(([p, n]) => ({ ids: [...Buffer.from(p)].map((b) => BYTE_ORDER.indexOf(b)), n }));
  const merges: string[] = [];
  while (tokens.length < maxTokens) {
    const counts = new Map<string, number>();
    for (const w of words)
      for (let i = 0; i + 1 < w.ids.length; i++) {
        const k = `${w.ids[i]},${w.ids[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + w.n);
      }
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best) break;
    const [a, b] = best;
    const text = tokens[a] + tokens[b];
    let ab = idOf.get(text);
    if (ab === undefined) {
      ab = tokens.length;
      tokens.push(text);
      idOf.set(text, ab);
    }
    merges.push(`${tokens[a]} ${tokens[b]}`);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length;)
        if (i + 1 < w.ids.length && w.ids[i] === a && w.ids[i + 1] === b) {
          out.push(ab);
          i += 2;
        } else out.push(w.ids[i++]);
      w.ids = out;
    }
  }
  return { tokens, merges };
}

function counted(texts: string[]): PieceCounts {
  const p = new PieceCounts();
  for (const t of texts) p.add(t);
  return p;
}

test('runs of one letter and overlapping pairs merge as the naive trainer merges them', () => {
  const texts = [
    'aaaa aaa aa a aaaaa aaaaaaa xaaay aaab abab ababab baba',
    'abc abc abc bcab cab cabc abcabc ab c bc bca',
    'zzz zz zzzz zzzzzz zz zzz zz',
  ];
  const pieces = counted(texts);
  for (const max of [260, 270, 300]) {
    const fast = trainBpe(pieces, max);
    const slow = naiveBpe(pieces.counts, max);
    expect(fast.merges).toEqual(slow.merges);
    expect(fast.tokens).toEqual(slow.tokens);
  }
  // merged until no pair is left: every piece is one token
  const all = trainBpe(pieces, 10_000);
  expect(all.exhausted).toBe(true);
  expect(all.tokens.length).toBeLessThan(10_000);
  for (const piece of pieces.counts.keys()) expect(all.tokens).toContain(textToSymbols(piece));
  expect(new Set(all.tokens).size).toBe(all.tokens.length);
});

test('on real multilingual text the trainer learns the naive trainer’s merges, in order', async () => {
  const docs: string[] = [];
  for (const l of ['eng', 'rus', 'cmn_hans'])
    docs.push(...(await collect(readFile(listCorpusFiles([join(udhr, `${l}.txt`)])[0]))));
  const pieces = counted(docs.map((d) => d.slice(0, 3000)));
  const fast = trainBpe(pieces, 420);
  const slow = naiveBpe(pieces.counts, 420);
  expect(fast.tokens.length).toBe(420);
  expect(fast.merges).toEqual(slow.merges);
  expect(fast.tokens).toEqual(slow.tokens);
});

test('pre-tokenization is GPT-2’s: contractions, letters, numbers, punctuation and whitespace runs', () => {
  const pieces = [..."I'll pay 1999 dollars!!  Now\n\n  ok".matchAll(GPT2_PATTERN)].map((m) => m[0]);
  expect(pieces).toEqual(['I', "'ll", ' pay', ' 1999', ' dollars', '!!', ' ', ' Now', '\n\n ', ' ok']);
});

test('a vocabulary past 30,000 tokens is reached exactly, loads as pretrain loads it, and round-trips', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'hlm-bpe-large-'));
  try {
    const r = await trainTokenizer({ data: [udhr], vocabSize: 40_000, out: scratch, languages: ['eng', 'zho'] });
    expect(r.vocabSize).toBe(40_000);
    expect(r.eotId).toBe(39_999);
    const tok = await loadTokenizer(scratch);
    expect(tok.vocabSize).toBe(40_000);
    expect(tok.eotId).toBe(39_999);
    for (const s of [
      'Everyone has the right to life, liberty and security of person.',
      '人人生而自由，在尊严和权利上一律平等。',
      'Ọmọnìyàn kọ̀ọ̀kan ló ní ẹ̀tọ́ láti wà láàyè',
      'unseen: 😀 ᚠᛇᚻ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢  two  spaces\n\n',
    ]) {
      const ids = await tok.encode(s);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 39_999)).toBe(true);
      expect(await tok.decode(ids)).toBe(s);
    }
    // a large vocabulary covers English in few tokens (about 3 characters a token at 1,200 tokens)
    const { eng } = r.coverage.byLanguage;
    if (!(eng.charsPerToken > 4 && eng.byteFallbackFraction === 0)) throw new Error(`eng ${JSON.stringify(eng)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

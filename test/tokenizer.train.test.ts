// `hlm tokenizer train`: a byte-level BPE trained on a few UDHR translations, written atomically,
// reloaded and measured; refusals; and the command through the built CLI.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { listCorpusFiles, projectRoot, readFile } from '../src/data/corpus.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import {
  dominantScript,
  languageOfFile,
  MIN_TRAINED_VOCAB,
  trainTokenizer,
  type CoverageStats,
  type TrainTokenizerResult,
} from '../src/data/tokenizer-train.js';
import { hlm } from './helpers/cli.js';

const udhr = join(projectRoot(), '..', 'shared', 'data', 'multilingual', 'udhr');
const FILES = ['eng', 'fra', 'rus', 'arb', 'hin', 'cmn_hans', 'jpn', 'kor'].map((l) => join(udhr, `${l}.txt`));
const SAMPLES = [
  'Everyone has the right to life, liberty and security of person.',
  'Tous les êtres humains naissent libres et égaux en dignité et en droits.',
  'Все люди рождаются свободными и равными в своем достоинстве и правах.',
  'يولد جميع الناس أحراراً متساوين في الكرامة والحقوق.',
  'सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता',
  '人人生而自由，在尊严和权利上一律平等。',
  'すべての人間は、生まれながらにして自由であり',
  '모든 인간은 태어날 때부터 자유로우며',
  'unseen: 😀 ᚠᛇᚻ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢  two  spaces\n\n',
];

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'hlm-tok-train-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Every figure finite and consistent; written so that NaN fails. */
function expectSane(s: CoverageStats, label: string): void {
  const fail = (what: string) => {
    throw new Error(`${label}: ${what} in ${JSON.stringify(s)}`);
  };
  if (!(s.documents >= 1 && s.characters >= 1 && s.bytes >= s.characters && s.tokens >= 1)) fail('counts');
  if (!(s.tokens <= s.bytes)) fail('more tokens than bytes');
  if (!(s.charsPerToken > 0 && Math.abs(s.charsPerToken * s.tokensPerChar - 1) < 1e-9)) fail('chars per token');
  if (!(Math.abs(s.bytesPerToken - s.bytes / s.tokens) < 1e-9 && s.bytesPerToken >= 1)) fail('bytes per token');
  for (const f of [s.singleByteFraction, s.byteFallbackFraction, s.splitCharFraction])
    if (!(f >= 0 && f <= 1)) fail('fraction');
  if (!(s.byteFallbackFraction <= s.singleByteFraction)) fail('fallback bytes are single-byte bytes');
}

describe('training on UDHR translations in eight scripts', () => {
  let r: TrainTokenizerResult;
  let ms: number;
  beforeAll(async () => {
    const t0 = performance.now();
    r = await trainTokenizer({ data: FILES, vocabSize: 1200, out: join(scratch, 'multi') });
    ms = performance.now() - t0;
  });

  test('writes <out>/tokenizer.json atomically, with the asked vocabulary', async () => {
    expect(r.path).toBe(join(scratch, 'multi', 'tokenizer.json'));
    expect(readdirSync(join(scratch, 'multi'))).toEqual(['tokenizer.json']); // no temporary file left
    expect(r.vocabSize).toBe(1200);
    expect(r.requestedVocabSize).toBe(1200);
    expect(r.eotId).toBe(1199);
    const tok = await loadTokenizer(r.path);
    expect(tok.vocabSize).toBe(1200);
    expect(tok.eotId).toBe(1199);
    expect(Object.keys(JSON.parse(readFileSync(r.path, 'utf8')).model.vocab).length).toBe(1200);
    if (!(ms < 20000)) throw new Error(`training on ${FILES.length} UDHR files took ${ms} ms`);
  });

  test('the reloaded tokenizer round-trips text in every script, seen or not', async () => {
    const tok = await loadTokenizer(r.path);
    for (const s of SAMPLES) {
      const ids = await tok.encode(s);
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 1200)).toBe(true);
      expect(await tok.decode(ids)).toBe(s);
    }
    expect(await tok.encode('<|endoftext|>')).toEqual([1199]);
  });

  test('corpus counts and coverage figures agree with an independent count', async () => {
    const tok = await loadTokenizer(r.path);
    let docs = 0;
    let chars = 0;
    let bytes = 0;
    let tokens = 0;
    let singleBytes = 0;
    for (const f of listCorpusFiles(FILES)) {
      for await (const text of readFile(f)) {
        const ids = await tok.encode(text);
        docs++;
        chars += [...text].length;
        bytes += Buffer.byteLength(text);
        tokens += ids.length;
        singleBytes += ids.filter((id) => id < 256).length; // ids 0..255 are the single bytes
      }
    }
    expect(r.corpus).toMatchObject({ files: FILES.length, documents: docs, characters: chars, bytes });
    if (!(r.corpus.distinctBytes > 100 && r.corpus.distinctBytes <= 243))
      throw new Error(`distinct bytes ${r.corpus.distinctBytes}`);
    const all = r.coverage.overall;
    expect(all).toMatchObject({ documents: docs, characters: chars, bytes, tokens });
    expect(all.singleByteFraction).toBeCloseTo(singleBytes / bytes, 12);
    expectSane(all, 'overall');
  });

  test('per-language and per-script figures are sane and tell the scripts apart', () => {
    const langs = r.coverage.byLanguage;
    // arb counts as ara, cmn as zho
    expect(Object.keys(langs)).toEqual(['eng', 'fra', 'rus', 'ara', 'hin', 'zho', 'jpn', 'kor']);
    for (const [l, s] of Object.entries(langs)) {
      expectSane(s, l);
      expect(s.files).toBe(1);
    }
    const sum = Object.values(langs).reduce((a, s) => a + s.tokens, 0);
    expect(sum).toBe(r.coverage.overall.tokens);
    // English has no multi-byte characters to fall back on; at 1200 tokens the CJK ones mostly do
    if (!(langs.eng.byteFallbackFraction < 0.001 && langs.eng.charsPerToken > 2.5))
      throw new Error(`eng: ${JSON.stringify(langs.eng)}`);
    if (!(langs.zho.charsPerToken < langs.eng.charsPerToken / 2))
      throw new Error(`zho ${langs.zho.charsPerToken} vs eng ${langs.eng.charsPerToken}`);
    if (!(langs.zho.byteFallbackFraction > 0.1 && langs.zho.splitCharFraction > 0.1))
      throw new Error(`zho: ${JSON.stringify(langs.zho)}`);
    expect(Object.keys(r.coverage.byScript).sort()).toEqual([
      'Arabic',
      'Cyrillic',
      'Devanagari',
      'Han',
      'Hangul',
      'Japanese',
      'Latin',
    ]);
    for (const [script, s] of Object.entries(r.coverage.byScript)) expectSane(s, script);
    expect(r.coverage.byScript.Latin.documents).toBe(2);
    expect(r.coverage.byScript.Japanese.tokens).toBe(langs.jpn.tokens);
    for (const t of Object.values(r.seconds)) if (!(t >= 0)) throw new Error(`seconds ${JSON.stringify(r.seconds)}`);
  });
});

test('languages from file names, scripts from letters', () => {
  expect(languageOfFile('/x/udhr/cmn_hans.txt')).toBe('cmn');
  expect(languageOfFile('/x/udhr/deu_1901.txt')).toBe('deu');
  expect(languageOfFile('tatoeba.fra-eng.fra')).toBe('fra');
  expect(languageOfFile('tatoeba.fra-eng.eng')).toBe('eng');
  expect(languageOfFile('en.jsonl')).toBe('en');
  expect(languageOfFile('wiki_00')).toBeNull();
  expect(languageOfFile('007.txt')).toBeNull();
  expect(dominantScript('Hello, мир')).toBe('Latin');
  expect(dominantScript('Привет, world')).toBe('Cyrillic');
  expect(dominantScript('人人生而自由')).toBe('Han');
  expect(dominantScript('すべての人間は')).toBe('Japanese');
  expect(dominantScript('1234 !?')).toBe('None');
});

describe('refusals are one clear HlmError, before any training or writing', () => {
  const eng = join(udhr, 'eng.txt');
  const refuse = async (options: Parameters<typeof trainTokenizer>[0], message: RegExp) => {
    const t0 = performance.now();
    const err = await trainTokenizer(options).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HlmError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
    if (!(performance.now() - t0 < 3000)) throw new Error('refused only after training');
  };

  test('a missing path names it', async () => {
    const out = join(scratch, 'never');
    await refuse(
      { data: [eng, join(scratch, 'no-such-corpus')], vocabSize: 500, out },
      /--data .*no-such-corpus: no such file or directory/,
    );
    expect(existsSync(out)).toBe(false);
  });

  test('an empty corpus', async () => {
    const dir = join(scratch, 'empty');
    mkdirSync(dir);
    writeFileSync(join(dir, 'blank.txt'), ' \n\n \n');
    await refuse({ data: [dir], vocabSize: 500, out: join(scratch, 'never') }, /empty corpus: no text in .*blank\.txt/);
    const none = join(scratch, 'nofiles');
    mkdirSync(none);
    await refuse({ data: [none], vocabSize: 500, out: join(scratch, 'never') }, /no corpus files/);
  });

  test('vocabulary sizes below the bytes and end-of-text, or past the largest token id', async () => {
    expect(MIN_TRAINED_VOCAB).toBe(257);
    await refuse(
      { data: [eng], vocabSize: 256, out: join(scratch, 'never') },
      /--vocab-size 256: .*at least 257: the 256 single bytes .* and <\|endoftext\|>/,
    );
    await refuse(
      { data: [eng], vocabSize: 2 ** 21 + 2, out: join(scratch, 'never') },
      /--vocab-size 2097154: at most 2097153 tokens/,
    );
  });

  test('an --out that exists as something else', async () => {
    const file = join(scratch, 'notes.txt');
    writeFileSync(file, 'keep me');
    await refuse({ data: [eng], vocabSize: 500, out: file }, /--out .*notes\.txt exists as a file that is not \.json/);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    await refuse(
      { data: [eng], vocabSize: 500, out: '/dev/null' },
      /--out \/dev\/null exists but is neither a directory nor a regular file/,
    );
    await refuse(
      { data: [eng], vocabSize: 500, out: join(file, 'sub', 'tok.json') },
      /notes\.txt is a file, not a directory/,
    );
  });
});

test('a .json --out is written as that file, replacing an older one, with no temporary file left', async () => {
  const dir = join(scratch, 'asfile', 'deeper');
  const path = join(dir, 'my-tokenizer.json');
  const a = await trainTokenizer({ data: [join(udhr, 'eng.txt')], vocabSize: 300, out: path, languages: [] });
  expect(a.path).toBe(path);
  expect(a.coverage.byLanguage).toEqual({});
  const b = await trainTokenizer({ data: [join(udhr, 'deu.txt')], vocabSize: 320, out: path });
  expect(b.vocabSize).toBe(320);
  expect(readdirSync(dir)).toEqual(['my-tokenizer.json']);
  expect((await loadTokenizer(path)).vocabSize).toBe(320);
});

describe('the CLI', () => {
  test('hlm --help lists the tokenizer topic; tokenizer train --help shows its flags and examples', () => {
    const top = hlm(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/TOPICS[\s\S]*tokenizer\s+\S/);
    const help = hlm(['tokenizer', 'train', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--vocab-size/);
    expect(help.stdout).toMatch(/EXAMPLES[\s\S]*\$ hlm tokenizer train --data/);
  });

  test('hlm tokenizer train --json prints the result as JSON and exits 0', async () => {
    const out = join(scratch, 'cli');
    const r = hlm([
      'tokenizer',
      'train',
      '--data',
      join(udhr, 'eng.txt'),
      join(udhr, 'rus.txt'),
      '--vocab-size',
      '500',
      '--out',
      out,
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    const res = JSON.parse(r.stdout) as TrainTokenizerResult;
    expect(res).toMatchObject({
      path: join(out, 'tokenizer.json'),
      vocabSize: 500,
      requestedVocabSize: 500,
      eotId: 499,
    });
    expect(res.corpus).toMatchObject({ files: 2, documents: 2 });
    expectSane(res.coverage.overall, 'cli overall');
    expect(Object.keys(res.coverage.byLanguage)).toEqual(['eng', 'rus']);
    expect((await loadTokenizer(out)).vocabSize).toBe(500);
  });

  test('a missing --data path exits 1 and names the path', () => {
    const missing = join(scratch, 'there-is-no-such-corpus');
    const r = hlm([
      'tokenizer',
      'train',
      '--data',
      missing,
      '--vocab-size',
      '500',
      '--out',
      join(scratch, 'cli-missing'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`hlm: --data ${missing}: no such file or directory`);
    expect(r.stdout).toBe('');
    expect(existsSync(join(scratch, 'cli-missing'))).toBe(false);
  });
});

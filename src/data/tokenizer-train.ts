// `hlm tokenizer train`: a byte-level BPE tokenizer trained on a corpus (trainBpeTokenizer), written
// atomically as a Hugging Face tokenizer.json, and measured on the same corpus with the figures
// that matter for a multilingual vocabulary:
//   - characters per token (and tokens per character, bytes per token), overall, per language
//     (from the file names: UDHR's `eng.txt`, `cmn_hans.txt`; Tatoeba's `tatoeba.fra-eng.fra`) and
//     per script (the dominant script of each document's letters);
//   - how much of the text the vocabulary covers only byte by byte: the bytes encoded by
//     single-byte tokens, the bytes of multi-byte characters among them (byte fallback proper),
//     and the non-ASCII characters whose bytes end up split over several tokens.
// Characters are Unicode code points; bytes are UTF-8 bytes.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkOutputFile } from '../util/output-check.js';
import { log } from '../log.js';
import { readFile, listCorpusFiles, type CorpusFile } from './corpus.js';
import { MAX_TRAINED_VOCAB, TRAINED_EOT, trainBpeTokenizer, type HfTokenizer } from './hf-tokenizer.js';
import { CHAR_TO_BYTE } from './byte-level.js';

/** Smallest vocabulary: the 256 single bytes (so any text encodes) and the end-of-text token. */
export const MIN_TRAINED_VOCAB = 256 + 1;

/** Languages reported by default, where the corpus has files for them. */
export const DEFAULT_LANGUAGES = [
  'eng',
  'fra',
  'deu',
  'spa',
  'rus',
  'ell',
  'ara',
  'heb',
  'hin',
  'ben',
  'tha',
  'zho',
  'jpn',
  'kor',
] as const;

/** File-name codes that count as a reported language (ISO 639-3 macrolanguages and their members). */
const LANGUAGE_ALIASES: Record<string, readonly string[]> = {
  ara: ['ara', 'arb'],
  zho: ['zho', 'cmn', 'chi'],
  cmn: ['cmn', 'zho', 'chi'],
  fas: ['fas', 'pes', 'per'],
  pes: ['pes', 'fas', 'per'],
  msa: ['msa', 'zsm', 'may'],
  zsm: ['zsm', 'msa', 'may'],
  ell: ['ell', 'gre'],
  deu: ['deu', 'ger'],
  fra: ['fra', 'fre'],
};

/** Extensions that are formats, not language codes. */
const FORMAT_EXTENSIONS = new Set(['txt', 'text', 'json', 'jsonl', 'ndjson', 'xml', 'csv', 'tsv', 'md']);

/**
 * The language code a corpus file's name carries, lower case, or null: Tatoeba's
 * `tatoeba.fra-eng.fra` → 'fra' (the last extension when it is 2–3 letters and not a format),
 * UDHR's `cmn_hans.txt` → 'cmn' (the name up to the first '_', '-' or '.').
 */
export function languageOfFile(path: string): string | null {
  const name = basename(path).toLowerCase();
  const ext = extname(name).slice(1);
  if (/^[a-z]{2,3}$/.test(ext) && !FORMAT_EXTENSIONS.has(ext)) return ext;
  const stem = name.split(/[_.-]/)[0];
  return /^[a-z]{2,3}$/.test(stem) ? stem : null;
}

/** Scripts told apart per document; Japanese is Han mixed with kana, counted as one. */
const SCRIPTS = [
  'Latin',
  'Cyrillic',
  'Greek',
  'Arabic',
  'Hebrew',
  'Devanagari',
  'Bengali',
  'Tamil',
  'Thai',
  'Georgian',
  'Armenian',
  'Ethiopic',
  'Hangul',
  'Han',
  'Kana',
] as const;
const SCRIPT_RE = new RegExp(
  SCRIPTS.map((s) => (s === 'Kana' ? '([\\p{sc=Hiragana}\\p{sc=Katakana}])' : `(\\p{sc=${s}})`)).join('|') +
    '|(\\p{L})',
  'gu',
);

/**
 * The script most of a document's letters are written in (from its first 4,000 UTF-16 units):
 * one of SCRIPTS, 'Japanese' when a tenth or more of the letters are kana, 'Other' for other
 * letters, 'None' without letters.
 */
export function dominantScript(text: string): string {
  const counts = new Array<number>(SCRIPTS.length + 1).fill(0);
  let letters = 0;
  for (const m of text.slice(0, 4000).matchAll(SCRIPT_RE)) {
    letters++;
    for (let g = 1; g <= SCRIPTS.length + 1; g++)
      if (m[g] !== undefined) {
        counts[g - 1]++;
        break;
      }
  }
  if (letters === 0) return 'None';
  if (counts[SCRIPTS.indexOf('Kana')] >= 0.1 * letters) return 'Japanese';
  let best = 0;
  for (let i = 1; i < counts.length; i++) if (counts[i] > counts[best]) best = i;
  return best === SCRIPTS.length ? 'Other' : SCRIPTS[best];
}

/** How a tokenizer covers some text. Fractions are in [0, 1]. */
export interface CoverageStats {
  documents: number;
  /** Unicode code points. */
  characters: number;
  /** UTF-8 bytes. */
  bytes: number;
  tokens: number;
  charsPerToken: number;
  tokensPerChar: number;
  bytesPerToken: number;
  /** Bytes encoded by single-byte tokens (ids 0..255, ASCII included), over all bytes. */
  singleByteFraction: number;
  /** Byte fallback: bytes of multi-byte characters encoded as single-byte tokens, over all bytes. */
  byteFallbackFraction: number;
  /**
   * Non-ASCII characters whose bytes are split over two or more tokens, over the non-ASCII characters (0 when none).
   */
  splitCharFraction: number;
}

/** Running sums behind CoverageStats. */
class Tally {
  documents = 0;
  characters = 0;
  bytes = 0;
  tokens = 0;
  singleByteBytes = 0;
  fallbackBytes = 0;
  nonAsciiChars = 0;
  splitChars = 0;

  add(o: Tally): void {
    this.documents += o.documents;
    this.characters += o.characters;
    this.bytes += o.bytes;
    this.tokens += o.tokens;
    this.singleByteBytes += o.singleByteBytes;
    this.fallbackBytes += o.fallbackBytes;
    this.nonAsciiChars += o.nonAsciiChars;
    this.splitChars += o.splitChars;
  }

  stats(): CoverageStats {
    return {
      documents: this.documents,
      characters: this.characters,
      bytes: this.bytes,
      tokens: this.tokens,
      charsPerToken: this.characters / this.tokens,
      tokensPerChar: this.tokens / this.characters,
      bytesPerToken: this.bytes / this.tokens,
      singleByteFraction: this.singleByteBytes / this.bytes,
      byteFallbackFraction: this.fallbackBytes / this.bytes,
      splitCharFraction: this.nonAsciiChars === 0 ? 0 : this.splitChars / this.nonAsciiChars,
    };
  }
}

/** Byte length of every token id of a byte-level BPE tokenizer.json (added tokens: their text's UTF-8 length). */
export function tokenByteLengths(json: string): Uint32Array {
  const doc = JSON.parse(json) as {
    model: { vocab: Record<string, number> };
    added_tokens?: { id: number; content: string }[];
  };
  let size = 0;
  for (const id of Object.values(doc.model.vocab)) size = Math.max(size, id + 1);
  for (const t of doc.added_tokens ?? []) size = Math.max(size, t.id + 1);
  const lengths = new Uint32Array(size);
  for (const [token, id] of Object.entries(doc.model.vocab)) {
    for (const ch of token)
      if (!CHAR_TO_BYTE.has(ch)) throw new Error(`token ${JSON.stringify(token)} is not in the byte-level alphabet`);
    lengths[id] = token.length; // one byte-level character (one UTF-16 unit, all below U+0180) per byte
  }
  for (const t of doc.added_tokens ?? []) lengths[t.id] = Buffer.byteLength(t.content);
  return lengths;
}

/** Adds one document and its token ids to `tally`. */
function tallyDocument(tally: Tally, text: string, ids: readonly number[], lengths: Uint32Array): void {
  const bytes = Buffer.from(text, 'utf8');
  let chars = 0;
  let nonAscii = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if ((b & 0xc0) !== 0x80) {
      chars++;
      if (b >= 0xc0) nonAscii++;
    }
  }
  let pos = 0;
  let singles = 0;
  let fallback = 0;
  let split = 0;
  let lastSplit = -1;
  for (const id of ids) {
    if (pos > 0 && pos < bytes.length && (bytes[pos] & 0xc0) === 0x80) {
      // this token starts inside a character: that character is split (count it once)
      let start = pos;
      while ((bytes[start] & 0xc0) === 0x80) start--;
      if (start !== lastSplit) {
        split++;
        lastSplit = start;
      }
    }
    const n = lengths[id];
    if (n === 1) {
      singles++;
      if (bytes[pos] >= 0x80) fallback++;
    }
    pos += n;
  }
  if (pos !== bytes.length) throw new Error(`token byte lengths add up to ${pos}, the text has ${bytes.length} bytes`);
  tally.documents++;
  tally.characters += chars;
  tally.bytes += bytes.length;
  tally.tokens += ids.length;
  tally.singleByteBytes += singles;
  tally.fallbackBytes += fallback;
  tally.nonAsciiChars += nonAscii;
  tally.splitChars += split;
}

export interface CoverageReport {
  overall: CoverageStats;
  /** Per requested language present in the corpus (in the order asked), with its number of files. */
  byLanguage: Record<string, CoverageStats & { files: number }>;
  /** Per dominant script of the documents, most characters first. */
  byScript: Record<string, CoverageStats>;
}

/** Encodes every document of `files` and measures the coverage (documents are encoded in batches of about 4 MB). */
export async function measureCoverage(
  tokenizer: HfTokenizer,
  files: readonly CorpusFile[],
  languages: readonly string[] = DEFAULT_LANGUAGES,
): Promise<CoverageReport> {
  const lengths = tokenByteLengths(tokenizer.toJSON());
  const overall = new Tally();
  const perLanguage = new Map<string, { tally: Tally; files: number }>();
  const perScript = new Map<string, Tally>();
  const codes = languages.map((l) => ({
    label: l,
    codes: new Set(LANGUAGE_ALIASES[l.toLowerCase()] ?? [l.toLowerCase()]),
  }));
  let batch: { text: string; tallies: Tally[] }[] = [];
  let batchChars = 0;
  const flush = async () => {
    const ids = await tokenizer.encodeBatch(batch.map((d) => d.text));
    batch.forEach((d, i) => {
      const t = new Tally();
      tallyDocument(t, d.text, ids[i], lengths);
      for (const into of d.tallies) into.add(t);
    });
    batch = [];
    batchChars = 0;
  };
  for (const file of files) {
    const code = languageOfFile(file.path);
    const language = code === null ? undefined : codes.find((c) => c.codes.has(code))?.label;
    if (language !== undefined) {
      const entry = perLanguage.get(language) ?? { tally: new Tally(), files: 0 };
      entry.files++;
      perLanguage.set(language, entry);
    }
    for await (const text of readFile(file)) {
      const script = dominantScript(text);
      if (!perScript.has(script)) perScript.set(script, new Tally());
      const tallies = [overall, perScript.get(script) as Tally];
      if (language !== undefined) tallies.push((perLanguage.get(language) as { tally: Tally }).tally);
      batch.push({ text, tallies });
      batchChars += text.length;
      if (batchChars >= 4_000_000) await flush();
    }
  }
  if (batch.length) await flush();
  const byLanguage: CoverageReport['byLanguage'] = {};
  for (const { label } of codes) {
    const entry = perLanguage.get(label);
    if (entry) byLanguage[label] = { ...entry.tally.stats(), files: entry.files };
  }
  const byScript: CoverageReport['byScript'] = {};
  for (const [script, tally] of [...perScript].sort((a, b) => b[1].characters - a[1].characters))
    byScript[script] = tally.stats();
  return { overall: overall.stats(), byLanguage, byScript };
}

/**
 * Where `out` puts the tokenizer: `<out>/tokenizer.json` when out is a directory or names none
 * yet without a .json extension, else `out` itself. Checked before any work is done; nothing is
 * created here.
 */
export function resolveTokenizerOut(out: string): string {
  const path = resolve(out);
  let file: string;
  if (existsSync(path)) {
    const st = statSync(path);
    if (st.isDirectory()) file = join(path, 'tokenizer.json');
    else if (st.isFile()) {
      if (extname(path).toLowerCase() !== '.json') {
        throw new HlmError(
          `--out ${out} exists as a file that is not .json: give a directory (tokenizer.json goes inside) or a file ` +
            `path ending in .json`,
        );
      }
      file = path;
    } else throw new HlmError(`--out ${out} exists but is neither a directory nor a regular file`);
  } else file = extname(path).toLowerCase() === '.json' ? path : join(path, 'tokenizer.json');
  if (existsSync(file) && !statSync(file).isFile())
    throw new HlmError(`--out ${out}: ${file} exists and is not a regular file`);
  // the nearest existing ancestor must be a directory we can create the rest in
  let dir = dirname(file);
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) throw new HlmError(`--out ${out}: ${dir} is a file, not a directory`);
  return file;
}

export interface TrainTokenizerOptions {
  /** Text files or directories (plain text, WikiExtractor, JSONL). */
  data: readonly string[];
  /** Tokens wanted, counting the 256 bytes and the end-of-text token. */
  vocabSize: number;
  /** A directory (tokenizer.json goes inside) or a .json file path. */
  out: string;
  /** Languages (file-name codes such as eng, fra, zho) to report coverage for, where the corpus has them. */
  languages?: readonly string[];
}

export interface TrainTokenizerResult {
  /** The tokenizer.json written. */
  path: string;
  /** Tokens reached (smaller than asked when the corpus runs out of pairs to merge). */
  vocabSize: number;
  requestedVocabSize: number;
  eotId: number;
  eotToken: string;
  corpus: { files: number; documents: number; characters: number; bytes: number; distinctBytes: number };
  /** Coverage of the training corpus by the trained tokenizer. */
  coverage: CoverageReport;
  seconds: { read: number; train: number; measure: number; total: number };
}

/** Reads the corpus once: its size, and which byte values its text uses. */
async function surveyCorpus(files: readonly CorpusFile[]): Promise<TrainTokenizerResult['corpus']> {
  const seen = new Uint8Array(256);
  let documents = 0;
  let characters = 0;
  let bytes = 0;
  for (const file of files) {
    for await (const text of readFile(file)) {
      const b = Buffer.from(text, 'utf8');
      documents++;
      bytes += b.length;
      for (let i = 0; i < b.length; i++) {
        seen[b[i]] = 1;
        if ((b[i] & 0xc0) !== 0x80) characters++;
      }
    }
  }
  if (documents === 0) {
    const names = files.map((f) => f.path);
    throw new HlmError(
      `empty corpus: no text in ` +
        `${names.slice(0, 5).join(', ')}${names.length > 5 ? `, … (${names.length} files)` : ''}`,
    );
  }
  return { files: files.length, documents, characters, bytes, distinctBytes: seen.reduce((a, b) => a + b, 0) };
}

/**
 * Trains, writes and measures a byte-level BPE tokenizer; every user mistake is an HlmError, raised before training
 * where it can be.
 */
export async function trainTokenizer(options: TrainTokenizerOptions): Promise<TrainTokenizerResult> {
  const { vocabSize } = options;
  const t0 = performance.now();
  if (!(Number.isInteger(vocabSize) && vocabSize >= MIN_TRAINED_VOCAB)) {
    throw new HlmError(
      `--vocab-size ${vocabSize}: a byte-level BPE vocabulary needs an integer of at least ${MIN_TRAINED_VOCAB}: ` +
        `the 256 single bytes (so that any text encodes) and ${TRAINED_EOT}`,
    );
  }
  if (vocabSize > MAX_TRAINED_VOCAB) {
    throw new HlmError(`--vocab-size ${vocabSize}: at most ${MAX_TRAINED_VOCAB} tokens (token ids below 2^21)`);
  }
  const path = resolveTokenizerOut(options.out);
  checkOutputFile(path, 'tokenizer', { createsParents: true });
  const files = listCorpusFiles(options.data);
  const corpus = await surveyCorpus(files);
  const t1 = performance.now();
  log.info(
    `tokenizer train: ${corpus.files} files, ${corpus.documents} documents, ${corpus.characters} characters; ` +
      `training ${vocabSize} tokens`,
  );
  const tokenizer = await trainBpeTokenizer(files, { vocabSize });
  const t2 = performance.now();
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw new HlmError(`cannot create ${dirname(path)}: ${(err as Error).message}`);
  }
  writeFileAtomic(path, tokenizer.toJSON(), 'tokenizer');
  log.info(
    `tokenizer train: ${tokenizer.vocabSize} tokens in ${((t2 - t1) / 1000).toFixed(1)} s, written to ${path}; ` +
      `measuring coverage`,
  );
  const coverage = await measureCoverage(tokenizer, files, options.languages ?? DEFAULT_LANGUAGES);
  const missing = (options.languages ?? []).filter((l) => !(l in coverage.byLanguage));
  if (missing.length)
    log.warn(
      `tokenizer train: no corpus file names a language ${missing.join(', ')} (as in eng.txt or tatoeba.fra-eng.fra)`,
    );
  const t3 = performance.now();
  return {
    path,
    vocabSize: tokenizer.vocabSize,
    requestedVocabSize: vocabSize,
    eotId: tokenizer.eotId,
    eotToken: TRAINED_EOT,
    corpus,
    coverage,
    seconds: { read: (t1 - t0) / 1000, train: (t2 - t1) / 1000, measure: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
  };
}

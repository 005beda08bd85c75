// Word-embedding files in and out: word2vec text (header "V d"; fastText's .vec is the same), GloVe
// text (no header) and word2vec binary (header line, then per word "word " and d little-endian f32).
// NumPy `.npy` (float32 little-endian, C order, 2-D; written as format 1.0, read 1.x–3.x, <f8
// converted) with the words in a vocabulary file, one per line, by default next to it: X.npy ↔ X.vocab.
// Readers stream, plain or gzip (GoogleNews-vectors-negative300.bin.gz, glove.840B.300d.txt, …):
// rows past --max-vocab are never read, rows whose word is not kept are read past, and memory
// holds only the kept rows. Errors name the file and the line (or word index for binary).
import { isUtf8 } from 'node:buffer';
import { HlmError } from '../errors.js';
import { streamLines } from '../data/corpus.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { ByteReader, innerName, readChunks, readHead } from '../util/read-stream.js';

export type EmbeddingFormat = 'word2vec' | 'glove' | 'word2vec-bin' | 'npy';
export const EMBEDDING_FORMATS: readonly EmbeddingFormat[] = ['word2vec', 'glove', 'word2vec-bin', 'npy'];

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** The vocabulary file that goes with an .npy file: X.npy → X.vocab (X.npy.gz too). */
export function vocabPathFor(npyPath: string): string {
  return npyPath.replace(/\.npy(\.gz)?$/i, '') + '.vocab';
}

export interface Embeddings {
  words: string[];
  dim: number;
  /** words.length × dim, row-major. */
  vectors: Float32Array;
  format: EmbeddingFormat;
}

/**
 * The format of a file from its name (without .gz) and first bytes (decompressed): `.npy` (or the NumPy magic) is npy;
 * `.bin` is word2vec binary; a first line of two integers is word2vec text; otherwise GloVe.
 */
export function detectFormat(path: string, head: Buffer): EmbeddingFormat {
  const name = innerName(path);
  if (/\.npy$/i.test(name) || (head.length >= 6 && head.subarray(0, 6).equals(NPY_MAGIC))) return 'npy';
  if (/\.bin$/i.test(name)) return 'word2vec-bin';
  const nl = head.indexOf(0x0a);
  const first = head
    .subarray(0, nl < 0 ? head.length : nl)
    .toString('utf8')
    .trim();
  return /^\d+\s+\d+$/.test(first) ? 'word2vec' : 'glove';
}

function parseHeader(path: string, line: string): [number, number] {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(line);
  if (!m || !(Number(m[1]) >= 1 && Number(m[2]) >= 1 && Number.isSafeInteger(Number(m[1])) && Number(m[2]) <= MAX_DIM))
    throw new HlmError(
      `${path}:1: word2vec header must be "<words> <dimensions>" (two positive integers, at most ${MAX_DIM} ` +
        `dimensions), got "${line.slice(0, 80)}"`,
    );
  return [Number(m[1]), Number(m[2])];
}

/** More dimensions than any embedding has; a header beyond it is corrupt (and would ask for huge rows). */
const MAX_DIM = 1 << 16;

/** A word2vec binary word longer than this has no separating space: the file is not word2vec binary. */
const MAX_WORD_BYTES = 1 << 16;

export interface ReadEmbeddingsOptions {
  /** Vocabulary file for .npy input (default: vocabPathFor(path)). */
  vocab?: string;
  /** Read only the first N rows (embedding files list the most frequent words first). */
  maxVocab?: number;
  /** Keep only the rows whose word passes: the others are read past, never stored or checked further. */
  keep?: (word: string) => boolean;
}

/** What a reader returns: the kept rows, and how many rows it read. */
export interface ReadEmbeddings extends Embeddings {
  /** Rows read from the file (kept or not; at most maxVocab). */
  rows: number;
}

/** The kept rows, gathered in blocks so that memory follows what is kept, not what the file declares. */
class KeptRows {
  readonly words: string[] = [];
  private readonly blocks: Float32Array[] = [];
  private readonly first = new Map<string, string>();
  private readonly blockRows: number;

  constructor(
    private readonly path: string,
    readonly dim: number,
  ) {
    // blocks of about 16 MiB
    this.blockRows = Math.max(1, Math.floor((1 << 22) / dim));
  }

  /** The row to fill for `word`; `at` ("line 7", "word 7", "row 7") names the row in a duplicate's message. */
  add(word: string, at: string): Float32Array {
    const before = this.first.get(word);
    if (before !== undefined) {
      const where = at.startsWith('line ') ? `${this.path}:${at.slice(5)}` : `${this.path}: ${at}`;
      throw new HlmError(`${where}: duplicate word "${word.slice(0, 80)}" (first on ${before})`);
    }
    this.first.set(word, at);
    const r = this.words.length % this.blockRows;
    if (r === 0) this.blocks.push(new Float32Array(this.blockRows * this.dim));
    this.words.push(word);
    return this.blocks[this.blocks.length - 1].subarray(r * this.dim, (r + 1) * this.dim);
  }

  /** The rows as one array (each block is released once copied). */
  vectors(): Float32Array {
    const out = new Float32Array(this.words.length * this.dim);
    const per = this.blockRows * this.dim;
    for (let b = 0; b < this.blocks.length; b++)
      out.set(this.blocks[b].subarray(0, Math.min(per, out.length - b * per)), b * per);
    this.blocks.length = 0;
    return out;
  }
}

function finish(kept: KeptRows | undefined, path: string, format: EmbeddingFormat, rows: number): ReadEmbeddings {
  if (!kept || rows === 0) throw new HlmError(`${path}: no vectors`);
  return { words: kept.words, dim: kept.dim, vectors: kept.vectors(), format, rows };
}

/** The first field of a trimmed text row. */
const FIRST_FIELD = /^[^ \t]+/;

async function readText(path: string, format: 'word2vec' | 'glove', o: ReadEmbeddingsOptions): Promise<ReadEmbeddings> {
  const limit = o.maxVocab ?? Infinity;
  let expected = -1;
  let dim = -1;
  let rows = 0;
  let kept: KeptRows | undefined;
  for await (const { line, lineNo } of streamLines(path, 'embeddings')) {
    if (format === 'word2vec' && lineNo === 1) {
      [expected, dim] = parseHeader(path, line);
      continue;
    }
    const row = line.trim();
    if (row === '') continue;
    if (rows >= limit) break;
    const where = `${path}:${lineNo}`;
    if (dim < 0) {
      dim = row.split(/[ \t]+/).length - 1;
      if (dim < 1) throw new HlmError(`${where}: a line needs a word and at least one number`);
      if (dim > MAX_DIM) throw new HlmError(`${where}: ${dim} values, more than the ${MAX_DIM} dimensions read`);
    }
    if (format === 'word2vec' && rows >= expected)
      throw new HlmError(`${where}: more rows than the ${expected} the header announces`);
    rows++;
    // A word of a frequency list never holds a space: a row whose first field is not kept is not parsed further.
    const first = FIRST_FIELD.exec(row)![0];
    if (o.keep && !o.keep(first)) continue;
    const parts = row.split(/[ \t]+/);
    if (parts.length - 1 < dim)
      throw new HlmError(`${where}: "${first}" has ${parts.length - 1} values, expected ${dim}`);
    // More fields than 1 + dim: the word has spaces (GloVe 840B has a few, such as ". . .").
    const word = parts.length - 1 === dim ? first : parts.slice(0, parts.length - dim).join(' ');
    if (o.keep && word !== first && !o.keep(word)) continue;
    kept ??= new KeptRows(path, dim);
    const v = kept.add(word, `line ${lineNo}`);
    for (let c = 0, at = parts.length - dim; c < dim; c++) {
      const x = Number(parts[at + c]);
      if (!Number.isFinite(x))
        throw new HlmError(
          `${where}: value ${c + 1} of "${word}" is not a finite number: "${parts[at + c].slice(0, 40)}"`,
        );
      v[c] = x;
    }
  }
  if (format === 'word2vec' && expected < 0) throw new HlmError(`${path}:1: word2vec header missing (empty file)`);
  if (format === 'word2vec' && rows < Math.min(expected, limit))
    throw new HlmError(`${path}: header announces ${expected} words, the file has ${rows}`);
  return finish(kept ?? (rows ? new KeptRows(path, dim) : undefined), path, format, rows);
}

async function readBinary(path: string, o: ReadEmbeddingsOptions): Promise<ReadEmbeddings> {
  const r = new ByteReader(readChunks(path, 'embeddings'));
  try {
    await r.fill(1024);
    let nl = r.buf.indexOf(0x0a, r.pos);
    if (nl < 0 && (await r.fill(r.available + 1))) nl = r.buf.indexOf(0x0a, r.pos);
    if (nl < 0) throw new HlmError(`${path}:1: word2vec binary header line missing`);
    const [n, dim] = parseHeader(path, r.buf.toString('latin1', r.pos, nl).replace(/\r$/, ''));
    r.pos = nl + 1;
    const total = Math.min(n, o.maxVocab ?? Infinity);
    const bytes = dim * 4;
    const kept = new KeptRows(path, dim);
    const row = new Float32Array(dim);
    const rowBytes = new Uint8Array(row.buffer);
    let i = 0;
    for (; i < total; i++) {
      const where = `word ${i + 1} of ${n}`;
      // Separators: word2vec writes '\n' after each vector, some writers nothing or a space.
      for (;;) {
        if (r.available === 0 && !(await r.fill(1))) break;
        const c = r.buf[r.pos];
        if (c !== 0x0a && c !== 0x20) break;
        r.pos++;
      }
      let sp = r.buf.indexOf(0x20, r.pos);
      while (sp < 0 && r.available < MAX_WORD_BYTES && (await r.fill(r.available + 1))) sp = r.buf.indexOf(0x20, r.pos);
      if (sp < 0) {
        if (r.available === 0) throw new HlmError(`${path}: ${where}: file ends early (byte ${r.at})`);
        throw new HlmError(`${path}: ${where}: no space after the word within ${MAX_WORD_BYTES} bytes (byte ${r.at})`);
      }
      const wordBytes = r.buf.subarray(r.pos, sp);
      if (!isUtf8(wordBytes)) throw new HlmError(`${path}: ${where}: the word is not valid UTF-8 (byte ${r.at})`);
      const word = wordBytes.toString('utf8');
      r.pos = sp + 1;
      if (r.available < bytes && !(await r.fill(bytes)))
        throw new HlmError(`${path}: ${where} ("${word}"): file ends inside its vector`);
      if (!o.keep || o.keep(word)) {
        rowBytes.set(r.buf.subarray(r.pos, r.pos + bytes));
        for (let c = 0; c < dim; c++)
          if (!Number.isFinite(row[c]))
            throw new HlmError(`${path}: ${where} ("${word}"): value ${c + 1} is not finite`);
        kept.add(word, `word ${i + 1}`).set(row);
      }
      r.pos += bytes;
    }
    return finish(kept, path, 'word2vec-bin', i);
  } finally {
    await r.close();
  }
}

interface NpyHeader {
  rows: number;
  cols: number;
  /** Bytes per value: 4 (<f4) or 8 (<f8). */
  size: 4 | 8;
  /** Where the data starts. */
  offset: number;
}

/** The header of an .npy file from its first bytes; `null` when `buf` ends before the header does. */
function parseNpyHeader(path: string, buf: Buffer, complete: boolean): NpyHeader | null {
  if (buf.length < 10 && !complete) return null;
  if (buf.length < 10 || !buf.subarray(0, 6).equals(NPY_MAGIC))
    throw new HlmError(`${path}: not an .npy file (no \\x93NUMPY magic)`);
  const major = buf[6];
  if (major < 1 || major > 3) throw new HlmError(`${path}: unsupported .npy format version ${major}.${buf[7]}`);
  if (major > 1 && buf.length < 12) {
    if (!complete) return null;
    throw new HlmError(`${path}: .npy header runs past the end of the file`);
  }
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (hlen > MAX_NPY_HEADER) throw new HlmError(`${path}: .npy header of ${hlen} bytes (at most ${MAX_NPY_HEADER})`);
  if (start + hlen > buf.length) {
    if (!complete) return null;
    throw new HlmError(`${path}: .npy header runs past the end of the file`);
  }
  const header = buf.subarray(start, start + hlen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined)
    throw new HlmError(`${path}: .npy header lacks descr, fortran_order or shape: ${header.trim().slice(0, 120)}`);
  if (descr !== '<f4' && descr !== '<f8')
    throw new HlmError(
      `${path}: .npy dtype "${descr.slice(0, 20)}" not supported (need little-endian float32 "<f4" or float64 "<f8")`,
    );
  if (fortran !== 'False') throw new HlmError(`${path}: .npy array is in Fortran order; save it in C order`);
  const dims = shape
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.length !== 2 || !dims.every((x) => Number.isSafeInteger(x) && x >= 1) || dims[1] > MAX_DIM)
    throw new HlmError(
      `${path}: .npy shape (${shape.slice(0, 40)}) must be 2-D (words, dimensions), both positive, at most ` +
        `${MAX_DIM} dimensions`,
    );
  return { rows: dims[0], cols: dims[1], size: descr === '<f4' ? 4 : 8, offset: start + hlen };
}

/** NumPy's own limit on a header is far below this; more means a corrupt length field. */
const MAX_NPY_HEADER = 1 << 20;

/** Row `r` of .npy data at `buf[at]` into `out`; a value that is not finite is an error naming row and column. */
function npyRow(path: string, h: NpyHeader, buf: Buffer, at: number, r: number, out: Float32Array): void {
  for (let c = 0; c < h.cols; c++) {
    const v = h.size === 4 ? buf.readFloatLE(at + 4 * c) : buf.readDoubleLE(at + 8 * c);
    if (!Number.isFinite(v)) throw new HlmError(`${path}: row ${r + 1}, column ${c + 1}: value is not finite`);
    out[c] = v;
  }
}

/** Rows × columns of float32 from a whole .npy buffer (C order, 2-D, <f4 or <f8). */
export function parseNpy(path: string, buf: Buffer): { rows: number; cols: number; data: Float32Array } {
  const h = parseNpyHeader(path, buf, true)!;
  const bytes = h.rows * h.cols * h.size;
  if (buf.length - h.offset !== bytes)
    throw new HlmError(
      `${path}: .npy shape (${h.rows}, ${h.cols}) of <f${h.size} needs ${bytes} data bytes, the file has ` +
        `${buf.length - h.offset}`,
    );
  const data = new Float32Array(h.rows * h.cols);
  for (let r = 0; r < h.rows; r++)
    npyRow(path, h, buf, h.offset + r * h.cols * h.size, r, data.subarray(r * h.cols, (r + 1) * h.cols));
  return { rows: h.rows, cols: h.cols, data };
}

async function readNpy(path: string, o: ReadEmbeddingsOptions): Promise<ReadEmbeddings> {
  const r = new ByteReader(readChunks(path, 'embeddings'));
  try {
    let h: NpyHeader | null = null;
    for (let want = 1024; !h; want *= 4) {
      const complete = !(await r.fill(want));
      h = parseNpyHeader(path, r.buf, complete);
    }
    const vp = o.vocab ?? vocabPathFor(path);
    const words = await readVocab(vp);
    if (words.length !== h.rows) throw new HlmError(`${vp}: ${words.length} words for the ${h.rows} rows of ${path}`);
    r.pos = h.offset;
    const total = Math.min(h.rows, o.maxVocab ?? Infinity);
    const bytes = h.cols * h.size;
    const kept = new KeptRows(path, h.cols);
    for (let i = 0; i < total; i++) {
      if (r.available < bytes && !(await r.fill(bytes)))
        throw new HlmError(
          `${path}: .npy shape (${h.rows}, ${h.cols}) of <f${h.size} needs ${h.rows * bytes} data bytes, the data ` +
            `ends after ${r.at - h.offset}`,
        );
      if (!o.keep || o.keep(words[i])) npyRow(path, h, r.buf, r.pos, i, kept.add(words[i], `row ${i + 1}`));
      r.pos += bytes;
    }
    if (total === h.rows && (await r.fill(1)))
      throw new HlmError(`${path}: .npy data runs past the ${h.rows} × ${h.cols} values of its shape`);
    return finish(kept, path, 'npy', total);
  } finally {
    await r.close();
  }
}

/** One word per line (a final newline optional); no empty words, no duplicates. */
export async function readVocab(path: string): Promise<string[]> {
  const words: string[] = [];
  const seen = new Map<string, number>();
  for await (const { line, lineNo } of streamLines(path, 'the vocabulary')) {
    if (line === '') throw new HlmError(`${path}:${lineNo}: empty word`);
    const first = seen.get(line);
    if (first !== undefined) throw new HlmError(`${path}:${lineNo}: duplicate word "${line}" (first on line ${first})`);
    seen.set(line, lineNo);
    words.push(line);
  }
  return words;
}

/**
 * The embeddings of a file, plain or gzip, streamed: the first `maxVocab` rows, of them those `keep` accepts. The
 * format is detected (detectFormat) unless given.
 */
export async function readEmbeddings(
  path: string,
  format?: EmbeddingFormat,
  opts: ReadEmbeddingsOptions = {},
): Promise<ReadEmbeddings> {
  if (opts.maxVocab !== undefined && !(Number.isInteger(opts.maxVocab) && opts.maxVocab >= 1))
    throw new HlmError(`--max-vocab ${opts.maxVocab}: must be a positive integer`);
  const f = format ?? detectFormat(path, readHead(path, 4096, 'embeddings'));
  if (f === 'npy') return readNpy(path, opts);
  if (f === 'word2vec-bin') return readBinary(path, opts);
  return readText(path, f, opts);
}

/** An .npy (format 1.0) of the vectors: '<f4', C order, shape (words, dim); the header padded to 64 bytes. */
export function serializeNpy(e: Embeddings): Buffer {
  const n = e.words.length;
  const d = e.dim;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  if (header.length > 0xffff) throw new HlmError(`.npy header too long`);
  const head = Buffer.alloc(10);
  NPY_MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.alloc(n * d * 4);
  for (let i = 0; i < n * d; i++) data.writeFloatLE(e.vectors[i], 4 * i);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

/** %g-like shortest text that round-trips a float32. */
function fmt(v: number): string {
  return String(Math.fround(v));
}

/** The file's bytes (for npy: the array only; the words go to a vocabulary file, see writeEmbeddings). */
export function serializeEmbeddings(e: Embeddings, format: EmbeddingFormat = e.format): Buffer {
  const { words, dim, vectors } = e;
  if (format === 'npy') return serializeNpy(e);
  if (format === 'word2vec-bin') {
    const head = Buffer.from(`${words.length} ${dim}\n`, 'utf8');
    const parts: Buffer[] = [head];
    for (let i = 0; i < words.length; i++) {
      const w = Buffer.from(`${words[i]} `, 'utf8');
      const v = Buffer.alloc(dim * 4 + 1);
      for (let c = 0; c < dim; c++) v.writeFloatLE(vectors[i * dim + c], c * 4);
      v[dim * 4] = 0x0a;
      parts.push(w, v);
    }
    return Buffer.concat(parts);
  }
  const out: string[] = format === 'word2vec' ? [`${words.length} ${dim}`] : [];
  const row: string[] = new Array(dim + 1);
  for (let i = 0; i < words.length; i++) {
    row[0] = words[i];
    for (let c = 0; c < dim; c++) row[c + 1] = fmt(vectors[i * dim + c]);
    out.push(row.join(' '));
  }
  return Buffer.from(out.join('\n') + '\n', 'utf8');
}

/**
 * Write to a file, or to stdout for "-". npy also writes the words, one per line, to `vocab` (default
 * vocabPathFor(path)).
 */
export function writeEmbeddings(path: string, e: Embeddings, format: EmbeddingFormat = e.format, vocab?: string): void {
  if (format === 'npy') {
    if (path === '-')
      throw new HlmError('npy output needs a file (the words go to a separate vocabulary file), not "-"');
    for (const w of e.words)
      if (w === '' || /[\r\n]/.test(w))
        throw new HlmError(`${path}: word ${JSON.stringify(w)} cannot go in a one-word-per-line vocabulary`);
    const vp = vocab ?? vocabPathFor(path);
    writeFileAtomic(path, serializeNpy(e), 'embeddings');
    writeFileAtomic(vp, e.words.join('\n') + '\n', 'vocabulary');
    return;
  }
  const data = serializeEmbeddings(e, format);
  if (path === '-') {
    process.stdout.write(data);
    return;
  }
  writeFileAtomic(path, data, 'embeddings');
}

/**
 * `word count` lines (extra columns ignored), plain or gzip, streamed; counts must be positive numbers; duplicates are
 * an error.
 */
export async function readFrequencies(path: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const { line: raw, lineNo } of streamLines(path, 'frequencies')) {
    const line = raw.trim();
    if (!line) continue;
    const parts = line.split(/[ \t]+/);
    if (parts.length < 2) throw new HlmError(`${path}:${lineNo}: expected "word count", got "${line.slice(0, 80)}"`);
    const c = Number(parts[1]);
    if (!(Number.isFinite(c) && c > 0))
      throw new HlmError(
        `${path}:${lineNo}: count of "${parts[0]}" must be a positive number, got "${parts[1].slice(0, 40)}"`,
      );
    if (counts.has(parts[0])) throw new HlmError(`${path}:${lineNo}: duplicate word "${parts[0]}"`);
    counts.set(parts[0], c);
  }
  if (!counts.size) throw new HlmError(`${path}: no "word count" lines`);
  return counts;
}

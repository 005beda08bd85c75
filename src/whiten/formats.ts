// Word-embedding files in and out: word2vec text (header "V d"), GloVe text (no header) and
// word2vec binary (header line, then per word "word " and d little-endian f32). Errors name the
// file and the line (or word index for binary) so a broken file can be fixed. NumPy `.npy`
// (float32 little-endian, C order, 2-D; written as format 1.0, read 1.x–3.x, <f8 converted) with the
// words in a vocabulary file, one per line, by default next to it: X.npy ↔ X.vocab.
import { readFileSync } from 'node:fs';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export type EmbeddingFormat = 'word2vec' | 'glove' | 'word2vec-bin' | 'npy';
export const EMBEDDING_FORMATS: readonly EmbeddingFormat[] = ['word2vec', 'glove', 'word2vec-bin', 'npy'];

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** The vocabulary file that goes with an .npy file: X.npy → X.vocab. */
export function vocabPathFor(npyPath: string): string {
  return npyPath.replace(/\.npy$/i, '') + '.vocab';
}

export interface Embeddings {
  words: string[];
  dim: number;
  /** words.length × dim, row-major. */
  vectors: Float32Array;
  format: EmbeddingFormat;
}

/**
 * The format of a file: `.npy` (or the NumPy magic) is npy; `.bin` is word2vec binary; a first line of two integers is
 * word2vec text; otherwise GloVe.
 */
export function detectFormat(path: string, head: Buffer): EmbeddingFormat {
  if (/\.npy$/i.test(path) || (head.length >= 6 && head.subarray(0, 6).equals(NPY_MAGIC))) return 'npy';
  if (/\.bin$/i.test(path)) return 'word2vec-bin';
  const nl = head.indexOf(0x0a);
  const first = head
    .subarray(0, nl < 0 ? head.length : nl)
    .toString('utf8')
    .trim();
  return /^\d+\s+\d+$/.test(first) ? 'word2vec' : 'glove';
}

function parseHeader(path: string, line: string): [number, number] {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(line);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
    throw new HlmError(
      `${path}:1: word2vec header must be "<words> <dimensions>" (two positive integers), got "${line.slice(0, 80)}"`,
    );
  return [Number(m[1]), Number(m[2])];
}

function parseText(path: string, text: string, format: 'word2vec' | 'glove'): Embeddings {
  const lines = text.split('\n');
  let start = 0;
  let expected = -1;
  let dim = -1;
  if (format === 'word2vec') {
    [expected, dim] = parseHeader(path, lines[0].replace(/\r$/, ''));
    start = 1;
  }
  const words: string[] = [];
  const seen = new Map<string, number>();
  let values: Float32Array = new Float32Array(dim > 0 ? expected * dim : 0);
  for (let li = start; li < lines.length; li++) {
    const line = lines[li].replace(/\r$/, '');
    if (line.trim() === '') continue;
    const parts = line.trim().split(/[ \t]+/);
    const word = parts[0];
    const where = `${path}:${li + 1}`;
    if (dim < 0) {
      dim = parts.length - 1;
      if (dim < 1) throw new HlmError(`${where}: a line needs a word and at least one number`);
    }
    if (parts.length - 1 !== dim)
      throw new HlmError(`${where}: "${word}" has ${parts.length - 1} values, expected ${dim}`);
    if (seen.has(word)) throw new HlmError(`${where}: duplicate word "${word}" (first on line ${seen.get(word)})`);
    seen.set(word, li + 1);
    const row = words.length;
    if (format === 'word2vec' && row >= expected)
      throw new HlmError(`${where}: more rows than the ${expected} the header announces`);
    if ((row + 1) * dim > values.length) {
      const grown = new Float32Array(Math.max(1024 * dim, values.length * 2));
      grown.set(values);
      values = grown;
    }
    for (let c = 0; c < dim; c++) {
      const s = parts[c + 1];
      const v = Number(s);
      if (s === '' || !Number.isFinite(v))
        throw new HlmError(`${where}: value ${c + 1} of "${word}" is not a finite number: "${s.slice(0, 40)}"`);
      values[row * dim + c] = v;
    }
    words.push(word);
  }
  if (format === 'word2vec' && words.length !== expected)
    throw new HlmError(`${path}: header announces ${expected} words, the file has ${words.length}`);
  if (!words.length) throw new HlmError(`${path}: no vectors`);
  return { words, dim, vectors: values.slice(0, words.length * dim), format };
}

function parseBinary(path: string, buf: Buffer): Embeddings {
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw new HlmError(`${path}:1: word2vec binary header line missing`);
  const [n, dim] = parseHeader(path, buf.subarray(0, nl).toString('utf8').replace(/\r$/, ''));
  const words: string[] = [];
  const seen = new Set<string>();
  const vectors = new Float32Array(n * dim);
  let pos = nl + 1;
  for (let i = 0; i < n; i++) {
    while (pos < buf.length && (buf[pos] === 0x0a || buf[pos] === 0x20)) pos++;
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0 || pos >= buf.length)
      throw new HlmError(`${path}: word ${i + 1} of ${n}: file ends early (byte ${pos})`);
    const word = buf.subarray(pos, sp).toString('utf8');
    pos = sp + 1;
    if (pos + dim * 4 > buf.length)
      throw new HlmError(`${path}: word ${i + 1} of ${n} ("${word}"): file ends inside its vector`);
    if (seen.has(word)) throw new HlmError(`${path}: word ${i + 1}: duplicate word "${word}"`);
    seen.add(word);
    for (let c = 0; c < dim; c++) {
      const v = buf.readFloatLE(pos + c * 4);
      if (!Number.isFinite(v)) throw new HlmError(`${path}: word ${i + 1} ("${word}"): value ${c + 1} is not finite`);
      vectors[i * dim + c] = v;
    }
    pos += dim * 4;
    words.push(word);
  }
  return { words, dim, vectors, format: 'word2vec-bin' };
}

/** Rows × columns of float32 from an .npy buffer (C order, 2-D, <f4 or <f8). */
export function parseNpy(path: string, buf: Buffer): { rows: number; cols: number; data: Float32Array } {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(NPY_MAGIC))
    throw new HlmError(`${path}: not an .npy file (no \\x93NUMPY magic)`);
  const major = buf[6];
  if (major < 1 || major > 3) throw new HlmError(`${path}: unsupported .npy format version ${major}.${buf[7]}`);
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.length >= 12 ? buf.readUInt32LE(8) : -1;
  const start = major === 1 ? 10 : 12;
  if (hlen < 0 || start + hlen > buf.length) throw new HlmError(`${path}: .npy header runs past the end of the file`);
  const header = buf.subarray(start, start + hlen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shape === undefined)
    throw new HlmError(`${path}: .npy header lacks descr, fortran_order or shape: ${header.trim().slice(0, 120)}`);
  if (descr !== '<f4' && descr !== '<f8')
    throw new HlmError(
      `${path}: .npy dtype "${descr}" not supported (need little-endian float32 "<f4" or float64 "<f8")`,
    );
  if (fortran !== 'False') throw new HlmError(`${path}: .npy array is in Fortran order; save it in C order`);
  const dims = shape
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.length !== 2 || !dims.every((x) => Number.isInteger(x) && x >= 1))
    throw new HlmError(`${path}: .npy shape (${shape}) must be 2-D (words, dimensions), both positive`);
  const [rows, cols] = dims;
  const size = descr === '<f4' ? 4 : 8;
  const off = start + hlen;
  if (buf.length - off !== rows * cols * size)
    throw new HlmError(
      `${path}: .npy shape (${rows}, ${cols}) of ${descr} needs ${rows * cols * size} data bytes, the file has ` +
        `${buf.length - off}`,
    );
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    const v = size === 4 ? buf.readFloatLE(off + 4 * i) : buf.readDoubleLE(off + 8 * i);
    if (!Number.isFinite(v))
      throw new HlmError(`${path}: row ${Math.floor(i / cols) + 1}, column ${(i % cols) + 1}: value is not finite`);
    data[i] = v;
  }
  return { rows, cols, data };
}

/** One word per line (a final newline optional); no empty words, no duplicates. */
export function readVocab(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HlmError(`${path}: cannot read the vocabulary: ${(e as Error).message}`);
  }
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const seen = new Map<string, number>();
  lines.forEach((w, i) => {
    if (w === '') throw new HlmError(`${path}:${i + 1}: empty word`);
    if (seen.has(w)) throw new HlmError(`${path}:${i + 1}: duplicate word "${w}" (first on line ${seen.get(w)})`);
    seen.set(w, i + 1);
  });
  return lines;
}

export interface ReadEmbeddingsOptions {
  /** Vocabulary file for .npy input (default: vocabPathFor(path)). */
  vocab?: string;
}

export function readEmbeddings(path: string, format?: EmbeddingFormat, opts: ReadEmbeddingsOptions = {}): Embeddings {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new HlmError(`${path}: cannot read embeddings: ${(e as Error).message}`);
  }
  const f = format ?? detectFormat(path, buf.subarray(0, 4096));
  if (f === 'npy') {
    const { rows, cols, data } = parseNpy(path, buf);
    const vp = opts.vocab ?? vocabPathFor(path);
    const words = readVocab(vp);
    if (words.length !== rows) throw new HlmError(`${vp}: ${words.length} words for the ${rows} rows of ${path}`);
    return { words, dim: cols, vectors: data, format: 'npy' };
  }
  return f === 'word2vec-bin' ? parseBinary(path, buf) : parseText(path, buf.toString('utf8'), f);
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

/** `word count` lines (extra columns ignored); counts must be positive numbers; duplicates are an error. */
export function readFrequencies(path: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HlmError(`${path}: cannot read frequencies: ${(e as Error).message}`);
  }
  const counts = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '').trim();
    if (!line) continue;
    const parts = line.split(/[ \t]+/);
    if (parts.length < 2) throw new HlmError(`${path}:${i + 1}: expected "word count", got "${line.slice(0, 80)}"`);
    const c = Number(parts[1]);
    if (!(Number.isFinite(c) && c > 0))
      throw new HlmError(
        `${path}:${i + 1}: count of "${parts[0]}" must be a positive number, got "${parts[1].slice(0, 40)}"`,
      );
    if (counts.has(parts[0])) throw new HlmError(`${path}:${i + 1}: duplicate word "${parts[0]}"`);
    counts.set(parts[0], c);
  }
  if (!counts.size) throw new HlmError(`${path}: no "word count" lines`);
  return counts;
}

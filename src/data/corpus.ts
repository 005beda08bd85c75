// Documents from text corpora. Formats, told apart by content (then extension):
//   - WikiExtractor shards: `<doc id=.. url=.. title=..>` … `</doc>` blocks; the title line that
//     WikiExtractor repeats as the body's first line is dropped.
//   - JSONL: one JSON object a line with a string `text` (.jsonl/.ndjson, or a first line that is one).
//   - plain UTF-8 text: one document per file (a book, an article, a language's UDHR); a single
//     huge file is one huge document, so split such corpora into files or JSONL.
// Any of them may be gzip-compressed (X.gz, or any name with gzip content): it is decompressed as
// it streams, so WikiExtractor and JSONL files of any size read in bounded memory.
// Empty documents are skipped. `.bin` files are llm.c token shards, read by shards.ts.
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { constants as bufferConstants, isUtf8 } from 'node:buffer';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HlmError } from '../errors.js';
import { innerName, isGzip, readChunks, readHead } from '../util/read-stream.js';

export type CorpusFormat = 'text' | 'wikiextractor' | 'jsonl' | 'shard';

export interface CorpusFile {
  path: string;
  format: CorpusFormat;
  size: number;
  mtimeMs: number;
}

export const SHARD_MAGIC = 20240520;

/** V8 cannot hold a longer string (UTF-8 has at least one byte a character); a plain-text document is read whole. */
const MAX_TEXT_BYTES = bufferConstants.MAX_STRING_LENGTH;

/** Files a directory walk leaves out: hidden ones and the notes that travel with data sets. */
function skippedInDirectory(name: string): boolean {
  return name.startsWith('.') || /(^|[_.-])(readme|license|licence|copying|notice)([_.-]|$)/i.test(name);
}

/**
 * Expands --data arguments: files as given, directories recursively (sorted by name, hidden
 * files and README/LICENSE-like files skipped), each with its detected format. `flag` is the
 * option the paths came from, for messages.
 */
export function listCorpusFiles(paths: readonly string[], flag = '--data'): CorpusFile[] {
  if (paths.length === 0) throw new HlmError(`no ${flag} given`);
  const out: CorpusFile[] = [];
  const visit = (path: string, explicit: boolean) => {
    const st = statSync(path);
    if (st.isDirectory()) {
      const names = readdirSync(path).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const name of names) if (!skippedInDirectory(name)) visit(join(path, name), false);
    } else if (st.isFile()) {
      out.push({ path, format: detectFormat(path), size: st.size, mtimeMs: st.mtimeMs });
    } else if (explicit) {
      throw new HlmError(`${flag} ${path}: not a regular file or directory`);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new HlmError(`${flag} ${p}: no such file or directory`);
    const before = out.length;
    visit(p, true);
    if (out.length === before) throw new HlmError(`${flag} ${p}: no corpus files in this directory`);
  }
  return out;
}

/** Which reader a file needs, from its first 64 KiB (decompressed) and its extension (for .bin/.jsonl, before .gz). */
export function detectFormat(path: string): CorpusFormat {
  const head = readHead(path, 65536, 'corpus file');
  const n = head.length;
  const bytes = head;
  const ext = extname(innerName(path)).toLowerCase();
  if (ext === '.bin' || (n >= 4 && bytes.readInt32LE(0) === SHARD_MAGIC)) {
    if (isGzip(path)) throw new HlmError(`${path}: a compressed llm.c token shard; decompress it (gunzip) first`);
    return 'shard';
  }
  if (bytes.includes(0)) {
    throw new HlmError(
      `${path}: looks binary (NUL bytes); --data takes UTF-8 text, WikiExtractor output, JSONL or llm.c .bin shards`,
    );
  }
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  const start = text.trimStart();
  if (start.startsWith('<doc ') || start.startsWith('<doc>')) return 'wikiextractor';
  if (start.startsWith('{')) {
    const nl = start.indexOf('\n');
    if (nl >= 0 || n < 65536) {
      try {
        const v = JSON.parse(nl >= 0 ? start.slice(0, nl) : start) as unknown;
        if (v !== null && typeof v === 'object' && 'text' in v) return 'jsonl';
      } catch {
        /* not JSON: plain text that starts with a brace */
      }
    }
  }
  return 'text';
}

/** Message for bytes that are not UTF-8, with the line and column of the first bad byte. */
function utf8Error(path: string, bytes: Uint8Array, firstLine = 1): HlmError {
  const at = firstInvalidUtf8(bytes);
  let line = firstLine;
  let col = 1;
  for (let i = 0; i < at; i++) {
    if (bytes[i] === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return new HlmError(`${path}:${line}:${col}: not valid UTF-8 (byte 0x${bytes[at].toString(16).padStart(2, '0')})`);
}

/** Offset of the first byte that breaks strict UTF-8 (overlongs and surrogates included), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** Splits chunks of bytes into lines without their '\n'; a line that spans chunks is joined. */
class LineSplitter {
  private pending: Buffer[] = [];

  *push(data: Buffer): Generator<Buffer> {
    let start = 0;
    for (;;) {
      const nl = data.indexOf(10, start);
      if (nl < 0) {
        if (start < data.length) this.pending.push(Buffer.from(data.subarray(start)));
        return;
      }
      const piece = data.subarray(start, nl);
      yield this.pending.length ? Buffer.concat([...this.pending.splice(0), piece]) : piece;
      start = nl + 1;
    }
  }

  /** The last line, when the file does not end with '\n'. */
  end(): Buffer | undefined {
    const rest = Buffer.concat(this.pending.splice(0));
    return rest.length > 0 ? rest : undefined;
  }
}

/**
 * A line's text: checked as UTF-8 on its own ('\n' never occurs inside a multi-byte character, so
 * the check is exact and an error names its line), a BOM on line 1 and a trailing '\r' removed.
 */
function decodeLine(path: string, bytes: Buffer, lineNo: number): string {
  if (!isUtf8(bytes)) throw utf8Error(path, bytes, lineNo);
  let s = bytes.toString('utf8');
  if (lineNo === 1 && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/**
 * Lines of an uncompressed file without their '\n' (a trailing '\r' is removed too), read in
 * 1 MiB chunks so files larger than memory stream. Synchronous, for readers that are (GLUE TSV);
 * streamLines also reads gzip.
 */
export function* readLines(path: string): Generator<{ line: string; lineNo: number }> {
  if (isGzip(path)) throw new HlmError(`${path}: gzip-compressed; this input is read uncompressed (gunzip it)`);
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafe(1 << 20);
  const lines = new LineSplitter();
  let lineNo = 0;
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      for (const bytes of lines.push(chunk.subarray(0, n))) yield { line: decodeLine(path, bytes, ++lineNo), lineNo };
    }
    const rest = lines.end();
    if (rest) yield { line: decodeLine(path, rest, ++lineNo), lineNo };
  } finally {
    closeSync(fd);
  }
}

/**
 * Lines of a file, plain or gzip, without their '\n' (a trailing '\r' removed too), streamed: memory holds a chunk
 * and a line. `what` names the file's role in messages ("corpus file", "embeddings").
 */
export async function* streamLines(path: string, what = 'input'): AsyncGenerator<{ line: string; lineNo: number }> {
  const lines = new LineSplitter();
  let lineNo = 0;
  for await (const chunk of readChunks(path, what)) {
    for (const bytes of lines.push(chunk)) yield { line: decodeLine(path, bytes, ++lineNo), lineNo };
  }
  const rest = lines.end();
  if (rest) yield { line: decodeLine(path, rest, ++lineNo), lineNo };
}

/** A plain-text file: one document (its whole content, BOM removed). */
export async function* readTextFile(path: string): AsyncGenerator<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of readChunks(path, 'corpus file')) {
    size += chunk.length;
    if (size > MAX_TEXT_BYTES) {
      throw new HlmError(
        `${path}: more than ${MAX_TEXT_BYTES} bytes of text is too large for one plain-text document; split it ` +
          `into files or JSONL lines`,
      );
    }
    parts.push(chunk);
  }
  const bytes = Buffer.concat(parts);
  if (!isUtf8(bytes)) throw utf8Error(path, bytes);
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (text.trim()) yield text;
}

const ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&quot;': '"',
  '&lt;': '<',
  '&gt;': '>',
  '&#39;': "'",
  '&apos;': "'",
};

/** WikiExtractor output: one document per `<doc …>` block, without the repeated title line. */
export async function* readWikiExtractor(path: string): AsyncGenerator<string> {
  let open: { lineNo: number; title: string } | null = null;
  let body: string[] = [];
  for await (const { line, lineNo } of streamLines(path, 'corpus file')) {
    const isOpen = line.startsWith('<doc ') || line === '<doc>';
    if (open === null) {
      if (isOpen) {
        const title = /\btitle="(.*)">\s*$/.exec(line)?.[1] ?? '';
        open = { lineNo, title: title.replace(/&(amp|quot|lt|gt|#39|apos);/g, (e) => ENTITIES[e]) };
        body = [];
      } else if (line.trim() !== '') {
        throw new HlmError(`${path}:${lineNo}: text outside a <doc …> … </doc> block (is this WikiExtractor output?)`);
      }
      continue;
    }
    if (isOpen)
      throw new HlmError(`${path}:${open.lineNo}: <doc> without </doc> (the next <doc> starts at line ${lineNo})`);
    if (line.trim() === '</doc>') {
      if (body.length > 0 && body[0].trim() === open.title.trim()) body.shift();
      const text = body
        .join('\n')
        .replace(/^\s*\n/, '')
        .trimEnd();
      if (text) yield text;
      open = null;
      continue;
    }
    body.push(line);
  }
  if (open) throw new HlmError(`${path}:${open.lineNo}: <doc> without </doc> (the file ends first)`);
}

/** JSONL: the string `text` of each object; blank lines are skipped. */
export async function* readJsonl(path: string): AsyncGenerator<string> {
  for await (const { line, lineNo } of streamLines(path, 'corpus file')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new HlmError(`${path}:${lineNo}: not JSON (${(err as Error).message})`);
    }
    const text = value !== null && typeof value === 'object' ? (value as { text?: unknown }).text : undefined;
    if (typeof text !== 'string') throw new HlmError(`${path}:${lineNo}: a JSONL line needs a string "text" field`);
    if (text) yield text;
  }
}

export async function* readFile(file: CorpusFile): AsyncGenerator<string> {
  switch (file.format) {
    case 'text':
      yield* readTextFile(file.path);
      break;
    case 'wikiextractor':
      yield* readWikiExtractor(file.path);
      break;
    case 'jsonl':
      yield* readJsonl(file.path);
      break;
    case 'shard':
      throw new HlmError(`${file.path}: a token shard holds tokens, not text`);
  }
}

/** Every document of the text files among `inputs` (paths or listed files), in order; none at all is an error. */
export async function* readDocuments(inputs: readonly (string | CorpusFile)[]): AsyncGenerator<string> {
  const files = inputs
    .flatMap((f) => (typeof f === 'string' ? listCorpusFiles([f]) : [f]))
    .filter((f) => f.format !== 'shard');
  let count = 0;
  for (const file of files) {
    for await (const doc of readFile(file)) {
      count++;
      yield doc;
    }
  }
  if (count === 0) {
    const names = files.map((f) => f.path);
    const listed = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
    throw new HlmError(`empty corpus: no documents in ${names.length ? listed : 'the given inputs (no text files)'}`);
  }
}

/** The folder holding package.json, found from this module (src/ or a build folder). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The bundled first-run corpus: an English Wikipedia excerpt in WikiExtractor format (CC BY-SA 3.0). */
export function defaultCorpusPath(): string {
  return resolve(projectRoot(), 'data', 'default', 'enwiki-excerpt');
}

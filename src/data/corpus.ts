// Documents from text corpora. Formats, told apart by content (then extension):
//   - WikiExtractor shards: `<doc id=.. url=.. title=..>` … `</doc>` blocks; the title line that
//     WikiExtractor repeats as the body's first line is dropped.
//   - JSONL: one JSON object a line with a string `text` (.jsonl/.ndjson, or a first line that is one).
//   - plain UTF-8 text: one document per file (a book, an article, a language's UDHR); a single
//     huge file is one huge document, so split such corpora into files or JSONL.
// Empty documents are skipped. `.bin` files are llm.c token shards, read by shards.ts.
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HlmError } from '../errors.js';

export type CorpusFormat = 'text' | 'wikiextractor' | 'jsonl' | 'shard';

export interface CorpusFile {
  path: string;
  format: CorpusFormat;
  size: number;
  mtimeMs: number;
}

export const SHARD_MAGIC = 20240520;

/** V8 cannot hold a longer string; a plain-text document is read whole. */
const MAX_TEXT_BYTES = 512 * 1024 * 1024;

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

/** Which reader a file needs, from its first 64 KiB (and its extension for .bin/.jsonl). */
export function detectFormat(path: string): CorpusFormat {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(65536);
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const bytes = head.subarray(0, n);
  const ext = extname(path).toLowerCase();
  if (ext === '.bin' || (n >= 4 && bytes.readInt32LE(0) === SHARD_MAGIC)) return 'shard';
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
    if (nl >= 0 || n < head.length) {
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

/**
 * Lines of a file without their '\n' (a trailing '\r' is removed too), read in 1 MiB chunks so
 * files larger than memory stream. Each line is checked as UTF-8 on its own: '\n' never occurs
 * inside a multi-byte character, so the check is exact and an error names its line.
 */
export function* readLines(path: string): Generator<{ line: string; lineNo: number }> {
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafe(1 << 20);
  let pending: Buffer[] = [];
  let lineNo = 0;
  const decode = (bytes: Buffer): string => {
    if (!isUtf8(bytes)) throw utf8Error(path, bytes, lineNo);
    let s = bytes.toString('utf8');
    if (lineNo === 1 && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  };
  try {
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const data = chunk.subarray(0, n);
      let start = 0;
      for (;;) {
        const nl = data.indexOf(10, start);
        if (nl < 0) {
          pending.push(Buffer.from(data.subarray(start)));
          break;
        }
        const piece = data.subarray(start, nl);
        const bytes = pending.length ? Buffer.concat([...pending, piece]) : piece;
        pending = [];
        lineNo++;
        yield { line: decode(bytes), lineNo };
        start = nl + 1;
      }
    }
    const rest = Buffer.concat(pending);
    if (rest.length > 0) {
      lineNo++;
      yield { line: decode(rest), lineNo };
    }
  } finally {
    closeSync(fd);
  }
}

/** A plain-text file: one document (its whole content, BOM removed). */
export function* readTextFile(path: string): Generator<string> {
  const size = statSync(path).size;
  if (size > MAX_TEXT_BYTES) {
    throw new HlmError(
      `${path}: ${size} bytes is too large for one plain-text document (max ${MAX_TEXT_BYTES}); split it into files ` +
        `or JSONL lines`,
    );
  }
  const bytes = readFileSync(path);
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
export function* readWikiExtractor(path: string): Generator<string> {
  let open: { lineNo: number; title: string } | null = null;
  let body: string[] = [];
  for (const { line, lineNo } of readLines(path)) {
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
export function* readJsonl(path: string): Generator<string> {
  for (const { line, lineNo } of readLines(path)) {
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

export function* readFile(file: CorpusFile): Generator<string> {
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
export function* readDocuments(inputs: readonly (string | CorpusFile)[]): Generator<string> {
  const files = inputs
    .flatMap((f) => (typeof f === 'string' ? listCorpusFiles([f]) : [f]))
    .filter((f) => f.format !== 'shard');
  let count = 0;
  for (const file of files) {
    for (const doc of readFile(file)) {
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

// Input files of any size, plain or gzip-compressed (told apart by the gzip magic bytes, so a
// renamed file still reads). Chunks come from a stream, never the whole file: a reader keeps what
// it needs and may stop early, which closes the file and decompresses no further. Every failure
// (missing file, corrupt or truncated gzip data) is one HlmError naming the file.
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { constants, createGunzip, gunzipSync } from 'node:zlib';
import { HlmError } from '../errors.js';

const GZIP_MAGIC = [0x1f, 0x8b];

/** Bytes per chunk read from disk and out of the decompressor. */
const CHUNK = 1 << 20;

/** readHead decompresses at most this much of a file (a file of empty gzip members yields nothing). */
const MAX_HEAD_INPUT = 64 << 20;

/** The first `n` bytes of a file as stored (compressed or not); fewer when the file is shorter. */
function rawHead(path: string, n: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw readError(err, path, what);
  }
  try {
    const head = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const k = readSync(fd, head, got, n - got, got);
      if (k === 0) break;
      got += k;
    }
    return head.subarray(0, got);
  } catch (err) {
    throw readError(err, path, what);
  } finally {
    closeSync(fd);
  }
}

/** True when the file starts with the gzip magic; a `.gz` name on other bytes is an error. */
export function isGzip(path: string, what = 'input'): boolean {
  const head = rawHead(path, 2, what);
  const gz = head.length === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  if (!gz && /\.gz$/i.test(path)) throw new HlmError(`${path}: named .gz but not gzip data (no 1f 8b magic)`);
  return gz;
}

/** The name without a trailing .gz: what the extension says about the content. */
export function innerName(path: string): string {
  return path.replace(/\.gz$/i, '');
}

/**
 * The first `n` bytes of the file's content (decompressed for gzip), for telling formats apart. Only a prefix of a
 * compressed file is decompressed: a growing one until `n` bytes come out or the file ends.
 */
export function readHead(path: string, n: number, what = 'input'): Buffer {
  if (!isGzip(path, what)) return rawHead(path, n, what);
  for (let take = 4096; ; take *= 4) {
    const raw = rawHead(path, take, what);
    let out: Buffer;
    try {
      // Z_SYNC_FLUSH: a prefix of a gzip stream decompresses as far as it goes, without an error.
      out = gunzipSync(raw, { finishFlush: constants.Z_SYNC_FLUSH });
    } catch (err) {
      throw gzipError(err, path);
    }
    if (out.length >= n || raw.length < take || take >= MAX_HEAD_INPUT) return out.subarray(0, n);
  }
}

/**
 * The file's content in chunks (decompressed for gzip). Leaving the loop early (break, return, an
 * exception) closes the file.
 */
export async function* readChunks(path: string, what = 'input'): AsyncGenerator<Buffer> {
  const gz = isGzip(path, what);
  const file = createReadStream(path, { highWaterMark: CHUNK });
  const gunzip = gz ? createGunzip({ chunkSize: CHUNK }) : undefined;
  if (gunzip) {
    file.on('error', (err) => gunzip.destroy(err));
    file.pipe(gunzip);
  }
  try {
    for await (const chunk of gunzip ?? file) yield chunk as Buffer;
  } catch (err) {
    throw gz && isZlibError(err) ? gzipError(err, path) : readError(err, path, what);
  } finally {
    gunzip?.destroy();
    file.destroy();
  }
}

function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

function gzipError(err: unknown, path: string): HlmError {
  return new HlmError(`${path}: corrupt or truncated gzip data (${(err as Error).message})`);
}

/** A filesystem error as an HlmError naming the file; an HlmError passes through. */
function readError(err: unknown, path: string, what: string): unknown {
  if (err instanceof HlmError) return err;
  // Not `instanceof Error`: errors from node:fs come from another realm under jest's vm modules.
  const e = err as Partial<NodeJS.ErrnoException> | null;
  if (typeof e?.code === 'string') return new HlmError(`${path}: cannot read ${what}: ${e.message}`);
  return err;
}

/**
 * Bytes of a chunk stream read as records: `fill(n)` makes n bytes available at `buf[pos]` (joining chunks only when
 * a record spans them), `pos` advances past what was consumed, `offset` is the position of `buf[0]` in the data.
 */
export class ByteReader {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  offset = 0;
  private done = false;

  constructor(private readonly chunks: AsyncGenerator<Buffer>) {}

  /** Position of the next unread byte in the data. */
  get at(): number {
    return this.offset + this.pos;
  }

  /** Bytes available without reading more. */
  get available(): number {
    return this.buf.length - this.pos;
  }

  /** Makes at least `n` bytes available; false when the data ends first (what there is stays available). */
  async fill(n: number): Promise<boolean> {
    if (this.available >= n) return true;
    const pieces = [this.buf.subarray(this.pos)];
    let have = this.available;
    while (have < n && !this.done) {
      const r = await this.chunks.next();
      if (r.done) this.done = true;
      else {
        pieces.push(r.value);
        have += r.value.length;
      }
    }
    this.offset += this.pos;
    this.buf = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
    this.pos = 0;
    return have >= n;
  }

  /** Stops reading: the file is closed, nothing more is decompressed. */
  async close(): Promise<void> {
    await this.chunks.return(undefined);
  }
}

// llm.c token shards: a 256 x int32 little-endian header ([0] magic 20240520, [1] version:
// 1 = uint16 tokens, 2 = uint32 tokens, [2] token count), then the tokens. Text corpora are
// tokenised into such shards once and cached; a second run with the same files (path, size,
// mtime) and the same tokenizer reuses them.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { endianness, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { listCorpusFiles, readDocuments, SHARD_MAGIC, type CorpusFile } from './corpus.js';
import type { Tokenizer } from './tokenizer.js';

export { SHARD_MAGIC };
export const SHARD_HEADER_INTS = 256;
export const SHARD_HEADER_BYTES = SHARD_HEADER_INTS * 4;
export type ShardVersion = 1 | 2;

/** Tokens are written in the host's byte order through typed arrays: refuse a big-endian host. */
function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new HlmError('token shards are little-endian and this host is big-endian');
}

/** Version 1 (uint16) when every id fits, else 2 (uint32). */
export function shardVersionFor(vocabSize: number): ShardVersion {
  return vocabSize <= 65536 ? 1 : 2;
}

export interface ShardHeader {
  path: string;
  version: ShardVersion;
  /** tokens in the shard */
  count: number;
  bytesPerToken: 2 | 4;
}

/** Writes one shard atomically, so a reader never sees half a shard. */
export function writeShard(path: string, tokens: ArrayLike<number>, version: ShardVersion = 2): void {
  assertLittleEndian();
  const n = tokens.length;
  if (n > 0x7fffffff) throw new HlmError(`${path}: ${n} tokens do not fit an llm.c shard's int32 count`);
  const header = new Int32Array(SHARD_HEADER_INTS);
  header[0] = SHARD_MAGIC;
  header[1] = version;
  header[2] = n;
  const body = version === 1 ? new Uint16Array(n) : new Uint32Array(n);
  const max = version === 1 ? 0xffff : 0xffffffff;
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (!(Number.isInteger(t) && t >= 0 && t <= max))
      throw new HlmError(`${path}: token ${t} at index ${i} does not fit a version ${version} shard`);
    body[i] = t;
  }
  const bytes = [new Uint8Array(header.buffer), new Uint8Array(body.buffer, body.byteOffset, body.byteLength)];
  writeFileAtomic(path, bytes, 'token shard');
}

/** Reads and checks a shard's header against the file's size. */
export function readShardHeader(path: string): ShardHeader {
  if (!existsSync(path)) throw new HlmError(`token shard ${path}: no such file`);
  const fd = openSync(path, 'r');
  try {
    return headerOf(path, fd);
  } finally {
    closeSync(fd);
  }
}

function headerOf(path: string, fd: number): ShardHeader {
  const size = fstatSync(fd).size;
  if (size < SHARD_HEADER_BYTES) {
    throw new HlmError(
      `token shard ${path} is truncated: ${size} bytes, less than the ${SHARD_HEADER_BYTES}-byte header`,
    );
  }
  const head = Buffer.alloc(12);
  readSync(fd, head, 0, 12, 0);
  const magic = head.readInt32LE(0);
  const version = head.readInt32LE(4);
  const count = head.readInt32LE(8);
  if (magic !== SHARD_MAGIC)
    throw new HlmError(`${path} is not an llm.c token shard: magic ${magic}, expected ${SHARD_MAGIC}`);
  if (version !== 1 && version !== 2)
    throw new HlmError(`token shard ${path}: version ${version} is unknown (1 = uint16 tokens, 2 = uint32)`);
  if (count < 0) throw new HlmError(`token shard ${path}: negative token count ${count}`);
  const bytesPerToken = version === 1 ? 2 : 4;
  const want = SHARD_HEADER_BYTES + count * bytesPerToken;
  if (size < want) {
    throw new HlmError(
      `token shard ${path} is truncated: its header promises ${count} tokens (${want} bytes with the header) but ` +
        `the file has ${size} bytes`,
    );
  }
  if (size > want)
    throw new HlmError(
      `token shard ${path}: ${size - want} bytes past the ${count} tokens its header declares (${want} bytes expected)`,
    );
  return { path, version, count, bytesPerToken };
}

/** A whole shard's tokens. */
export function readShard(path: string): Uint16Array | Uint32Array {
  assertLittleEndian();
  const h = readShardHeader(path);
  const bytes = readFileSync(path);
  // copy into a fresh, aligned buffer: a Buffer may sit at any offset of a shared pool
  const body = new Uint8Array(h.count * h.bytesPerToken);
  body.set(bytes.subarray(SHARD_HEADER_BYTES));
  return h.version === 1 ? new Uint16Array(body.buffer) : new Uint32Array(body.buffer);
}

/** Collects tokens and writes numbered shards of at most `shardTokens` tokens each. */
export class ShardWriter {
  private buf: Uint32Array;
  private used = 0;
  readonly paths: string[] = [];
  readonly counts: number[] = [];

  constructor(
    private readonly dir: string,
    private readonly version: ShardVersion,
    private readonly shardTokens = DEFAULT_SHARD_TOKENS,
    private readonly prefix = 'shard',
  ) {
    if (!(Number.isInteger(shardTokens) && shardTokens > 0))
      throw new RangeError(`shardTokens ${shardTokens} must be a positive integer`);
    this.buf = new Uint32Array(Math.min(shardTokens, 1 << 20));
  }

  push(ids: ArrayLike<number>): void {
    let i = 0;
    while (i < ids.length) {
      if (this.used === this.buf.length) {
        if (this.buf.length < this.shardTokens) {
          const grown = new Uint32Array(Math.min(this.shardTokens, this.buf.length * 2));
          grown.set(this.buf);
          this.buf = grown;
        } else {
          this.flush();
        }
      }
      const take = Math.min(ids.length - i, this.buf.length - this.used);
      for (let k = 0; k < take; k++) this.buf[this.used + k] = ids[i + k];
      this.used += take;
      i += take;
    }
  }

  private flush(): void {
    if (this.used === 0) return;
    const path = join(this.dir, `${this.prefix}_${String(this.paths.length).padStart(6, '0')}.bin`);
    writeShard(path, this.buf.subarray(0, this.used), this.version);
    this.paths.push(path);
    this.counts.push(this.used);
    this.used = 0;
  }

  /** Writes what is left; returns the shard paths. */
  finish(): string[] {
    this.flush();
    return this.paths;
  }
}

/** 2^25 tokens: 64 MiB as uint16, small enough to build in memory. */
export const DEFAULT_SHARD_TOKENS = 1 << 25;

/** Where tokenised corpora are kept: $HLM_CACHE_DIR, else $XDG_CACHE_HOME/hlm, else ~/.cache/hlm. */
export function cacheRoot(): string {
  if (process.env.HLM_CACHE_DIR) return resolve(process.env.HLM_CACHE_DIR);
  return join(process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'hlm');
}

export interface TokenizeOptions {
  /** overrides cacheRoot() */
  cacheDir?: string;
  shardTokens?: number;
  /** documents a tokenizer call takes at once */
  batchDocuments?: number;
  onProgress?: (p: { documents: number; tokens: number }) => void;
}

export interface TokenizedCorpus {
  shards: string[];
  tokens: number;
  documents: number;
  /** true when the shards came from the cache */
  cached: boolean;
  /** the cache entry's folder */
  dir: string;
}

interface Manifest {
  format: 'hlm.shards/1';
  key: object;
  shards: { file: string; tokens: number }[];
  tokens: number;
  documents: number;
}

/** The cache key: the input files (absolute path, size, mtime, format) and the tokenizer. */
function cacheKey(
  files: readonly CorpusFile[],
  tokenizer: Tokenizer,
  shardTokens: number,
): { id: string; key: object } {
  const key = {
    format: 'hlm.shards/1',
    tokenizer: tokenizer.fingerprint,
    eot: tokenizer.eotId,
    shardTokens,
    files: files.map((f) => ({ path: resolve(f.path), size: f.size, mtimeMs: f.mtimeMs, format: f.format })),
  };
  return { id: createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32), key };
}

/**
 * Tokenises the documents of the text files into shards, each document preceded by the
 * end-of-text token (llm.c's layout, so every document boundary holds one EOT). Cached.
 */
export async function tokenizeCorpus(
  inputs: readonly (string | CorpusFile)[],
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): Promise<TokenizedCorpus> {
  const files = inputs
    .flatMap((f) => (typeof f === 'string' ? listCorpusFiles([f]) : [f]))
    .filter((f) => f.format !== 'shard');
  const shardTokens = options.shardTokens ?? DEFAULT_SHARD_TOKENS;
  const { id, key } = cacheKey(files, tokenizer, shardTokens);
  const root = join(options.cacheDir ? resolve(options.cacheDir) : cacheRoot(), 'shards');
  const dir = join(root, id);
  const cached = readManifest(dir);
  if (cached)
    return {
      shards: cached.shards.map((s) => join(dir, s.file)),
      tokens: cached.tokens,
      documents: cached.documents,
      cached: true,
      dir,
    };

  mkdirSync(root, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp);
  try {
    const writer = new ShardWriter(tmp, shardVersionFor(tokenizer.vocabSize), shardTokens);
    const eot = [tokenizer.eotId];
    const perCall = options.batchDocuments ?? 256;
    let documents = 0;
    let tokens = 0;
    let batch: string[] = [];
    const flush = async () => {
      for (const ids of await tokenizer.encodeBatch(batch)) {
        writer.push(eot);
        writer.push(ids);
        tokens += ids.length + 1;
      }
      documents += batch.length;
      batch = [];
      options.onProgress?.({ documents, tokens });
    };
    for await (const doc of readDocuments(files)) {
      batch.push(doc);
      if (batch.length >= perCall) await flush();
    }
    if (batch.length) await flush();
    const paths = writer.finish();
    const manifest: Manifest = {
      format: 'hlm.shards/1',
      key,
      shards: paths.map((p, i) => ({ file: p.slice(tmp.length + 1), tokens: writer.counts[i] })),
      tokens,
      documents,
    };
    writeFileAtomic(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n', 'token cache manifest');
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // another run finished the same entry first: use theirs
      if (!readManifest(dir)) throw err;
      rmSync(tmp, { recursive: true, force: true });
    }
    return { shards: manifest.shards.map((s) => join(dir, s.file)), tokens, documents, cached: false, dir };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

function readManifest(dir: string): Manifest | undefined {
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) return undefined;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
    if (m.format !== 'hlm.shards/1') return undefined;
    for (const s of m.shards) if (readShardHeader(join(dir, s.file)).count !== s.tokens) return undefined;
    return m;
  } catch {
    return undefined; // damaged entry: tokenise again
  }
}

export interface PreparedData {
  /** shards given as .bin files, in order, then the shards of the tokenised text files */
  shards: string[];
  tokens: number;
  /** the text files' tokenisation, when there were any */
  tokenized?: TokenizedCorpus;
}

/**
 * What `--data` means: files, directories and .bin shards in, a list of checked shards out. `flag` is the option the
 * paths came from, for messages.
 */
export async function prepareData(
  paths: readonly string[],
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
  flag = '--data',
): Promise<PreparedData> {
  const files = listCorpusFiles(paths, flag);
  const given = files.filter((f) => f.format === 'shard').map((f) => readShardHeader(f.path));
  const texts = files.filter((f) => f.format !== 'shard');
  const tokenized = texts.length ? await tokenizeCorpus(texts, tokenizer, options) : undefined;
  const shards = [...given.map((h) => h.path), ...(tokenized?.shards ?? [])];
  const tokens = given.reduce((s, h) => s + h.count, 0) + (tokenized?.tokens ?? 0);
  if (tokens === 0) throw new HlmError(`${flag} ${paths.join(' ')}: no tokens`);
  return { shards, tokens, tokenized };
}

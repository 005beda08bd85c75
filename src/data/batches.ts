// Training batches over token shards, read as one stream (the shards end to end, repeating
// forever). A batch is B rows of T+1 consecutive tokens; inputs are the first T, targets the
// last T (each input's next token).
//   sequential: row r of batch b starts at token (b·B + r)·T of the stream (DESIGN.md), so
//     rows cross shard boundaries and the corpus's end.
//   shuffled: the corpus is cut into W = floor((N−1)/T) windows starting at multiples of T,
//     and each epoch visits all of them in a fresh seeded order (epoch e = global rows
//     [eW, (e+1)W)).
// Either way batch b is a pure function of (shards, B, T, order, seed, b): the state to save
// for an exact resume is the next batch index.
import { closeSync, openSync, readSync } from 'node:fs';
import { HlmError } from '../errors.js';
import { IndexPermutation } from './random.js';
import { readShardHeader, SHARD_HEADER_BYTES, type ShardHeader } from './shards.js';

export const BATCH_ORDERS = ['shuffled', 'sequential'] as const;
export type BatchOrder = (typeof BATCH_ORDERS)[number];

export interface BatchOptions {
  batchSize: number;
  seqLen: number;
  order?: BatchOrder;
  seed?: number;
  /** when given, a token >= vocabSize (a shard made with another tokenizer) is an error naming the shard */
  vocabSize?: number;
}

export interface Batch {
  /** batch index */
  index: number;
  batchSize: number;
  seqLen: number;
  /** B×T, row-major */
  inputs: Int32Array;
  /** B×T: targets[r·T + t] = the token after inputs[r·T + t] */
  targets: Int32Array;
}

/** What a checkpoint stores to resume the data where it stopped. */
export interface BatchState {
  order: BatchOrder;
  seed: number;
  batchSize: number;
  seqLen: number;
  /** tokens in all shards: a different corpus cannot resume */
  tokens: number;
  /** the next batch index */
  position: number;
}

interface OpenShard extends ShardHeader {
  fd: number;
  start: number;
}

export class BatchSource {
  readonly order: BatchOrder;
  readonly seed: number;
  readonly batchSize: number;
  readonly seqLen: number;
  /** tokens in all shards */
  readonly tokens: number;
  /** windows a shuffled epoch visits */
  readonly windowsPerEpoch: number;
  readonly vocabSize?: number;
  /** the next batch next() returns */
  position = 0;
  private readonly shards: OpenShard[];
  private readonly scratch: Uint8Array;
  private perm?: { epoch: number; p: IndexPermutation };

  private constructor(shards: OpenShard[], options: BatchOptions) {
    const { batchSize: B, seqLen: T } = options;
    if (!(Number.isInteger(B) && B >= 1 && Number.isInteger(T) && T >= 1))
      throw new RangeError(`batch size ${B} and sequence length ${T} must be positive integers`);
    this.shards = shards;
    this.order = options.order ?? 'shuffled';
    this.seed = options.seed ?? 0;
    this.vocabSize = options.vocabSize;
    this.batchSize = B;
    this.seqLen = T;
    this.tokens = shards.reduce((s, h) => s + h.count, 0);
    if (this.tokens < T + 1) {
      this.close();
      throw new HlmError(`the data has ${this.tokens} tokens, fewer than one sequence of ${T} plus its next token`);
    }
    this.windowsPerEpoch = Math.floor((this.tokens - 1) / T);
    this.scratch = new Uint8Array((T + 1) * 4);
  }

  /** Opens the shards (headers checked; tokens are read per batch, so any corpus size fits). */
  static open(paths: readonly string[], options: BatchOptions): BatchSource {
    if (paths.length === 0) throw new HlmError('no token shards to read');
    const shards: OpenShard[] = [];
    let start = 0;
    try {
      for (const path of paths) {
        const h = readShardHeader(path);
        if (h.count === 0) continue;
        shards.push({ ...h, fd: openSync(path, 'r'), start });
        start += h.count;
      }
    } catch (err) {
      for (const s of shards) closeSync(s.fd);
      throw err;
    }
    return new BatchSource(shards, options);
  }

  /** Stream offset where global row g (= b·B + r) starts, in [0, tokens). */
  rowStart(g: number): number {
    const T = this.seqLen;
    if (this.order === 'sequential') return (g * T) % this.tokens;
    const W = this.windowsPerEpoch;
    const epoch = Math.floor(g / W);
    if (this.perm?.epoch !== epoch) this.perm = { epoch, p: new IndexPermutation(W, [this.seed, epoch]) };
    return this.perm.p.at(g % W) * T;
  }

  /** Batch b, independent of position. */
  batchAt(b: number): Batch {
    if (!(Number.isInteger(b) && b >= 0)) throw new RangeError(`batch index ${b} must be a non-negative integer`);
    const B = this.batchSize;
    const T = this.seqLen;
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    const row = new Int32Array(T + 1);
    for (let r = 0; r < B; r++) {
      this.readTokens(this.rowStart(b * B + r), row);
      inputs.set(row.subarray(0, T), r * T);
      targets.set(row.subarray(1), r * T);
    }
    return { index: b, batchSize: B, seqLen: T, inputs, targets };
  }

  next(): Batch {
    return this.batchAt(this.position++);
  }

  state(): BatchState {
    return {
      order: this.order,
      seed: this.seed,
      batchSize: this.batchSize,
      seqLen: this.seqLen,
      tokens: this.tokens,
      position: this.position,
    };
  }

  /** Continues from a saved state; refuses one made with other data or settings. */
  restore(state: BatchState): void {
    const mine = this.state();
    for (const k of ['order', 'seed', 'batchSize', 'seqLen', 'tokens'] as const) {
      if (state[k] !== mine[k])
        throw new HlmError(`cannot resume the data order: saved ${k} ${state[k]}, now ${mine[k]}`);
    }
    if (!(Number.isInteger(state.position) && state.position >= 0))
      throw new HlmError(`cannot resume the data order: bad position ${state.position}`);
    this.position = state.position;
  }

  /** tokens [start, start + out.length) of the endless stream into out */
  private readTokens(start: number, out: Int32Array): void {
    let pos = start % this.tokens;
    let k = binarySearch(this.shards, pos);
    let filled = 0;
    while (filled < out.length) {
      const s = this.shards[k];
      const at = pos - s.start;
      const take = Math.min(out.length - filled, s.count - at);
      const bytes = take * s.bytesPerToken;
      const got = readSync(s.fd, this.scratch, 0, bytes, SHARD_HEADER_BYTES + at * s.bytesPerToken);
      if (got !== bytes)
        throw new HlmError(
          `token shard ${s.path}: short read (${got} of ${bytes} bytes at token ${at}); was it changed while training?`,
        );
      const view =
        s.bytesPerToken === 2
          ? new Uint16Array(this.scratch.buffer, 0, take)
          : new Uint32Array(this.scratch.buffer, 0, take);
      for (let i = 0; i < take; i++) out[filled + i] = view[i];
      if (this.vocabSize !== undefined) {
        for (let i = 0; i < take; i++) {
          if (view[i] >= this.vocabSize) {
            throw new HlmError(
              `token shard ${s.path}: token ${view[i]} at index ${at + i} is outside the vocabulary of ` +
                `${this.vocabSize} (made with another tokenizer?)`,
            );
          }
        }
      }
      filled += take;
      pos += take;
      if (pos === s.start + s.count) {
        k = (k + 1) % this.shards.length;
        pos = this.shards[k].start;
      }
    }
  }

  close(): void {
    for (const s of this.shards) {
      try {
        closeSync(s.fd);
      } catch {
        /* already closed */
      }
    }
    this.shards.length = 0;
  }
}

/** index of the shard holding stream offset pos */
function binarySearch(shards: readonly OpenShard[], pos: number): number {
  let lo = 0;
  let hi = shards.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (shards[mid].start <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

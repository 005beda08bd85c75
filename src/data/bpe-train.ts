// Byte-level BPE training in TypeScript. The tokenizers Node binding's train() takes no trainer
// settings and always stops at BpeTrainer's default 30,000 tokens, too few for a multilingual
// vocabulary (the headless-LM paper's is 119k), so hlm counts and merges pairs itself and writes
// the same tokenizer.json the binding would.
//
// The algorithm is the one BpeTrainer runs: pre-tokenize with GPT-2's pattern, count the distinct
// pieces, then repeatedly merge the most frequent adjacent pair (ties: the smaller pair of ids),
// until the vocabulary is full or no pair is left. Pair counts live in a Map keyed by
// a·2^21 + b; a max-heap holds (count, pair) entries that are checked against the Map when popped
// (a count only falls, except for pairs that touch a token a merge rebuilt, which are pushed
// again); per pair, the list of pieces that held it when it was counted or formed, so that a merge
// only visits the pieces it can change.
import { BYTE_ORDER, BYTE_TO_CHAR } from './byte-level.js';

/** GPT-2's pre-tokenizer pattern, as Hugging Face's ByteLevel pre-tokenizer applies it (use_regex). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Token ids are below 2^21 so that a pair packs into one exact double. */
export const MAX_BPE_TOKENS = 1 << 21;
const SHIFT = 2 ** 21;

/** Distinct pre-tokenized pieces of some text and how often each occurs. */
export class PieceCounts {
  readonly counts = new Map<string, number>();

  /** Adds the pieces of one document. */
  add(text: string): void {
    for (const m of text.matchAll(GPT2_PATTERN)) this.counts.set(m[0], (this.counts.get(m[0]) ?? 0) + 1);
  }
}

export interface BpeTrainResult {
  /** Token strings in the byte-level alphabet: ids 0..255 the bytes in GPT-2's order, then merged tokens. */
  tokens: string[];
  /** Merge rules "a b" in the order learned (a merge that rebuilds an existing token adds no id). */
  merges: string[];
  /** True when the corpus ran out of pairs before the vocabulary was full. */
  exhausted: boolean;
}

/** A binary max-heap of (count, pair key); equal counts pop the smaller key first. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i];
    this.counts[i] = this.counts[j];
    this.counts[j] = c;
    const k = this.keys[i];
    this.keys[i] = this.keys[j];
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    let i = this.counts.length;
    this.counts.push(count);
    this.keys.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry and returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop() as number;
    const lastKey = this.keys.pop() as number;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < n && this.above(l, best)) best = l;
        if (r < n && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/**
 * Learns merges on `pieces` until there are `maxTokens` tokens (the 256 bytes included) or no
 * adjacent pair is left.
 */
export function trainBpe(pieces: PieceCounts, maxTokens: number): BpeTrainResult {
  if (!(Number.isInteger(maxTokens) && maxTokens >= 256 && maxTokens <= MAX_BPE_TOKENS))
    throw new RangeError(`BPE token count ${maxTokens} must be an integer in 256..${MAX_BPE_TOKENS}`);
  const tokens = BYTE_ORDER.map((b) => BYTE_TO_CHAR[b]);
  const idOf = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const byteId = new Int32Array(256);
  BYTE_ORDER.forEach((b, i) => (byteId[b] = i));

  // Every distinct piece as a run of symbol ids in one array; a merge compacts its run in place.
  const utf8 = new TextEncoder();
  const encoded: Uint8Array[] = [];
  const freq: number[] = [];
  let total = 0;
  for (const [piece, count] of pieces.counts) {
    const bytes = utf8.encode(piece);
    if (bytes.length < 2) continue; // nothing to merge
    encoded.push(bytes);
    freq.push(count);
    total += bytes.length;
  }
  const nWords = encoded.length;
  const sym = new Int32Array(total);
  const start = new Int32Array(nWords);
  const len = new Int32Array(nWords);
  let at = 0;
  for (let w = 0; w < nWords; w++) {
    start[w] = at;
    len[w] = encoded[w].length;
    for (const b of encoded[w]) sym[at++] = byteId[b];
  }
  encoded.length = 0;

  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  for (let w = 0; w < nWords; w++) {
    const s = start[w];
    for (let i = s; i < s + len[w] - 1; i++) {
      const key = sym[i] * SHIFT + sym[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + freq[w]);
      const list = where.get(key);
      if (list === undefined) where.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: string[] = [];
  const visited = new Int32Array(nWords).fill(-1);
  let longest = 1;
  for (let w = 0; w < nWords; w++) longest = Math.max(longest, len[w]);
  const covered = new Uint8Array(longest); // per input position: part of a merged pair
  const merged = new Uint8Array(longest); // per output position: a merged symbol
  const delta = new Map<number, number>();
  while (tokens.length < maxTokens && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current === 0) continue;
    if (current !== count) {
      heap.push(current, key); // stale entry: its pair has fewer occurrences now
      continue;
    }
    const a = Math.floor(key / SHIFT);
    const b = key - a * SHIFT;
    const text = tokens[a] + tokens[b];
    let ab = idOf.get(text);
    if (ab === undefined) {
      ab = tokens.length;
      tokens.push(text);
      idOf.set(text, ab);
    }
    merges.push(`${tokens[a]} ${tokens[b]}`);
    const stamp = merges.length;
    delta.clear();
    for (const w of where.get(key) ?? []) {
      if (visited[w] === stamp) continue;
      visited[w] = stamp;
      const s = start[w];
      const n = len[w];
      // The occurrences a left-to-right pass merges; the old pairs that touch one leave, the
      // new pairs that touch a merged symbol appear, every other pair is unchanged.
      let found = false;
      for (let i = 0; i < n; i++) {
        if (i + 1 < n && sym[s + i] === a && sym[s + i + 1] === b) {
          covered[i] = covered[i + 1] = 1;
          found = true;
          i++;
        } else covered[i] = 0;
      }
      if (!found) continue;
      for (let j = 0; j < n - 1; j++) {
        if (covered[j] || covered[j + 1]) {
          const k = sym[s + j] * SHIFT + sym[s + j + 1];
          delta.set(k, (delta.get(k) ?? 0) - freq[w]);
        }
      }
      let out = s;
      for (let i = s; i < s + n;) {
        if (i + 1 < s + n && sym[i] === a && sym[i + 1] === b) {
          merged[out - s] = 1;
          sym[out++] = ab;
          i += 2;
        } else {
          merged[out - s] = 0;
          sym[out++] = sym[i++];
        }
      }
      const m = out - s;
      len[w] = m;
      for (let j = 0; j < m - 1; j++) {
        if (merged[j] || merged[j + 1]) {
          const k = sym[s + j] * SHIFT + sym[s + j + 1];
          delta.set(k, (delta.get(k) ?? 0) + freq[w]);
          const list = where.get(k);
          if (list === undefined) where.set(k, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    where.delete(key);
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const c = (pairCount.get(k) ?? 0) + d;
      if (c > 0) pairCount.set(k, c);
      else pairCount.delete(k);
      if (d > 0) heap.push(c, k);
    }
  }
  return { tokens, merges, exhausted: tokens.length < maxTokens };
}

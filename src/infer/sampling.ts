// Picking the next token from a row of logits on the host: temperature, top-k, top-p, and a seeded
// draw (src/model/random.ts), so a generation is a function of its seed. Greedy decoding
// (temperature 0) never comes here: the GPU's argmax answers it with one number.
import { HlmError } from '../errors.js';
import type { Rng } from '../model/random.js';

export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy. */
  temperature: number;
  /** Keep only the k most likely tokens (ties at the cut: lower ids first); 0 = the whole vocabulary. */
  topK: number;
  /**
   * Then keep only the smallest set of the likeliest tokens whose probability (after temperature and top-k) reaches
   * topP (nucleus sampling, as Hugging Face's TopPLogitsWarper); 1 (the default) keeps them all.
   */
  topP?: number;
  /** Draw only ids below this (e.g. the tokenizer's vocabulary when the model's is padded); default all. */
  vocab?: number;
}

export function checkSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0 && Number.isFinite(o.temperature)))
    throw new HlmError(`temperature must be a finite number ≥ 0, got ${o.temperature}`);
  if (!(Number.isInteger(o.topK) && o.topK >= 0)) throw new HlmError(`top-k must be an integer ≥ 0, got ${o.topK}`);
  const p = o.topP ?? 1;
  if (!(p > 0 && p <= 1)) throw new HlmError(`top-p must be a number in (0, 1], got ${o.topP}`);
}

/** The first index of the largest logit among ids < n (NaN counts as largest, as on the GPU). */
export function argmaxHost(logits: ArrayLike<number>, n = logits.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) {
    const v = logits[i];
    const b = logits[best];
    if (Number.isNaN(b)) break;
    if (v > b || Number.isNaN(v)) best = i;
  }
  return best;
}

/** The candidate ids: all (topK 0 or ≥ n), else the topK largest logits, ties broken towards lower ids. */
function candidates(logits: ArrayLike<number>, n: number, topK: number): number[] {
  const ids = Array.from({ length: n }, (_, i) => i);
  if (topK === 0 || topK >= n) return ids;
  // The k-th largest value by a typed (native) sort, then one pass: cheaper than sorting ids.
  const sorted = Float32Array.from({ length: n }, (_, i) => logits[i]).sort();
  const cut = sorted[n - topK];
  const above = ids.filter((i) => logits[i] > cut);
  const at = ids.filter((i) => logits[i] === cut).slice(0, topK - above.length);
  return [...above, ...at].sort((a, b) => a - b);
}

/** The likeliest ids (ties: lower ids first) until their weight reaches p·total, back in id order. */
function nucleus(ids: number[], w: number[], total: number, p: number): { ids: number[]; w: number[]; total: number } {
  const order = ids.map((_, k) => k).sort((a, b) => w[b] - w[a] || ids[a] - ids[b]);
  const keep: number[] = [];
  let sum = 0;
  for (const k of order) {
    keep.push(k);
    sum += w[k];
    if (sum >= p * total) break;
  }
  keep.sort((a, b) => a - b);
  return { ids: keep.map((k) => ids[k]), w: keep.map((k) => w[k]), total: sum };
}

/** Sample one id from softmax(logits / temperature) restricted to the top k. */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  checkSampling(o);
  const n = Math.min(o.vocab ?? logits.length, logits.length);
  if (o.temperature === 0 || o.topK === 1) return argmaxHost(logits, n);
  let ids = candidates(logits, n, o.topK);
  let max = -Infinity;
  for (const i of ids) {
    if (Number.isNaN(logits[i])) throw new HlmError(`the model's logit for token ${i} is NaN`);
    max = Math.max(max, logits[i]);
  }
  let w = ids.map((i) => Math.exp((logits[i] - max) / o.temperature));
  let total = w.reduce((a, b) => a + b, 0);
  if ((o.topP ?? 1) < 1) ({ ids, w, total } = nucleus(ids, w, total, o.topP!));
  let u = rng.uniform() * total;
  for (let k = 0; k < ids.length; k++) {
    u -= w[k];
    if (u < 0) return ids[k];
  }
  return ids[ids.length - 1]; // u within rounding of total
}

// Attention of one new token over a KV cache (decoding): out = softmax(scale·q·Kᵀ)·V over the
// cache's first `len` rows, every head at once, len read from a u32 buffer on the GPU so the
// same dispatch serves every step (the caller writes len before each submit). Causality is
// the caller's: the cache holds only positions up to the query's own.
//
// Layouts: q [d] (heads side by side, e.g. the first third of a packed c_attn row); the cache
// [maxLen, 2d], row j = every head's key for position j, then every head's value (the last
// two thirds of that position's c_attn row, copied as one block); out [d].
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { checkSizes, off, type TensorRef } from './types.js';

export interface AttentionDecodeSpec {
  d: number;
  nHead: number;
  /** Rows the cache holds; len is capped at it. */
  maxLen: number;
  q: TensorRef;
  kv: TensorRef;
  /** u32: how many cache rows the query sees (its own position + 1). */
  length: TensorRef;
  out: TensorRef;
  /**
   * Holds nHead·maxLen floats of scores; default: one the dispatch owns (freed by gpu.release). Layers may share one.
   */
  scores?: GPUBuffer;
  /** Default 1/√(d / nHead). */
  scale?: number;
  label?: string;
}

export function attentionDecodeScoresBytes(nHead: number, maxLen: number): number {
  return 4 * nHead * maxLen;
}

export async function attentionDecode(gpu: Gpu, s: AttentionDecodeSpec): Promise<Dispatch> {
  const label = s.label ?? 'attention decode';
  checkSizes(label, { d: s.d, nHead: s.nHead, maxLen: s.maxLen });
  if (s.d % s.nHead !== 0) throw new HlmError(`${label}: d = ${s.d} is not a multiple of nHead = ${s.nHead}`);
  const hd = s.d / s.nHead;
  const need = (what: string, t: TensorRef, n: number) => {
    if (((t.offset ?? 0) + n) * 4 > t.buffer.size)
      throw new HlmError(
        `${label}: ${what} needs ${n} elements from offset ${t.offset ?? 0}, but "${t.buffer.label}" has ` +
          `${t.buffer.size} bytes`,
      );
  };
  need('q', s.q, s.d);
  need('kv', s.kv, s.maxLen * 2 * s.d);
  need('length', s.length, 1);
  need('out', s.out, s.d);
  const scoreBytes = attentionDecodeScoresBytes(s.nHead, s.maxLen);
  if (s.scores && s.scores.size < scoreBytes)
    throw new HlmError(
      `${label}: the scores scratch needs ${scoreBytes} bytes, "${s.scores.label}" has ${s.scores.size}`,
    );
  const scores = s.scores ?? gpu.buffer(`${label} scores`, scoreBytes);
  if ([s.q.buffer, s.kv.buffer, s.length.buffer, scores].includes(s.out.buffer))
    throw new HlmError(
      `${label}: out must not share a buffer with q, kv, length or scores (WebGPU forbids writable aliasing)`,
    );
  if ([s.q.buffer, s.kv.buffer, s.length.buffer].includes(scores))
    throw new HlmError(`${label}: the scores scratch must be a buffer of its own`);
  const { q, kv, out, length } = s;
  return gpu.dispatch(label, await gpu.kernel('attention_decode', { HD: hd }), {
    bind: { q: q.buffer, kv: kv.buffer, out: out.buffer, scores, lengths: length.buffer },
    params: {
      d: s.d,
      maxLen: s.maxLen,
      offQ: off(q),
      offKV: off(kv),
      offOut: off(out),
      offLen: off(length),
      scale: s.scale ?? 1 / Math.sqrt(hd),
    },
    groups: [s.nHead],
    owned: s.scores ? [] : [scores],
  });
}

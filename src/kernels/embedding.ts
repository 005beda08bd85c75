// Token + learned position embeddings (GPT-2's input), forward and a deterministic backward.
// The backward is a scatter-add with repeated tokens; instead of float atomics the host
// groups the batch's positions by token each step (embeddingBackwardIndex), uploads that
// index into fixed-size buffers (writeEmbeddingIndex), and each distinct token's row is
// then summed by one workgroup in position order.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { buffers, checkSizes, elementGrid, grid, off, type TensorRef } from './types.js';

export interface EmbeddingForwardSpec {
  B: number;
  T: number;
  d: number;
  /** [B, T] token ids, u32 (or i32 ≥ 0). */
  tokens: TensorRef;
  /** wte [V, d] and wpe [P ≥ T, d]: read-only, normally in the one parameter buffer. */
  wte: TensorRef;
  wpe: TensorRef;
  /** [B, T, d] */
  out: TensorRef;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

/** The grouped positions on the GPU, as uploaded by writeEmbeddingIndex. */
export interface EmbeddingIndexRefs {
  /** [capacity] positions grouped by token, increasing within a group. */
  order: TensorRef;
  /** [capacity + 1] group k is order[starts[k] .. starts[k+1]). */
  starts: TensorRef;
  /** [capacity] the distinct tokens, one per group. */
  uniq: TensorRef;
  /** [1] the number of groups this step. */
  count: TensorRef;
}

/** Index buffers allocated by createEmbeddingIndex, with the most positions they hold. */
export interface EmbeddingIndexBuffers extends EmbeddingIndexRefs {
  capacity: number;
}

export interface EmbeddingBackwardSpec {
  B: number;
  T: number;
  d: number;
  /** [B, T, d] */
  dout: TensorRef;
  /** Written each step by writeEmbeddingIndex; must hold B·T positions. */
  index: EmbeddingIndexRefs;
  /** Accumulated: dwte [V, d] += ..., dwpe [P, d] += ... . Must be in the same (gradient) buffer. */
  dwte: TensorRef;
  dwpe: TensorRef;
  label?: string;
  maxGroupsX?: number;
}

export interface EmbeddingIndex {
  order: Uint32Array;
  starts: Uint32Array;
  uniq: Uint32Array;
}

export async function embeddingForward(gpu: Gpu, s: EmbeddingForwardSpec): Promise<Dispatch> {
  const { B, T, d } = s;
  const label = s.label ?? `embedding ${B}x${T}x${d}`;
  checkSizes(label, { B, T, d });
  for (const [name, r] of [
    ['tokens', s.tokens],
    ['wte', s.wte],
    ['wpe', s.wpe],
  ] as const) {
    if (r.buffer === s.out.buffer)
      throw new HlmError(`${label}: out must not share a buffer with ${name} (WebGPU forbids writable aliasing)`);
  }
  const { tokens, wte, wpe, out } = s;
  // 4 elements an invocation where d and the tables' and output's offsets allow.
  const vec4 = d % 4 === 0 && [wte, wpe, out].every((r) => off(r) % 4 === 0);
  const kernel = await gpu.kernel('embedding_forward', { QUANT: false, VEC4: vec4 });
  return gpu.dispatch(label, kernel, {
    bind: buffers({ tokens, wte, wpe, out }),
    params: { n: B * T * d, T, d, offTok: off(tokens), offWte: off(wte), offWpe: off(wpe), offOut: off(out) },
    groups: elementGrid(gpu, kernel, (B * T * d) / (vec4 ? 4 : 1), s.maxGroupsX),
  });
}

/**
 * dwte[v] += Σ_{positions p with token v, in increasing p} dout[p], and dwpe[t] += Σ_b dout[b, t].
 * Two dispatches; the first covers B·T distinct tokens (the capacity) and the workgroups past
 * this step's count return at once, so the dispatches are built once and reused every step.
 */
export async function embeddingBackward(gpu: Gpu, s: EmbeddingBackwardSpec): Promise<Dispatch[]> {
  const { B, T, d } = s;
  const label = s.label ?? `embedding backward ${B}x${T}x${d}`;
  checkSizes(label, { B, T, d });
  if (s.dwte.buffer !== s.dwpe.buffer)
    throw new HlmError(`${label}: dwte and dwpe must be in the same (gradient) buffer`);
  const { order, starts, uniq, count } = s.index;
  for (const [name, r] of [
    ['dout', s.dout],
    ['index.order', order],
    ['index.starts', starts],
    ['index.uniq', uniq],
    ['index.count', count],
  ] as const) {
    if (r.buffer === s.dwte.buffer)
      throw new HlmError(
        `${label}: the gradient buffer must not share a buffer with ${name} (WebGPU forbids writable aliasing)`,
      );
  }
  const n = B * T;
  for (const [name, r, need] of [
    ['order', order, n],
    ['starts', starts, n + 1],
    ['uniq', uniq, n],
  ] as const) {
    const room = r.buffer.size / 4 - (r.offset ?? 0);
    if (room < need) throw new HlmError(`${label}: index.${name} holds ${room} entries, B·T = ${n} needs ${need}`);
  }
  const wte = await scatterAddRows(gpu, {
    n,
    d,
    src: s.dout,
    index: s.index,
    dst: s.dwte,
    label: `${label} wte`,
    maxGroupsX: s.maxGroupsX,
  });
  const wpeKernel = await gpu.kernel('embedding_backward_wpe');
  const wpe = gpu.dispatch(`${label} wpe`, wpeKernel, {
    bind: { dout: s.dout.buffer, grad: s.dwpe.buffer },
    params: { B, T, d, offDout: off(s.dout), offDwpe: off(s.dwpe) },
    groups: elementGrid(gpu, wpeKernel, T * d, s.maxGroupsX),
  });
  return [wte, wpe];
}

export interface ScatterAddSpec {
  /** Index capacity: rows of src (groups past the index's count are skipped). */
  n: number;
  d: number;
  /** [n, d] rows to add. */
  src: TensorRef;
  /** Rows of src grouped by destination row, as written by writeEmbeddingIndex. */
  index: EmbeddingIndexRefs;
  /** dst[uniq[u], :] += Σ src[order[k], :] over group u, in order. */
  dst: TensorRef;
  label?: string;
  maxGroupsX?: number;
  /** Invocations a workgroup (default SCATTER_WG's for the adapter kind); tests try others. */
  wg?: number;
}

/**
 * Invocations a row of the scatter-add. Software: one SIMD group of llvmpipe's, which then reads the row's
 * index entries once instead of once per group.
 */
const SCATTER_WG: Record<'hardware' | 'software', number> = { hardware: 64, software: 8 };

/**
 * Deterministic scatter-add of rows by an index (no atomics): the token-embedding gradient of
 * the input gather, and of the CWT head's target embeddings.
 */
export async function scatterAddRows(gpu: Gpu, s: ScatterAddSpec): Promise<Dispatch> {
  const { n, d } = s;
  const { order, starts, uniq, count } = s.index;
  const label = s.label ?? `scatter-add rows ${n}x${d}`;
  // 4 columns at a time where d and the offsets allow.
  const vec4 = d % 4 === 0 && off(s.src) % 4 === 0 && off(s.dst) % 4 === 0;
  const WG = s.wg ?? SCATTER_WG[gpu.adapter.kind];
  return gpu.dispatch(label, await gpu.kernel('embedding_backward_wte', { VEC4: vec4, WG }), {
    bind: buffers({ dout: s.src, order, starts, uniq, count, grad: s.dst }),
    params: {
      d,
      offDout: off(s.src),
      offDwte: off(s.dst),
      offCount: off(count),
      offOrder: off(order),
      offStarts: off(starts),
      offUniq: off(uniq),
    },
    groups: grid(gpu, n, 1, s.maxGroupsX),
  });
}

/**
 * Positions grouped by token: uniq holds the distinct tokens in increasing order, group k is
 * order[starts[k] .. starts[k+1]) (positions in increasing order), starts has uniq.length + 1
 * entries. With `vocab`, tokens outside [0, vocab) are refused (they would write outside dwte).
 */
export function embeddingBackwardIndex(tokens: ArrayLike<number>, vocab?: number): EmbeddingIndex {
  const n = tokens.length;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const v = tokens[i];
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xffffffff) || (vocab !== undefined && v >= vocab)) {
      throw new HlmError(`embedding: token ${v} at position ${i} is not an id in [0, ${vocab ?? 2 ** 32})`);
    }
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const uniq = Uint32Array.from(counts.keys()).sort();
  const starts = new Uint32Array(uniq.length + 1);
  const next = new Map<number, number>();
  for (let k = 0; k < uniq.length; k++) {
    next.set(uniq[k], starts[k]);
    starts[k + 1] = starts[k] + counts.get(uniq[k])!;
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const v = tokens[i];
    const at = next.get(v)!;
    order[at] = i;
    next.set(v, at + 1);
  }
  return { order, starts, uniq };
}

/** Fixed-size index buffers for batches of up to `capacity` (= B·T) positions. */
export function createEmbeddingIndex(gpu: Gpu, capacity: number, label = 'embedding index'): EmbeddingIndexBuffers {
  if (!(Number.isInteger(capacity) && capacity > 0))
    throw new HlmError(`${label}: capacity must be a positive integer, got ${capacity}`);
  return {
    capacity,
    order: { buffer: gpu.buffer(`${label} order`, capacity * 4), offset: 0 },
    starts: { buffer: gpu.buffer(`${label} starts`, (capacity + 1) * 4), offset: 0 },
    uniq: { buffer: gpu.buffer(`${label} uniq`, capacity * 4), offset: 0 },
    count: { buffer: gpu.buffer(`${label} count`, 4), offset: 0 },
  };
}

export function freeEmbeddingIndex(gpu: Gpu, index: EmbeddingIndexRefs): void {
  gpu.free(index.order.buffer, index.starts.buffer, index.uniq.buffer, index.count.buffer);
}

/** Group this batch's positions by token and upload the index (before the step's submit); returns the host copy. */
export function writeEmbeddingIndex(
  gpu: Gpu,
  index: EmbeddingIndexRefs,
  tokens: ArrayLike<number>,
  vocab?: number,
): EmbeddingIndex {
  const host = embeddingBackwardIndex(tokens, vocab);
  const parts: [string, TensorRef, Uint32Array][] = [
    ['order', index.order, host.order],
    ['starts', index.starts, host.starts],
    ['uniq', index.uniq, host.uniq],
    ['count', index.count, Uint32Array.of(host.uniq.length)],
  ];
  for (const [name, r, data] of parts) {
    const room = r.buffer.size / 4 - (r.offset ?? 0);
    if (room < data.length)
      throw new HlmError(`embedding index: ${name} holds ${room} entries, this batch needs ${data.length}`);
  }
  for (const [, r, data] of parts) gpu.write(r.buffer, data, (r.offset ?? 0) * 4);
  return host;
}

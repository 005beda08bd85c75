// Multi-head self-attention on GPT-2's packed c_attn output, fused (FlashAttention-2): qkv [B, T, 3d]
// is read where it lies (head h's q, k and v are channels h·hd.. of each third of a row) and the
// output [B, T, d] written with the heads side by side, so no permutes; no T×T scores are stored.
//   forward   one dispatch (attention_forward.wgsl): online softmax over blocks of keys; out, and
//             each query's log-sum-exp lse [B, H, T] for the backward.
//   backward  two dispatches: attention_dq.wgsl recomputes each query's weights from lse and
//             writes dq and D = rowsum(dO ∘ O); attention_dkv.wgsl walks, for each key, the
//             queries that see it and writes dk and dv. dqkv [B, T, 3d] is overwritten.
//
// Memory: a layer keeps only lse (B·H·T floats) from its forward to its backward (and reads its own
// out, which the block keeps as c_proj's input); the backward's D (B·H·T) is scratch all layers
// share. Neither grows with T².
//
// qkv may be f16 (packed halves, the mixed-precision copy c_attn wrote): q, k and v are unpacked to f32 as they are
// read, and scores, softmax, lse, out, dout and dqkv stay f32 (dqkv is f32 even then).
//
// Each dispatch binds the caller's tensors together, so what one writes (out, dqkv) must be a
// buffer of its own; what they only read (qkv, out and dout in the backward, lengths) may share
// one buffer.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, isF16, off, offAny, type TensorRef } from './types.js';

export interface AttentionShape {
  /** Batch rows. */
  B: number;
  /** Sequence length. */
  T: number;
  /** Model width; heads are d / nHead wide. */
  d: number;
  nHead: number;
}

/** What one layer keeps from its forward to its backward. */
export interface AttentionBuffers {
  shape: AttentionShape;
  /** Each query's log-sum-exp of its scaled scores [B, H, T] (0 for a query that sees no key). */
  lse: GPUBuffer;
  bytes: number;
}

/** Work space of the backward, shared by every layer. */
export interface AttentionScratch {
  shape: AttentionShape;
  /** D = rowsum(dO ∘ O) of each query [B, H, T]. */
  dsum: GPUBuffer;
  bytes: number;
}

/**
 * How the kernels tile: a workgroup of WG invocations owns WG·QR rows (queries, or keys in the dk/dv pass) of one
 * head, QR an invocation, so that each key (or query) read serves QR rows; the other side is walked BC rows at a
 * time; STAGE copies each such block into workgroup memory first (hardware GPUs), else it is read from the packed
 * rows directly (llvmpipe, where barriers are coroutine switches and workgroup memory is no faster).
 */
export interface AttentionTile {
  WG: number;
  QR: number;
  BC: number;
  STAGE: boolean;
}

/**
 * Per adapter kind. Software: 8 invocations (llvmpipe's SIMD width) of 4 rows each and blocks of 16, the fastest of
 * WG 4-16, QR 1-4 and BC 8-32 on this project's 2-core VM. Hardware: 64 rows share each staged block of 16.
 */
export const ATTENTION_TILES: Record<'hardware' | 'software', AttentionTile> = {
  hardware: { WG: 64, QR: 1, BC: 16, STAGE: true },
  software: { WG: 8, QR: 4, BC: 16, STAGE: false },
};

export interface AttentionSpec extends AttentionShape {
  /** Decoder (key j visible to query i only when j ≤ i) or encoder (all keys). */
  causal: boolean;
  /** Packed c_attn output [B, T, 3d]: f32, or f16 (packed halves, offset in halves). */
  qkv: TensorRef;
  layer: AttentionBuffers;
  /**
   * Key padding mask: B u32 valid lengths (keys j ≥ lengths[b] hidden; above T acts as T). Rows with no visible key
   * output 0.
   */
  lengths?: TensorRef;
  /** Score scale; default 1/√(d / nHead). */
  scale?: number;
  /** Default ATTENTION_TILES[adapter kind]. */
  tile?: AttentionTile;
  label?: string;
}

export interface AttentionForwardSpec extends AttentionSpec {
  /** Output [B, T, d], heads side by side (the input of c_proj). */
  out: TensorRef;
}

export interface AttentionBackwardSpec extends AttentionSpec {
  scratch: AttentionScratch;
  /** The forward's output [B, T, d], as it wrote it. */
  out: TensorRef;
  /** Gradient of out [B, T, d]. */
  dout: TensorRef;
  /** Gradient of qkv [B, T, 3d], overwritten (not accumulated). */
  dqkv: TensorRef;
}

const F32 = 4;
const F16 = 2;

/** Bytes one layer keeps between forward and backward: 4·B·H·T. */
export function attentionBuffersBytes(s: AttentionShape): number {
  return F32 * s.B * s.nHead * s.T;
}

/** Bytes of the backward's shared scratch: 4·B·H·T. */
export function attentionScratchBytes(s: AttentionShape): number {
  return F32 * s.B * s.nHead * s.T;
}

function checkShape(s: AttentionShape, label: string): number {
  for (const [k, v] of Object.entries({ B: s.B, T: s.T, d: s.d, nHead: s.nHead })) {
    if (!Number.isInteger(v) || v < 1) throw new HlmError(`${label}: ${k} must be a positive integer, got ${v}`);
  }
  if (s.d % s.nHead !== 0) throw new HlmError(`${label}: d = ${s.d} is not a multiple of nHead = ${s.nHead}`);
  return s.d / s.nHead;
}

/** A [B, H, T] f32 buffer "label name" for shape s (checked first). */
function perQuery(gpu: Gpu, s: AttentionShape, label: string, name: string) {
  checkShape(s, label);
  const bytes = attentionBuffersBytes(s);
  return { shape: { B: s.B, T: s.T, d: s.d, nHead: s.nHead }, buffer: gpu.buffer(`${label} ${name}`, bytes), bytes };
}

export function createAttentionBuffers(gpu: Gpu, s: AttentionShape & { label?: string }): AttentionBuffers {
  const { shape, buffer, bytes } = perQuery(gpu, s, s.label ?? 'attention', 'lse');
  return { shape, lse: buffer, bytes };
}

export function freeAttentionBuffers(gpu: Gpu, layer: AttentionBuffers): void {
  gpu.free(layer.lse);
}

/** Scratch for the largest shape the layers will run (smaller B or T fit in it too). */
export function createAttentionScratch(gpu: Gpu, s: AttentionShape & { label?: string }): AttentionScratch {
  const { shape, buffer, bytes } = perQuery(gpu, s, s.label ?? 'attention scratch', 'dsum');
  return { shape, dsum: buffer, bytes };
}

export function freeAttentionScratch(gpu: Gpu, scratch: AttentionScratch): void {
  gpu.free(scratch.dsum);
}

/** One layer's buffers (labelled s.label) and a scratch of the same shape, for a lone forward and backward. */
export function createLoneAttention(gpu: Gpu, s: AttentionShape & { label?: string }) {
  const { label, ...shape } = s;
  const layer = createAttentionBuffers(gpu, { ...shape, label });
  const scratch = createAttentionScratch(gpu, shape);
  const free = () => {
    freeAttentionBuffers(gpu, layer);
    freeAttentionScratch(gpu, scratch);
  };
  return { layer, scratch, free };
}

function need(label: string, what: string, buf: GPUBuffer, elements: number, offset = 0, size = F32): void {
  if ((offset + elements) * size > buf.size) {
    throw new HlmError(
      `${label}: ${what} needs ${(offset + elements) * size} bytes from its buffer's start, but "${buf.label}" has ` +
        `${buf.size}`,
    );
  }
}

/** The tile, checked against the adapter's workgroup limits. */
function tileFor(gpu: Gpu, s: AttentionSpec, label: string, hd: number): AttentionTile {
  const tile = s.tile ?? ATTENTION_TILES[gpu.adapter.kind];
  const { WG, QR, BC, STAGE } = tile;
  if (![WG, QR, BC].every((x) => Number.isInteger(x) && x >= 1))
    throw new HlmError(`${label}: tile ${JSON.stringify(tile)} needs WG, QR and BC positive integers`);
  const maxWg = gpu.limits.maxComputeInvocationsPerWorkgroup ?? 256;
  if (WG > maxWg) throw new HlmError(`${label}: WG = ${WG} exceeds this adapter's ${maxWg} invocations a workgroup`);
  // The dk/dv pass stages the most: q and dO (vec4 rows), lse and D of BC queries.
  const shared = STAGE ? 2 * BC * (16 * Math.ceil(hd / 4) + F32) : 0;
  const maxShared = gpu.limits.maxComputeWorkgroupStorageSize ?? 16384;
  if (shared > maxShared)
    throw new HlmError(
      `${label}: tile ${JSON.stringify(tile)} stages ${shared} bytes for heads ${hd} wide; this adapter allows ` +
        `${maxShared} (lower BC)`,
    );
  return tile;
}

/**
 * Checks shapes and sizes, that no tensor lives in the attention's own buffers, and that each written tensor has a
 * buffer of its own (WebGPU forbids binding a buffer writable and again in the same dispatch). Returns hd.
 */
function validate(
  s: AttentionSpec,
  label: string,
  read: [string, TensorRef, number][],
  written: [string, TensorRef, number][],
): number {
  const hd = checkShape(s, label);
  const { B, T, nHead: H } = s;
  need(label, 'layer lse', s.layer.lse, B * H * T);
  const all = [['qkv', s.qkv, 3 * B * T * s.d] as [string, TensorRef, number], ...read, ...written];
  if (s.lengths) all.push(['lengths', s.lengths, B]);
  for (const [name, t] of all.slice(1))
    if (isF16(t)) throw new HlmError(`${label}: ${name} must be f32 (only qkv may be f16), got an f16 tensor`);
  const internal = [s.layer.lse, ...('scratch' in s ? [(s as AttentionBackwardSpec).scratch.dsum] : [])];
  for (const [name, t, n] of all) {
    need(label, name, t.buffer, n, t.offset ?? 0, isF16(t) ? F16 : F32);
    if (internal.includes(t.buffer))
      throw new HlmError(`${label}: ${name} must not live in the attention's own layer or scratch buffers`);
  }
  for (const [wn, w] of written)
    for (const [n, t] of all)
      if (n !== wn && t.buffer === w.buffer)
        throw new HlmError(`${label}: ${wn} must not share a buffer with ${n} (WebGPU forbids writable aliasing)`);
  return hd;
}

/**
 * VEC4 (4 elements a load) needs each head's channels, and every tensor's start (qkv's in halves when f16), on a
 * multiple of 4. F16: qkv is packed halves, read through WGSL's f16 type where the device's f16 kernels are
 * shader-f16 (NATIVE_F16).
 */
function constants(gpu: Gpu, s: AttentionSpec, tile: AttentionTile, hd: number, tensors: TensorRef[]) {
  const vec4 = hd % 4 === 0 && tensors.every((t) => offAny(t) % 4 === 0);
  const F16 = isF16(s.qkv);
  const NATIVE_F16 = F16 && gpu.nativeF16;
  return {
    HD: hd,
    HD4: Math.ceil(hd / 4),
    ...tile,
    CAUSAL: s.causal,
    LENGTHS: !!s.lengths,
    VEC4: vec4,
    F16,
    NATIVE_F16,
  };
}

/** Parameters every pass takes: the shape, the scale and where qkv and lengths start. */
function common(s: AttentionSpec, hd: number) {
  const scale = s.scale ?? 1 / Math.sqrt(hd);
  return { B: s.B, T: s.T, H: s.nHead, d: s.d, scale, offQkv: offAny(s.qkv), offLen: off(s.lengths) };
}

/** One workgroup per WG·QR rows of each (batch row, head). */
function groups(gpu: Gpu, s: AttentionShape, tile: AttentionTile): [number, number] {
  return grid(gpu, s.B * s.nHead * Math.ceil(s.T / (tile.WG * tile.QR)), 1);
}

function lengthsBinding(s: AttentionSpec): { lengths?: GPUBuffer } {
  return s.lengths ? { lengths: s.lengths.buffer } : {};
}

/**
 * out = attention(qkv): one dispatch. Fills layer.lse for the backward. Build once, submit every step;
 * `gpu.release(dispatch)` frees its parameter block.
 */
export async function attentionForward(gpu: Gpu, s: AttentionForwardSpec): Promise<Dispatch> {
  const label = s.label ?? 'attention';
  const hd = validate(s, label, [], [['out', s.out, s.B * s.T * s.d]]);
  const tile = tileFor(gpu, s, label, hd);
  const kernel = await gpu.kernel('attention_forward', constants(gpu, s, tile, hd, [s.qkv, s.out]));
  return gpu.dispatch(label, kernel, {
    bind: { qkv: s.qkv.buffer, out: s.out.buffer, lse: s.layer.lse, ...lengthsBinding(s) },
    params: { ...common(s, hd), offOut: off(s.out) },
    groups: groups(gpu, s, tile),
  });
}

/**
 * dqkv = ∂L/∂qkv given dout = ∂L/∂out, the forward's out and the layer's lse: two dispatches (dq, then dk and dv).
 * qkv and out must hold what the forward saw and wrote. Overwrites scratch.dsum.
 */
export async function attentionBackward(gpu: Gpu, s: AttentionBackwardSpec): Promise<Dispatch[]> {
  const name = s.label ?? 'attention';
  const label = `${name}.bw`;
  const n = s.B * s.T * s.d;
  const hd = validate(
    s,
    name,
    [
      ['out', s.out, n],
      ['dout', s.dout, n],
    ],
    [['dqkv', s.dqkv, 3 * n]],
  );
  need(name, 'scratch dsum', s.scratch.dsum, s.B * s.nHead * s.T);
  const tile = tileFor(gpu, s, name, hd);
  const c = constants(gpu, s, tile, hd, [s.qkv, s.out, s.dout, s.dqkv]);
  const p = { ...common(s, hd), offDout: off(s.dout), offDqkv: off(s.dqkv) };
  const { qkv, out, dout, dqkv } = { qkv: s.qkv.buffer, out: s.out.buffer, dout: s.dout.buffer, dqkv: s.dqkv.buffer };
  const dq = gpu.dispatch(`${label} dq`, await gpu.kernel('attention_dq', c), {
    bind: { qkv, out, dout, lse: s.layer.lse, dsum: s.scratch.dsum, dqkv, ...lengthsBinding(s) },
    params: { ...p, offOut: off(s.out) },
    groups: groups(gpu, s, tile),
  });
  const dkv = gpu.dispatch(`${label} dk dv`, await gpu.kernel('attention_dkv', c), {
    bind: { qkv, dout, lse: s.layer.lse, dsum: s.scratch.dsum, dqkv, ...lengthsBinding(s) },
    params: p,
    groups: groups(gpu, s, tile),
  });
  return [dq, dkv];
}

// Optimizer steps over the whole flat parameter buffer, one dispatch each: AdamW (torch's
// decoupled weight decay and bias-corrected moments) and plain SGD (torch's, no momentum).
// Both multiply each gradient by an optional scale read from a GPU buffer (global-norm
// clipping's, see gradclip.ts), and decay only where a mask built from the parameter layout
// says so (matrices and embeddings, not biases or LayerNorm). An optional skip flag, also read
// on the GPU (step-guard.ts sets it), leaves parameters and moments as they were. The numbers that change per
// step (lr, bias corrections) live in the dispatch's uniform: call setStep before each
// submit; the recorded dispatch itself never changes. A buffer larger than the adapter's
// storage-binding limit (llvmpipe: 128 MiB, less than the `small` preset's parameters) is
// covered by several dispatches, each binding a window of it.
import type { Binding, Dispatch, Gpu } from '../gpu/device.js';
import type { ShaderConstants } from '../gpu/shaders.js';
import { HlmError } from '../errors.js';
import { checkSizes, grid, off, type TensorRef } from './types.js';

/** Elements per bit of the decay mask; the parameter layout aligns every tensor to it. */
export const MASK_BLOCK = 64;

/**
 * The decay mask of a parameter layout (`paramLayout(config)`, or any list of tensors on
 * 64-element boundaries): bit b%32 of word b/32 is set when block b (elements [64b, 64b+64))
 * belongs to a tensor marked `decay`. Upload it as u32 words.
 */
export function decayMask(layout: {
  total: number;
  tensors: readonly { name?: string; offset: number; size: number; decay: boolean }[];
}): Uint32Array {
  const blocks = Math.ceil(layout.total / MASK_BLOCK);
  const mask = new Uint32Array(Math.max(1, Math.ceil(blocks / 32)));
  for (const t of layout.tensors) {
    if (t.offset % MASK_BLOCK !== 0)
      throw new HlmError(`decay mask: tensor ${t.name ?? '?'} starts at ${t.offset}, not a multiple of ${MASK_BLOCK}`);
    if (t.offset + t.size > layout.total)
      throw new HlmError(`decay mask: tensor ${t.name ?? '?'} ends past the buffer's ${layout.total} elements`);
    if (!t.decay) continue;
    for (let b = t.offset / MASK_BLOCK; b < Math.ceil((t.offset + t.size) / MASK_BLOCK); b++)
      mask[b >>> 5] |= 1 << (b & 31);
  }
  return mask;
}

/**
 * The optimizers' workgroups: WG invocations, each stepping PER units (of 4 elements where it can). Software
 * (llvmpipe): one SIMD group of 8 looping over 32 units spends less per element than many one-unit
 * invocations, and reads the scale, the skip flag and the mask word once for all of them; a loop in a
 * workgroup of several SIMD groups costs more than it saves there.
 */
const OPTIMIZER_LAYOUT: Record<'hardware' | 'software', { WG: number; PER: number }> = {
  hardware: { WG: 256, PER: 1 },
  software: { WG: 8, PER: 32 },
};

/** One dispatch's share of an elementwise pass: elements [start, start+count) of the range. */
export interface RangePiece {
  start: number;
  count: number;
  /** Per ref, in order: what to bind and the element offset of the piece's first element inside that binding. */
  binds: { binding: Binding; offset: number }[];
}

/**
 * Split an elementwise pass over `n` elements of each ref into pieces whose bindings fit the
 * adapter's storage-binding limit (or `maxBindingBytes`, lower, for tests). Refs whose whole
 * buffer fits are bound whole; the others get windows starting on the adapter's offset
 * alignment. Pieces start on multiples of `quantum` elements. One piece when all fit.
 */
export function rangePieces(
  gpu: Gpu,
  n: number,
  refs: TensorRef[],
  quantum = 1,
  maxBindingBytes = Infinity,
): RangePiece[] {
  const limit = Math.min(maxBindingBytes, gpu.limits.maxStorageBufferBindingSize ?? Infinity);
  const align = gpu.limits.minStorageBufferOffsetAlignment ?? 256;
  const fits = (r: TensorRef) => r.buffer.size <= limit;
  if (refs.every(fits))
    return [{ start: 0, count: n, binds: refs.map((r) => ({ binding: r.buffer, offset: r.offset ?? 0 })) }];
  const per = Math.floor((limit - align) / 4 / quantum) * quantum;
  if (per < 1)
    throw new HlmError(
      `a storage binding of ${limit} bytes cannot hold ${quantum} elements past a ${align}-byte alignment`,
    );
  const pieces: RangePiece[] = [];
  for (let start = 0; start < n; start += per) {
    const count = Math.min(per, n - start);
    pieces.push({
      start,
      count,
      binds: refs.map((r) => {
        if (fits(r)) return { binding: r.buffer, offset: (r.offset ?? 0) + start };
        const byte = ((r.offset ?? 0) + start) * 4;
        const offset = Math.floor(byte / align) * align;
        return { binding: { buffer: r.buffer, offset, size: byte - offset + count * 4 }, offset: (byte - offset) / 4 };
      }),
    });
  }
  return pieces;
}

/** What training code needs of an optimizer. */
export interface Optimizer {
  /** Usually one; more where a buffer exceeds the adapter's storage-binding limit. */
  readonly dispatches: Dispatch[];
  /** The dispatch when there is only one (throws otherwise): prefer `dispatches`. */
  readonly dispatch: Dispatch;
  /** Write this step's numbers (step counts from 1, including this one) before submitting. */
  setStep(step: number, lr: number): void;
}

interface CommonSpec {
  /** Number of elements of the parameter range. */
  n: number;
  params: TensorRef;
  grads: TensorRef;
  /** u32 words from decayMask (bit per 64 elements, counted from params' offset); default: every element decays. */
  decayMask?: TensorRef;
  /** f32 scalar each gradient is multiplied by (gradClip's scaleOut); default 1. */
  gradScale?: TensorRef;
  /** A buffer whose u32 element 0, when not 0, skips the step: nothing changes (stepGuard's flag). */
  skip?: GPUBuffer;
  weightDecay?: number;
  label?: string;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
  /** Cap on a binding's size below the adapter's; tests lower it to exercise windowed dispatches. */
  maxBindingBytes?: number;
  /** The adapter kind whose workgroup layout to use (default: this adapter's); tests run both. */
  layout?: 'hardware' | 'software';
}

/** Chunks of the range whose gradients are all ±0, flagged on the GPU (gradClip's chunkFlags). */
export interface ZeroChunks {
  /** u32 per `chunk` elements of the range, 0 where the chunk's gradients are all ±0 (then they are not read). */
  flags: TensorRef;
  /** Elements a flag covers (GRADCLIP_CHUNK); a multiple of every workgroup's span. */
  chunk: number;
}

export interface AdamWSpec extends CommonSpec {
  /** First and second moments, same length as params (zeros at the start of training). */
  m: TensorRef;
  v: TensorRef;
  /** Skip reading the gradients of chunks flagged all-zero (the same step, bit for bit). */
  zeroChunks?: ZeroChunks;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** torch.optim.AdamW's default 0.01. */
  weightDecay?: number;
}

export interface SgdSpec extends CommonSpec {
  /** Coupled (L2) decay, torch.optim.SGD's; default 0. */
  weightDecay?: number;
}

function checkCommon(label: string, s: CommonSpec, written: [string, TensorRef][]): void {
  checkSizes(label, { n: s.n });
  const wd = s.weightDecay ?? 0;
  if (!(Number.isFinite(wd) && wd >= 0)) throw new HlmError(`${label}: weightDecay must be ≥ 0, got ${wd}`);
  const read: [string, TensorRef | undefined][] = [
    ['grads', s.grads],
    ['decayMask', s.decayMask],
    ['gradScale', s.gradScale],
    ['skip', s.skip && { buffer: s.skip }],
  ];
  for (let i = 0; i < written.length; i++) {
    for (const [name, r] of [...read, ...written.slice(i + 1)]) {
      if (r && r.buffer === written[i][1].buffer)
        throw new HlmError(
          `${label}: ${written[i][0]} and ${name} must be in different buffers (WebGPU forbids writable aliasing)`,
        );
    }
  }
  for (const [name, r] of [...written, ['grads', s.grads] as [string, TensorRef]]) {
    if (((r.offset ?? 0) + s.n) * 4 > r.buffer.size)
      throw new HlmError(`${label}: ${name} holds fewer than ${s.n} elements past offset ${r.offset ?? 0}`);
  }
  if (
    s.decayMask &&
    ((s.decayMask.offset ?? 0) + Math.ceil(Math.ceil(s.n / MASK_BLOCK) / 32)) * 4 > s.decayMask.buffer.size
  )
    throw new HlmError(`${label}: decayMask is too short for ${s.n} elements`);
}

function checkStep(label: string, step: number, lr: number): void {
  if (!Number.isInteger(step) || step < 1) throw new HlmError(`${label}: step must be an integer ≥ 1, got ${step}`);
  if (!(Number.isFinite(lr) && lr >= 0)) throw new HlmError(`${label}: lr must be a finite number ≥ 0, got ${lr}`);
}

/** One dispatch's share of an optimizer and its parameters that stay the same every step. */
interface Part {
  dispatch: Dispatch;
  fixed: Record<string, number>;
}

/**
 * One dispatch per piece of the range. `big` names the per-element tensors: the shader's binding and its
 * offset parameter. `step` is the first step's parameters (setStep rewrites them).
 */
async function build(
  gpu: Gpu,
  label: string,
  shader: string,
  s: CommonSpec,
  big: [string, string, TensorRef][],
  step: Record<string, number>,
  zero?: ZeroChunks,
): Promise<Part[]> {
  const mask = Boolean(s.decayMask);
  const scale = Boolean(s.gradScale);
  const skip = Boolean(s.skip);
  const refs = big.map(([, , r]) => r);
  // 4 elements an invocation where n and every offset allow (windows start on multiples of 4 then too).
  const vec4 = s.n % 4 === 0 && refs.every((r) => off(r) % 4 === 0);
  const unit = vec4 ? 4 : 1;
  const { WG, PER } = OPTIMIZER_LAYOUT[s.layout ?? gpu.adapter.kind];
  const zeroFlags: ShaderConstants = zero ? { ZERO_FLAGS: true, ZCHUNK: zero.chunk } : { ZERO_FLAGS: false };
  const kernel = await gpu.kernel(shader, { MASK: mask, SCALE: scale, SKIP: skip, VEC4: vec4, WG, PER, ...zeroFlags });
  // A workgroup's units share one word of the mask and one zero flag (lib/optimizer.wgsl): windows start on
  // multiples of them.
  const perGroup = WG * PER * unit;
  if ((32 * MASK_BLOCK) % perGroup !== 0)
    throw new HlmError(`${label}: ${perGroup} elements a workgroup do not divide a mask word's ${32 * MASK_BLOCK}`);
  if (zero && !(Number.isInteger(zero.chunk) && zero.chunk % perGroup === 0))
    throw new HlmError(`${label}: zero flags every ${zero.chunk} elements, not a multiple of ${perGroup}`);
  const pieces = rangePieces(gpu, s.n, refs, perGroup, s.maxBindingBytes);
  return pieces.map((piece, k) => {
    const bind: Record<string, Binding> = {};
    const fixed: Record<string, number> = { n: piece.count, maskBase: piece.start, offMask: off(s.decayMask) };
    fixed.offScale = off(s.gradScale);
    fixed.offFlags = off(zero?.flags);
    big.forEach(([name, offset], i) => {
      bind[name] = piece.binds[i].binding;
      fixed[offset] = piece.binds[i].offset;
    });
    if (mask) bind.mask = s.decayMask!.buffer;
    if (scale) bind.gscale = s.gradScale!.buffer;
    if (skip) bind.skip = s.skip!;
    if (zero) bind.zeroFlags = zero.flags.buffer;
    const name = pieces.length > 1 ? `${label} [${k + 1}/${pieces.length}]` : label;
    const groups = grid(gpu, piece.count / unit, WG * PER, s.maxGroupsX);
    return { dispatch: gpu.dispatch(name, kernel, { bind, params: { ...fixed, ...step }, groups }), fixed };
  });
}

/** An optimizer over a flat range: its dispatches and how a step's numbers become parameters. */
abstract class FlatOptimizer implements Optimizer {
  readonly dispatches: Dispatch[];

  protected constructor(
    private readonly gpu: Gpu,
    private readonly parts: Part[],
    private readonly label: string,
  ) {
    this.dispatches = parts.map((p) => p.dispatch);
  }

  get dispatch(): Dispatch {
    if (this.dispatches.length !== 1)
      throw new HlmError(
        `${this.label} runs as ${this.dispatches.length} dispatches (a buffer exceeds the storage-binding limit): ` +
          'use .dispatches',
      );
    return this.dispatches[0];
  }

  setStep(step: number, lr: number): void {
    checkStep(this.label, step, lr);
    const values = this.stepParams(step, lr);
    for (const part of this.parts) this.gpu.setParams(part.dispatch, { ...part.fixed, ...values });
  }

  /** The parameters that change with the step and the learning rate. */
  protected abstract stepParams(step: number, lr: number): Record<string, number>;
}

interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

function adamWStep(h: AdamWHyper, step: number, lr: number): Record<string, number> {
  // In float64 here, as torch does in Python, then rounded once to f32.
  const bc1 = 1 - h.beta1 ** step;
  return {
    oneMinusBeta1: 1 - h.beta1,
    beta2: h.beta2,
    oneMinusBeta2: 1 - h.beta2,
    eps: h.eps,
    stepSize: lr / bc1,
    bc2Sqrt: Math.sqrt(1 - h.beta2 ** step),
    decayFactor: 1 - lr * h.weightDecay,
  };
}

export class AdamW extends FlatOptimizer {
  private constructor(
    gpu: Gpu,
    parts: Part[],
    readonly hyper: AdamWHyper,
    label: string,
  ) {
    super(gpu, parts, label);
  }

  static async create(gpu: Gpu, s: AdamWSpec): Promise<AdamW> {
    const label = s.label ?? `adamw ${s.n}`;
    const hyper = {
      beta1: s.beta1 ?? 0.9,
      beta2: s.beta2 ?? 0.999,
      eps: s.eps ?? 1e-8,
      weightDecay: s.weightDecay ?? 0.01,
    };
    for (const k of ['beta1', 'beta2'] as const)
      if (!(hyper[k] >= 0 && hyper[k] < 1)) throw new HlmError(`${label}: ${k} must be in [0, 1), got ${hyper[k]}`);
    if (!(hyper.eps >= 0)) throw new HlmError(`${label}: eps must be ≥ 0, got ${hyper.eps}`);
    checkCommon(label, { ...s, weightDecay: hyper.weightDecay }, [
      ['params', s.params],
      ['m', s.m],
      ['v', s.v],
    ]);
    const big: [string, string, TensorRef][] = [
      ['params', 'offP', s.params],
      ['grads', 'offG', s.grads],
      ['mom1', 'offM', s.m],
      ['mom2', 'offV', s.v],
    ];
    if (s.zeroChunks) {
      const z = s.zeroChunks;
      if (z.flags.buffer === s.params.buffer || z.flags.buffer === s.m.buffer || z.flags.buffer === s.v.buffer)
        throw new HlmError(`${label}: zeroChunks.flags must not share a written buffer (params, m, v)`);
      if ((off(z.flags) + Math.ceil(s.n / z.chunk)) * 4 > z.flags.buffer.size)
        throw new HlmError(`${label}: zeroChunks.flags is too short for ${s.n} elements`);
    }
    const parts = await build(gpu, label, 'optimizer_adamw', s, big, adamWStep(hyper, 1, 0), s.zeroChunks);
    return new AdamW(gpu, parts, hyper, label);
  }

  protected stepParams(step: number, lr: number): Record<string, number> {
    return adamWStep(this.hyper, step, lr);
  }
}

export class Sgd extends FlatOptimizer {
  private constructor(
    gpu: Gpu,
    parts: Part[],
    readonly hyper: { weightDecay: number },
    label: string,
  ) {
    super(gpu, parts, label);
  }

  static async create(gpu: Gpu, s: SgdSpec): Promise<Sgd> {
    const label = s.label ?? `sgd ${s.n}`;
    const hyper = { weightDecay: s.weightDecay ?? 0 };
    checkCommon(label, s, [['params', s.params]]);
    const big: [string, string, TensorRef][] = [
      ['params', 'offP', s.params],
      ['grads', 'offG', s.grads],
    ];
    const parts = await build(gpu, label, 'optimizer_sgd', s, big, { negLr: -0, wd: hyper.weightDecay });
    return new Sgd(gpu, parts, hyper, label);
  }

  /** `step` is unused by plain SGD (kept for the common interface) but still checked by setStep. */
  protected stepParams(_step: number, lr: number): Record<string, number> {
    return { negLr: -lr, wd: this.hyper.weightDecay };
  }
}

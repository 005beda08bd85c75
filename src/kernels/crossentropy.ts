// The tied vanilla LM head (objective `ce`): logits = h·wteᵀ over the whole vocabulary,
// softmax cross-entropy against the next tokens, and its gradients into the hidden states and
// the embedding table. The logits are never kept whole. Rows go through in chunks of R:
//   crossentropy_logits  logits of the chunk tile by tile, each folded into an online softmax
//                        state per row (max, Σ exp, target logit, argmax) and written as small
//                        partials; only training (dh or dwte) also stores the chunk's [R, V]
//                        logits, in one scratch buffer every chunk reuses
//     or, training on a software adapter (CrossEntropySpec.forward 'matmul'):
//   logits = h[rows]·wteᵀ                        (matmul into the scratch, in pieces of V that fit a texture)
//     (on a software adapter evaluation takes this forward too, into a scratch all evaluation heads share)
//   crossentropy_rows    per row: the partials merged into lse (or, after the matmul, lse from the
//                        stored row); loss and argmax; with gradients the stored logits ←
//                        (softmax − onehot)·lossScale in place
//   dwte += scratchᵀ·h[rows]                     (matmul, beta 1)
//   dh[rows] = scratch·wte                       (matmul, overwrite)
// Mixed precision: h and wte may be f16 tensors (packed halves); the fused forward unpacks them as it
// reads, the backward products take them as matmul's f16 operands, and everything else (softmax,
// losses, stored logits, dh, dwte) stays f32. The gradients may carry a second GPU scalar, the loss
// scale of dynamic loss scaling, which the step guard changes on the GPU.
// Evaluation (losses and argmax only, e.g. LAMBADA) with the fused forward stores no logits at all; with the matmul
// forward (software adapters' default) it stores one chunk at a time in a scratch of at most CE_SCRATCH_BYTES that
// every evaluation head of the device shares (Gpu.shared: they run one after another). The backward reads
// the stored chunk instead of recomputing it: a recompute would be a fourth product of 2·R·V·d
// FLOPs, and the chunk is bounded (CE_SCRATCH_BYTES). dwte comes before dh within a chunk, so dh
// may overwrite h in place. The loss scale (1 / counted targets) is read from a GPU buffer the
// trainer writes each step, so the list of dispatches is built once and serves every step.
// Nothing here reads back.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { matmul, SOFTWARE_K_SPAN, type MatmulSpec, type MatmulTile } from './matmul.js';
import { isQuantized, rowWords, type WeightRef } from './matmul-q.js';
import { checkSizes, grid, isF16, off, offAny, type TensorRef } from './types.js';

export interface CrossEntropySpec {
  /** Rows (target positions), vocabulary size, model width. */
  N: number;
  V: number;
  d: number;
  /** logits = logitScale · h·wteᵀ (1 / temperature for the CWT head); default 1. */
  logitScale?: number;
  /** Rows per chunk; default: defaultChunkRows(gpu, N, V) with gradients, else all N. */
  chunkRows?: number;
  /** Final hidden states [N, d]: f32, or f16 (dtype 'f16', offset in halves; then dh cannot overwrite it). */
  h: TensorRef;
  /**
   * The tied embedding table [V, d]: f32 (inside the parameter buffer) or an f16 copy (dtype 'f16', offset in halves);
   * or packed (src/kernels/matmul-q.ts), forward only.
   */
  wte: WeightRef;
  /**
   * i32 [N]: the target token of each row; < 0 ignores the row (loss 0, no gradient). A target ≥ V gives a NaN loss and
   * no gradient.
   */
  targets: TensorRef;
  /** f32 [N] out: each row's −log p(target) (0 where ignored). */
  losses: TensorRef;
  /**
   * f32 scalar: the gradient's scale, 1 / (counted targets) for the mean loss. Required with dh or dwte. May sit in
   * `losses`' buffer (outside its N rows).
   */
  lossScale?: TensorRef;
  /**
   * f32 scalar multiplying every gradient on top of lossScale (dynamic loss scaling's scale); losses and argmax are
   * not scaled. Only with dh or dwte. May sit in `losses`' buffer (outside its N rows).
   */
  gradScale?: TensorRef;
  /** f32 [N, d] out: the gradient into h, overwritten. May be h itself (same buffer and offset) when h is f32. */
  dh?: TensorRef;
  /** f32 [V, d]: the gradient into the embedding table, accumulated (+=). */
  dwte?: TensorRef;
  /** u32 [N] out: each row's argmax over the vocabulary (first index on ties). */
  argmax?: TensorRef;
  /**
   * With gradients: a buffer of at least chunkRows·V floats for a chunk's logits; default: one of its own (freed by
   * gpu.release of the dispatches).
   */
  scratch?: GPUBuffer;
  /**
   * How a chunk's logits are computed: 'fused' (crossentropy_logits.wgsl folds them into softmax partials, storing
   * them only for gradients) or 'matmul' (matmul stores them, crossentropy_rows.wgsl reads each row's whole; without
   * gradients into a scratch the device's evaluation heads share); default: defaultForward(gpu). A packed table
   * takes the fused forward.
   */
  forward?: 'fused' | 'matmul';
  label?: string;
}

export interface CrossEntropyHead {
  dispatches: Dispatch[];
  /**
   * The logits scratch: with gradients the caller's or the head's own (which release frees); in evaluation with the
   * matmul forward, the device's shared one.
   */
  scratch?: GPUBuffer;
  chunkRows: number;
}

/** Bound on the logits scratch of a chunk on a software adapter. */
export const CE_SCRATCH_BYTES = 64 * 1024 * 1024;
/**
 * On a hardware GPU (about 640 rows of GPT-2's vocabulary). The dh product of a chunk (M = rows, N = d, K = V) has
 * few output tiles, so split-K (matmul.ts) keeps the GPU busy; without it 328-row chunks ran at 0.25 TFLOP/s on an
 * H200.
 */
export const CE_SCRATCH_BYTES_HARDWARE = 128 * 1024 * 1024;

/**
 * Elements between the stored logits' rows: V rounded up to a multiple of 64, so that the backward products read the
 * rows as vec4s, from textures (rows 256-byte aligned), in matmul's register kernel; llvmpipe's tiled kernel ran
 * GPT-2's dh and dwte (V = 50,257, not a multiple of 4) at a quarter of its speed. The padding never counts
 * (MatmulSpec.ldA); only the gradient pass writes into it, zeros up to the next multiple of 4.
 */
export function logitsStride(V: number): number {
  return Math.ceil(V / 64) * 64;
}

/**
 * Rows per chunk: as many as fit in `budget` bytes (and the adapter's binding and buffer
 * limits), spread evenly over the chunks and rounded up to a multiple of 64 (the matmul
 * tile) when that still fits.
 */
export function defaultChunkRows(
  gpu: Gpu,
  N: number,
  V: number,
  budget = gpu.adapter.kind === 'hardware' ? CE_SCRATCH_BYTES_HARDWARE : CE_SCRATCH_BYTES,
): number {
  const limit = Math.min(
    budget,
    gpu.limits.maxStorageBufferBindingSize ?? Infinity,
    gpu.limits.maxBufferSize ?? Infinity,
  );
  const most = Math.floor(limit / (4 * logitsStride(V)));
  if (most < 1) throw new HlmError(`cross-entropy: one row of ${V} logits does not fit in ${limit} bytes`);
  if (N <= most) return N;
  const chunks = Math.ceil(N / most);
  const even = Math.ceil(N / chunks);
  const rounded = Math.ceil(even / 64) * 64;
  return rounded <= most ? rounded : even;
}

/**
 * On llvmpipe the register matmul (matmul_registers.wgsl, B from a texture) computed GPT-2's logits for 256 rows at
 * about 12 GFLOP/s against the fused forward's 4.4, whose per-invocation loads cannot come from textures (it
 * folds as it goes, and a texture cannot hold 50,257 rows); the extra pass over the stored logits costs far less. On
 * hardware GPUs the fused forward stays: it was tuned there, and it reads the logits back once fewer.
 */
export function defaultForward(gpu: Gpu): 'fused' | 'matmul' {
  return gpu.adapter.kind === 'software' ? 'matmul' : 'fused';
}

/**
 * Column pieces of V for the logits product: each at most the adapter's texture height (so that matmul's register
 * kernel reads that piece of the table from a texture), multiples of 64 but the last, spread evenly.
 */
export function logitsPieces(gpu: Gpu, V: number): [number, number][] {
  const most = Math.max(64, Math.floor((gpu.limits.maxTextureDimension2D ?? 8192) / 64) * 64);
  const count = Math.ceil(V / most);
  const size = Math.ceil(V / count / 64) * 64;
  const pieces: [number, number][] = [];
  for (let v0 = 0; v0 < V; v0 += size) pieces.push([v0, Math.min(V, v0 + size)]);
  return pieces;
}

/** Floating-point operations of the head's matmuls (the softmax is O(N·V) besides). */
export function crossEntropyFlops(
  N: number,
  V: number,
  d: number,
  grads: { dh?: boolean; dwte?: boolean } = {},
): number {
  return 2 * N * V * d * (1 + (grads.dh ? 1 : 0) + (grads.dwte ? 1 : 0));
}

/**
 * The fused forward's tile (crossentropy_logits.wgsl): matmul's for the adapter kind. On llvmpipe the product, not the
 * softmax folded into it, is the cost (dropping the fold saved about a tenth), and every load is a loop over the
 * SIMD lanes whether from a storage buffer or workgroup memory: REGS, each invocation reading its 8×8 block's rows
 * straight from the buffers (no staging, no barriers), took about a fifth less CPU time.
 */
export const CE_TILES: Record<'hardware' | 'software', MatmulTile & { REGS: boolean }> = {
  hardware: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, REGS: false },
  software: { BM: 64, BN: 64, BK: 8, TM: 8, TN: 8, REGS: true },
};
/**
 * Invocations per row of crossentropy_rows.wgsl. On llvmpipe a workgroup's invocations take turns on one thread and
 * every barrier of the tree is a switch between them: 16 (two SIMD groups) took about 0.6× the CPU time of 256 with
 * GPT-2's vocabulary, and a twentieth with the CWT head's 256 columns.
 */
export const CE_ROWS_WG = { hardware: 256, software: 16 };
/** Workgroups the fused forward aims at: each takes a split of the vocabulary for its row tile. */
export const CE_GROUPS = { hardware: 528, software: 32 };

/**
 * How the fused forward cuts a chunk of `rows` rows: `tiles` BN-wide column tiles per workgroup, `splits` workgroups
 * along the vocabulary, and `parts` softmax partials per row (one per split and column group of the tile). On a
 * software adapter a workgroup's loop over its tiles and d stays within llvmpipe's loop limit (SOFTWARE_K_SPAN, as
 * matmul's K loop).
 */
export function logitsPlan(
  kind: 'hardware' | 'software',
  rows: number,
  V: number,
  d: number,
): { tile: (typeof CE_TILES)['software']; tiles: number; splits: number; parts: number; groups: [number, number] } {
  const tile = CE_TILES[kind];
  if (kind === 'software' && d > SOFTWARE_K_SPAN)
    throw new HlmError(`cross-entropy: d = ${d} is past llvmpipe's loop limit (at most ${SOFTWARE_K_SPAN})`);
  const columnTiles = Math.ceil(V / tile.BN);
  const rowTiles = Math.ceil(rows / tile.BM);
  let tiles = Math.ceil(columnTiles / Math.min(columnTiles, Math.max(1, Math.ceil(CE_GROUPS[kind] / rowTiles))));
  if (kind === 'software') tiles = Math.min(tiles, Math.floor(SOFTWARE_K_SPAN / d));
  const splits = Math.ceil(columnTiles / tiles);
  return { tile, tiles, splits, parts: splits * (tile.BN / tile.TN), groups: [splits, rowTiles] };
}

/** The tensor `elements` on (in its own dtype's elements). */
function at(r: TensorRef, elements: number): TensorRef {
  return { ...r, offset: offAny(r) + elements };
}

export async function crossEntropyHead(gpu: Gpu, s: CrossEntropySpec): Promise<CrossEntropyHead> {
  const { N, V, d } = s;
  const label = s.label ?? `cross-entropy ${N}x${V}x${d}`;
  checkSizes(label, { N, V, d });
  const grads = Boolean(s.dh || s.dwte);
  const packed = isQuantized(s.wte) ? s.wte : undefined;
  if (packed && (grads || (s.logitScale ?? 1) !== 1))
    throw new HlmError(`${label}: a packed (${packed.format}) table serves the forward alone, without a logit scale`);
  if (packed && (packed.rows !== V || packed.cols !== d))
    throw new HlmError(`${label}: the packed table is [${packed.rows}, ${packed.cols}], the head needs [${V}, ${d}]`);
  const wte = s.wte as TensorRef;
  if (grads && !s.lossScale) throw new HlmError(`${label}: gradients need a lossScale buffer (1 / counted targets)`);
  if (!grads && s.gradScale) throw new HlmError(`${label}: gradScale scales gradients; give dh or dwte`);
  const refs: [string, TensorRef | undefined][] = [
    ['h', s.h],
    ['wte', s.wte],
    ['targets', s.targets],
    ['losses', s.losses],
    ['lossScale', s.lossScale],
    ['gradScale', s.gradScale],
    ['dh', s.dh],
    ['dwte', s.dwte],
    ['argmax', s.argmax],
  ];
  for (const [name, r] of refs.slice(2))
    if (isF16(r)) throw new HlmError(`${label}: ${name} must be f32 (only h and wte may be f16)`);
  const hHalf = isF16(s.h);
  const eHalf = !packed && isF16(wte);
  if (packed && s.forward === 'matmul')
    throw new HlmError(`${label}: a packed (${packed.format}) table takes the fused forward, not matmul's`);
  const fused = Boolean(packed) || (s.forward ?? defaultForward(gpu)) === 'fused';
  // Logits are stored for gradients, and for the row pass after the matmul forward.
  const stores = grads || !fused;
  if (!grads && s.scratch)
    throw new HlmError(
      `${label}: without gradients no logits are stored in a caller's scratch (the matmul forward uses the ` +
        `device's shared one); give no scratch`,
    );
  const R = s.chunkRows ?? (stores ? defaultChunkRows(gpu, N, V) : N);
  checkSizes(label, { chunkRows: R });
  const maxBinding = gpu.limits.maxStorageBufferBindingSize ?? Infinity;
  let scratch: GPUBuffer | undefined;
  const own: GPUBuffer[] = [];
  const ld = logitsStride(V);
  if (stores) {
    const bytes = R * ld * 4;
    if (s.scratch && s.scratch.size < bytes)
      throw new HlmError(
        `${label}: scratch holds ${s.scratch.size} bytes; ${R} rows of ${V} logits (${ld} apart) need ${bytes}`,
      );
    if (bytes > maxBinding)
      throw new HlmError(
        `${label}: ${R} rows of ${V} logits (${bytes} bytes) exceed this adapter's ${maxBinding}-byte storage ` +
          `binding; use fewer chunkRows`,
      );
    if (s.scratch) scratch = s.scratch;
    else if (grads) {
      scratch = gpu.buffer(`${label} logits`, bytes);
      own.push(scratch);
    } else scratch = gpu.shared('cross-entropy evaluation logits', bytes);
  }

  for (const [name, r] of refs)
    if (scratch && r?.buffer === scratch)
      throw new HlmError(`${label}: ${name} must not share the logits scratch buffer`);
  const conflict = (a: string, ra: TensorRef | undefined, b: string, rb: TensorRef | undefined) => {
    if (ra && rb && ra.buffer === rb.buffer)
      throw new HlmError(`${label}: ${a} and ${b} must be in different buffers (WebGPU forbids writable aliasing)`);
  };
  conflict('losses', s.losses, 'targets', s.targets);
  conflict('argmax', s.argmax, 'targets', s.targets);
  conflict('argmax', s.argmax, 'losses', s.losses);
  conflict('argmax', s.argmax, 'lossScale', s.lossScale);
  conflict('argmax', s.argmax, 'gradScale', s.gradScale);
  conflict('gradScale', s.gradScale, 'dh', s.dh); // a later chunk's gradients would read the scale overwritten
  conflict('gradScale', s.gradScale, 'dwte', s.dwte);
  conflict('dh', s.dh, 'wte', s.wte);
  conflict('dwte', s.dwte, 'h', s.h);
  conflict('dwte', s.dwte, 'wte', s.wte);
  if (s.dh && s.dh.buffer === s.h.buffer && hHalf)
    throw new HlmError(`${label}: dh (f32) cannot overwrite an f16 h; give dh a buffer of its own`);
  if (s.dh && s.dh.buffer === s.h.buffer && (s.dh.offset ?? 0) !== (s.h.offset ?? 0))
    throw new HlmError(`${label}: dh may overwrite h only at the same offset`);
  const inLosses = (name: string, r: TensorRef | undefined) => {
    if (!grads || r?.buffer !== s.losses.buffer) return false;
    const o = off(r);
    const lo = off(s.losses);
    if (o >= lo && o < lo + N) throw new HlmError(`${label}: ${name} lies inside the losses`);
    return true;
  };
  const scaleInLosses = inLosses('lossScale', s.lossScale);
  const gradScaleInLosses = inLosses('gradScale', s.gradScale);

  const kind = gpu.adapter.kind;
  const plan = logitsPlan(kind, R, V, d);
  const tail = N % R ? logitsPlan(kind, N % R, V, d) : plan;
  const stats = fused
    ? gpu.buffer(`${label} softmax partials`, Math.max(plan.parts * R, tail.parts * (N % R)) * 16)
    : undefined;
  if (stats) own.push(stats);
  const variant = {
    VEC: !packed && !hHalf && !eHalf && d % 4 === 0 && offAny(s.h) % 4 === 0 && offAny(wte) % 4 === 0,
    PACKED: Boolean(packed),
    H_HALF: hHalf,
    E_HALF: eHalf,
    NATIVE_F16: (hHalf || eHalf) && gpu.nativeF16,
    ...(packed ? { F16: packed.format === 'f16', INT8: packed.format === 'int8', Q4: packed.format === 'q4' } : {}),
    STORE: grads,
    ARGMAX: Boolean(s.argmax),
  };
  const logitsKernel = fused ? await gpu.kernel('crossentropy_logits', { ...plan.tile, ...variant }) : undefined;
  const scaleBinding = grads && !scaleInLosses;
  const gradScaleBinding = Boolean(s.gradScale) && !gradScaleInLosses;
  const rowsKernel = await gpu.kernel('crossentropy_rows', {
    WG: CE_ROWS_WG[kind],
    GRAD: grads,
    ARGMAX: Boolean(s.argmax),
    SCALE_BINDING: scaleBinding,
    GRAD_SCALE: Boolean(s.gradScale),
    GRAD_SCALE_BINDING: gradScaleBinding,
    GRAD_SCALE_IN_LOSSES: gradScaleInLosses,
    FROM_LOGITS: !fused,
  });
  const dispatches: Dispatch[] = [];
  const alpha = s.logitScale ?? 1;
  for (let r0 = 0; r0 < N; r0 += R) {
    const rows = Math.min(R, N - r0);
    const part = `${label} rows ${r0}..${r0 + rows}`;
    const h = at(s.h, r0 * d);
    const targets = at(s.targets, r0);
    const rowPlan = rows === R ? plan : tail;
    const product = async (what: string, p: Omit<MatmulSpec, 'alpha' | 'label'>) =>
      dispatches.push(...(await matmul(gpu, { ...p, alpha, label: `${part} ${what}` })));
    if (logitsKernel && stats) {
      dispatches.push(
        gpu.dispatch(`${part} logits`, logitsKernel, {
          bind: {
            H: s.h.buffer,
            ...(packed ? { W: packed.buffer } : { E: wte.buffer }),
            targets: s.targets.buffer,
            stats,
            ...(scratch ? { logits: scratch } : {}),
          },
          params: {
            rows,
            V,
            d,
            tiles: rowPlan.tiles,
            offH: offAny(h),
            offE: packed ? 0 : offAny(wte),
            offLogits: 0,
            ldLogits: ld,
            offTargets: off(targets),
            offStats: 0,
            alpha,
            offQ: packed?.offset ?? 0,
            offS: packed?.scales ?? 0,
            rowWords: packed ? rowWords(packed.format, d) : 0,
          },
          groups: rowPlan.groups,
        }),
      );
    } else {
      for (const [v0, v1] of logitsPieces(gpu, V)) {
        const what = v1 - v0 < V ? `logits ${v0}..${v1}` : 'logits';
        await product(what, {
          M: rows,
          N: v1 - v0,
          K: d,
          transB: true,
          a: h,
          b: at(wte, v0 * d),
          c: { buffer: scratch!, offset: v0 },
          ldC: ld,
        });
      }
    }
    const bind: Record<string, GPUBuffer> = { targets: s.targets.buffer, losses: s.losses.buffer };
    if (stats) bind.stats = stats;
    if (scaleBinding) bind.lossScale = s.lossScale!.buffer;
    if (gradScaleBinding) bind.gradScale = s.gradScale!.buffer;
    if (s.argmax) bind.amax = s.argmax.buffer;
    if (scratch) bind.logits = scratch;
    dispatches.push(
      gpu.dispatch(`${part} softmax`, rowsKernel, {
        bind,
        params: {
          rows,
          V,
          parts: rowPlan.parts,
          offStats: 0,
          offTargets: off(targets),
          offLosses: off(s.losses) + r0,
          offScale: off(s.lossScale),
          offArgmax: off(s.argmax) + r0,
          offLogits: 0,
          ldLogits: ld,
          nanBits: 0x7fc00000,
          offGradScale: off(s.gradScale),
        },
        groups: grid(gpu, rows, 1),
      }),
    );
    if (!scratch) continue;
    const logits = { buffer: scratch };
    if (s.dwte)
      await product('dwte', { M: V, N: d, K: rows, transA: true, ldA: ld, beta: 1, a: logits, b: h, c: s.dwte });
    if (s.dh) await product('dh', { M: rows, N: d, K: V, ldA: ld, a: logits, b: wte, c: at(s.dh, r0 * d) });
  }
  dispatches[dispatches.length - 1].owned.push(...own);
  return { dispatches, scratch, chunkRows: R };
}

export interface LossMeanSpec {
  /** Number of per-row losses. */
  N: number;
  losses: TensorRef;
  /**
   * f32 scalar multiplying the sum (1 / counted targets gives the mean loss); without it, out is the plain sum. May sit
   * in `out`'s buffer or `losses`'.
   */
  lossScale?: TensorRef;
  /** f32 scalar out. */
  out: TensorRef;
  /** out += instead of out = (a loss over several micro-batches). */
  accumulate?: boolean;
  label?: string;
}

/** out = lossScale · Σ losses[0..N): the batch's mean loss as one scalar on the GPU. */
export async function lossMean(gpu: Gpu, s: LossMeanSpec): Promise<Dispatch> {
  const label = s.label ?? `loss mean ${s.N}`;
  checkSizes(label, { N: s.N });
  if (s.out.buffer === s.losses.buffer)
    throw new HlmError(`${label}: out must not share a buffer with losses (WebGPU forbids writable aliasing)`);
  const inOut = s.lossScale?.buffer === s.out.buffer;
  if (inOut && (s.lossScale!.offset ?? 0) === (s.out.offset ?? 0))
    throw new HlmError(`${label}: out would overwrite the loss scale it reads`);
  const binding = Boolean(s.lossScale) && !inOut;
  const kernel = await gpu.kernel('crossentropy_mean', {
    ACCUM: Boolean(s.accumulate),
    SCALE_IN_OUT: inOut,
    SCALE_BINDING: binding,
  });
  return gpu.dispatch(label, kernel, {
    bind: { losses: s.losses.buffer, out: s.out.buffer, ...(binding ? { lossScale: s.lossScale!.buffer } : {}) },
    params: { n: s.N, offLosses: off(s.losses), offOut: off(s.out), offScale: off(s.lossScale) },
    groups: [1],
  });
}

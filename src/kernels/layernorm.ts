// LayerNorm over the last dimension (PyTorch's definition, GPT-2's eps 1e-5), forward and
// backward. The backward is one dispatch (two when the parameter sums run in several row blocks):
// it accumulates into dx (the residual stream's gradient) and into the parameter gradients, with
// the column sums over rows done in a fixed order (no atomics).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { buffers, elementGrid, grid, off, type TensorRef } from './types.js';

export interface LayerNormForwardSpec {
  rows: number;
  cols: number;
  eps: number;
  x: TensorRef;
  /** weight and bias: read-only, normally in the one parameter buffer. */
  weight: TensorRef;
  bias: TensorRef;
  out: TensorRef;
  /** Per-row statistics [rows] saved for the backward (may share one buffer, at different offsets). */
  mean: TensorRef;
  rstd: TensorRef;
  label?: string;
  /** Default layerNormLayout(adapter kind, cols). */
  layout?: LayerNormLayout;
  /** Cap on workgroups along x (default: the adapter's limit); tests lower it to exercise the fold into y. */
  maxGroupsX?: number;
}

export interface LayerNormBackwardSpec {
  rows: number;
  cols: number;
  dout: TensorRef;
  x: TensorRef;
  weight: TensorRef;
  mean: TensorRef;
  rstd: TensorRef;
  /** Accumulated: dx += ∂L/∂x. */
  dx: TensorRef;
  /** Accumulated: dweight += Σ_rows dout·x̂, dbias += Σ_rows dout. Must be in the same buffer (the gradient buffer). */
  dweight: TensorRef;
  dbias: TensorRef;
  label?: string;
  /** Rows per block of the parameter-gradient sums (default: one block up to 1024 rows, else at most 64 blocks). */
  rowsPerBlock?: number;
  layout?: LayerNormLayout;
  maxGroupsX?: number;
}

/** How the kernels lay rows out: ROWS rows a workgroup, TPR invocations a row (a power of two). */
export interface LayerNormLayout {
  ROWS: number;
  TPR: number;
}

/**
 * Software: a row a workgroup of 8 invocations (llvmpipe's SIMD width), whose lanes then load side by side in one
 * row; measured on 64 to 768 columns, that beats a row an invocation (8 rows a workgroup, no barrier, lanes a row
 * apart) barriers and all. Hardware: a row a workgroup, as wide as the row needs (32-256 invocations).
 */
export function layerNormLayout(kind: 'hardware' | 'software', cols: number): LayerNormLayout {
  if (kind === 'software') return { ROWS: 1, TPR: 8 };
  let TPR = 32;
  while (TPR < 256 && TPR < cols) TPR *= 2;
  return { ROWS: 1, TPR };
}

function checkLayout(label: string, l: LayerNormLayout): LayerNormLayout {
  if (!(Number.isInteger(l.ROWS) && l.ROWS >= 1 && Number.isInteger(Math.log2(l.TPR))))
    throw new HlmError(`${label}: layout ${JSON.stringify(l)} needs ROWS ≥ 1 and TPR a power of two`);
  return l;
}

/** 4 floats a load when the rows and every tensor's start are on multiples of 4. */
function vec4(cols: number, tensors: TensorRef[]): boolean {
  return cols % 4 === 0 && tensors.every((t) => off(t) % 4 === 0);
}

function checkShape(label: string, rows: number, cols: number): void {
  if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(cols) && cols > 0))
    throw new HlmError(`${label}: rows and cols must be positive integers, got ${rows} x ${cols}`);
}

/** Buffers written by a dispatch must not be any of the buffers it reads (WebGPU forbids writable aliasing). */
function checkDistinct(label: string, written: [string, TensorRef][], read: [string, TensorRef][]): void {
  for (const [wn, w] of written) {
    for (const [rn, r] of read)
      if (w.buffer === r.buffer)
        throw new HlmError(`${label}: ${wn} must not share a buffer with ${rn} (WebGPU forbids writable aliasing)`);
  }
  for (let i = 0; i < written.length; i++) {
    for (let j = i + 1; j < written.length; j++) {
      if (written[i][1].buffer === written[j][1].buffer)
        throw new HlmError(`${label}: ${written[i][0]} and ${written[j][0]} must be separate buffers`);
    }
  }
}

export async function layerNormForward(gpu: Gpu, s: LayerNormForwardSpec): Promise<Dispatch> {
  const { rows, cols } = s;
  const label = s.label ?? `layernorm ${rows}x${cols}`;
  checkShape(label, rows, cols);
  if (!(s.eps >= 0)) throw new HlmError(`${label}: eps must be a non-negative number, got ${s.eps}`);
  const statsShared = s.mean.buffer === s.rstd.buffer;
  if (statsShared && Math.abs((s.mean.offset ?? 0) - (s.rstd.offset ?? 0)) < rows)
    throw new HlmError(`${label}: mean and rstd overlap in their buffer`);
  checkDistinct(
    label,
    [['out', s.out], ['mean', s.mean], ...(statsShared ? [] : [['rstd', s.rstd] as [string, TensorRef]])],
    [
      ['x', s.x],
      ['weight', s.weight],
      ['bias', s.bias],
    ],
  );
  const layout = checkLayout(label, s.layout ?? layerNormLayout(gpu.adapter.kind, cols));
  const { x, weight, bias, out, mean, rstd } = s;
  const kernel = await gpu.kernel('layernorm_forward', {
    ...layout,
    VEC4: vec4(cols, [x, weight, bias, out]),
    STATS_SHARED: statsShared,
  });
  return gpu.dispatch(label, kernel, {
    bind: buffers({ x, weight, bias, out, meanOut: mean, ...(statsShared ? {} : { rstdOut: rstd }) }),
    params: {
      rows,
      cols,
      eps: s.eps,
      offX: off(x),
      offW: off(weight),
      offB: off(bias),
      offOut: off(out),
      offMean: off(mean),
      offRstd: off(rstd),
    },
    groups: grid(gpu, rows, layout.ROWS, s.maxGroupsX),
  });
}

/**
 * The row blocking of the parameter-gradient sums: one block up to 1024 rows (no second dispatch), else blocks of
 * ≥ 128 rows, at most 64 of them.
 */
export function layerNormBlocks(rows: number, rowsPerBlock?: number): { rowsPerBlock: number; blocks: number } {
  const per = rowsPerBlock ?? (rows <= 1024 ? rows : Math.max(128, Math.ceil(rows / 64)));
  if (!(Number.isInteger(per) && per > 0))
    throw new HlmError(`layernorm: rowsPerBlock must be a positive integer, got ${per}`);
  return { rowsPerBlock: per, blocks: Math.ceil(rows / per) };
}

/**
 * dx += ∂L/∂x, dweight += Σ_rows dout·x̂, dbias += Σ_rows dout: one dispatch, two when the rows are summed in several
 * blocks (then into a scratch buffer the first dispatch owns, freed by gpu.release).
 */
export async function layerNormBackward(gpu: Gpu, s: LayerNormBackwardSpec): Promise<Dispatch[]> {
  const { rows, cols } = s;
  const label = s.label ?? `layernorm backward ${rows}x${cols}`;
  checkShape(label, rows, cols);
  if (s.dweight.buffer !== s.dbias.buffer)
    throw new HlmError(`${label}: dweight and dbias must be in the same (gradient) buffer`);
  const dW = s.dweight.offset ?? 0;
  const dB = s.dbias.offset ?? 0;
  if (Math.abs(dW - dB) < cols) throw new HlmError(`${label}: dweight and dbias overlap in their buffer`);
  const reads: [string, TensorRef][] = [
    ['dout', s.dout],
    ['x', s.x],
    ['weight', s.weight],
    ['mean', s.mean],
    ['rstd', s.rstd],
  ];
  checkDistinct(
    label,
    [
      ['dx', s.dx],
      ['dweight', s.dweight],
    ],
    reads,
  );
  const layout = checkLayout(label, s.layout ?? layerNormLayout(gpu.adapter.kind, cols));
  const { rowsPerBlock, blocks } = layerNormBlocks(rows, s.rowsPerBlock);
  const { dout, x, weight, mean, rstd, dx } = s;
  const v4 = vec4(cols, [dout, x, weight, dx]);
  const units = v4 ? cols / 4 : cols;
  const chunks = Math.ceil(units / (layout.TPR * layout.ROWS));
  const rowGroups = Math.ceil(rows / layout.ROWS);
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (blocks * chunks > maxWg * maxWg)
    throw new HlmError(`${label}: ${blocks} row blocks are too many workgroups; raise rowsPerBlock`);
  const direct = blocks === 1;
  const kernel = await gpu.kernel('layernorm_backward', { ...layout, VEC4: v4, DIRECT: direct });
  // Direct: the sums go straight into the gradient buffer; otherwise into partial sums, one row per block.
  const partial = direct ? undefined : gpu.buffer(`${label} partial sums`, blocks * 2 * cols * 4);
  const main = gpu.dispatch(label, kernel, {
    bind: { ...buffers({ dout, x, weight, meanIn: mean, rstdIn: rstd, dx }), out: partial ?? s.dweight.buffer },
    params: {
      rows,
      cols,
      rowGroups,
      chunks,
      blocks,
      rowsPerBlock,
      offDout: off(dout),
      offX: off(x),
      offW: off(weight),
      offDx: off(dx),
      offMean: off(mean),
      offRstd: off(rstd),
      offDW: dW,
      offDB: dB,
    },
    groups: grid(gpu, Math.max(rowGroups, blocks * chunks), 1, s.maxGroupsX),
    owned: partial ? [partial] : [],
  });
  if (!partial) return [main];
  const sum = await gpu.kernel('layernorm_dparams_sum');
  const sumDispatch = gpu.dispatch(`${label} dparams sum`, sum, {
    bind: { partial, grad: s.dweight.buffer },
    params: { cols, blocks, offDW: dW, offDB: dB },
    groups: elementGrid(gpu, sum, 2 * cols, s.maxGroupsX),
  });
  return [main, sumDispatch];
}

// LayerNorm over the last dimension (PyTorch's definition, GPT-2's eps 1e-5), forward and
// backward. The backward accumulates into dx (the residual stream's gradient) and into the
// parameter gradients, with the column sums over rows done in a fixed order (no atomics).
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { grid, packParams, type TensorRef } from './types.js';

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
  /** Rows per block of the parameter-gradient sums (default: one block up to 256 rows, else at most 64 blocks). */
  rowsPerBlock?: number;
  maxGroupsX?: number;
}

/** Power-of-two workgroup for one-row-per-workgroup kernels: no wider than the row needs. */
function rowWorkgroup(cols: number): number {
  let wg = 32;
  while (wg < 256 && wg < cols) wg *= 2;
  return wg;
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
  const WG = rowWorkgroup(cols);
  const pipeline = await gpu.pipeline('layernorm_forward', { WG, STATS_SHARED: statsShared });
  const uniform = gpu.uniform(
    `${label} params`,
    packParams([
      ['u32', rows],
      ['u32', cols],
      ['f32', s.eps],
      ['u32', 0],
      ['u32', s.x.offset ?? 0],
      ['u32', s.weight.offset ?? 0],
      ['u32', s.bias.offset ?? 0],
      ['u32', s.out.offset ?? 0],
      ['u32', s.mean.offset ?? 0],
      ['u32', s.rstd.offset ?? 0],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  const bindings = [
    s.x.buffer,
    s.weight.buffer,
    s.bias.buffer,
    s.out.buffer,
    uniform,
    s.mean.buffer,
    ...(statsShared ? [] : [s.rstd.buffer]),
  ];
  return gpu.dispatch(label, pipeline, bindings, grid(gpu, rows, 1, s.maxGroupsX), [uniform]);
}

const CX = 32; // matches CX in layernorm_dparams.wgsl
const SUM_WG = 256; // matches WG in layernorm_dparams_sum.wgsl

/**
 * The row blocking of the parameter-gradient sums: one block up to 256 rows, else blocks of ≥ 128 rows, at most 64 of
 * them.
 */
export function layerNormBlocks(rows: number, rowsPerBlock?: number): { rowsPerBlock: number; blocks: number } {
  const per = rowsPerBlock ?? (rows <= 256 ? rows : Math.max(128, Math.ceil(rows / 64)));
  if (!(Number.isInteger(per) && per > 0))
    throw new HlmError(`layernorm: rowsPerBlock must be a positive integer, got ${per}`);
  return { rowsPerBlock: per, blocks: Math.ceil(rows / per) };
}

/**
 * dx += ∂L/∂x, dweight += Σ_rows dout·x̂, dbias += Σ_rows dout. Two dispatches (input gradient,
 * parameter gradients), three when the rows are summed in several blocks; the parameter sums
 * use a scratch buffer the dispatch owns (freed by gpu.release).
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

  const WG = rowWorkgroup(cols);
  const dxPipe = await gpu.pipeline('layernorm_backward', { WG });
  const dxParams = gpu.uniform(
    `${label} dx params`,
    packParams([
      ['u32', rows],
      ['u32', cols],
      ['u32', 0],
      ['u32', 0],
      ['u32', s.dout.offset ?? 0],
      ['u32', s.x.offset ?? 0],
      ['u32', s.weight.offset ?? 0],
      ['u32', s.dx.offset ?? 0],
      ['u32', s.mean.offset ?? 0],
      ['u32', s.rstd.offset ?? 0],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  const dxDispatch = gpu.dispatch(
    `${label} dx`,
    dxPipe,
    [s.dout.buffer, s.x.buffer, s.weight.buffer, s.mean.buffer, s.rstd.buffer, s.dx.buffer, dxParams],
    grid(gpu, rows, 1, s.maxGroupsX),
    [dxParams],
  );

  const { rowsPerBlock, blocks } = layerNormBlocks(rows, s.rowsPerBlock);
  const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension ?? 65535;
  if (blocks > maxWg)
    throw new HlmError(`${label}: ${blocks} row blocks exceed ${maxWg} workgroups; raise rowsPerBlock`);
  const direct = blocks === 1;
  const pPipe = await gpu.pipeline('layernorm_dparams', { DIRECT: direct });
  const pParams = gpu.uniform(
    `${label} dparams params`,
    packParams([
      ['u32', rows],
      ['u32', cols],
      ['u32', rowsPerBlock],
      ['u32', 0],
      ['u32', s.dout.offset ?? 0],
      ['u32', s.x.offset ?? 0],
      ['u32', s.mean.offset ?? 0],
      ['u32', s.rstd.offset ?? 0],
      ['u32', dW],
      ['u32', dB],
      ['u32', 0],
      ['u32', 0],
    ]),
  );
  const pReads = [s.dout.buffer, s.x.buffer, s.mean.buffer, s.rstd.buffer];
  const pGroups: [number, number] = [Math.ceil(cols / CX), blocks];
  if (direct) {
    return [
      dxDispatch,
      gpu.dispatch(`${label} dparams`, pPipe, [...pReads, s.dweight.buffer, pParams], pGroups, [pParams]),
    ];
  }
  const partial = gpu.buffer(`${label} partial sums`, blocks * 2 * cols * 4);
  const partialDispatch = gpu.dispatch(`${label} dparams`, pPipe, [...pReads, partial, pParams], pGroups, [
    pParams,
    partial,
  ]);
  const sumPipe = await gpu.pipeline('layernorm_dparams_sum');
  const sumParams = gpu.uniform(
    `${label} dparams sum params`,
    packParams([
      ['u32', cols],
      ['u32', blocks],
      ['u32', dW],
      ['u32', dB],
    ]),
  );
  const sumDispatch = gpu.dispatch(
    `${label} dparams sum`,
    sumPipe,
    [partial, s.dweight.buffer, sumParams],
    grid(gpu, 2 * cols, SUM_WG, s.maxGroupsX),
    [sumParams],
  );
  return [dxDispatch, partialDispatch, sumDispatch];
}

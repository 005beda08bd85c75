// --precision: which operands the products of training read. f32 everywhere, or f16 copies of the
// weights and activations with f32 master weights, optimizer state and accumulation (mixed
// precision, src/model/gpt2.ts), with loss scaling (src/kernels/step-guard.ts). `auto` picks the
// fastest path hlm has for the adapter. The f16 tensors are halves two to a u32 word either way;
// the kernels read them through WGSL's f16 type where the device has shader-f16 (Gpu.f16Kernels),
// else unpack them with core WGSL's unpack2x16float, and compute in f32; products of two f16
// operands run on subgroup matrices (tensor cores) where the device has them and experimental
// features are on. On the adapters measured so far (llvmpipe, lavapipe; no GPU yet) every f16 path
// is slower than f32, the subgroup-matrix one included (lavapipe emulates the matrices), so auto
// stays f32 until a GPU measurement says otherwise.
import { HlmError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { log } from '../log.js';
import { precisionPaths } from '../gpu/precision.js';
import type { Precision } from '../model/gpt2.js';
import { checkLossScaling, type LossScaling } from '../kernels/step-guard.js';

export const PRECISIONS = ['f32', 'f16', 'auto'] as const;
export type PrecisionChoice = (typeof PRECISIONS)[number];

/** PyTorch's GradScaler defaults: start at 2^16, double after 2000 steps without an overflow. */
export const DEFAULT_LOSS_SCALE = 65536;
export const DEFAULT_LOSS_SCALE_GROWTH = 2000;

export interface PrecisionOptions {
  precision?: PrecisionChoice;
  /** A fixed loss scale (f16 only); default dynamic. */
  lossScale?: number;
  /** Dynamic loss scaling: applied steps in a row before the scale doubles. */
  lossScaleGrowth?: number;
}

export interface ResolvedPrecision {
  precision: Precision;
  /** Loss scaling, with f16. */
  lossScaling?: LossScaling;
  /** Why this precision (logged, and kept in results). */
  reason: string;
}

/** The precision a run trains in, given the flags and the adapter. */
export function resolvePrecision(gpu: Gpu, o: PrecisionOptions): ResolvedPrecision {
  const asked = o.precision ?? 'auto';
  const precision: Precision = asked === 'auto' ? 'f32' : asked;
  const usable = precisionPaths(gpu.adapter)
    .filter((p) => p.usable)
    .map((p) => p.path);
  const reason =
    asked === 'auto'
      ? `--precision auto: f32 on the ${gpu.adapter.kind} adapter ${gpu.adapter.device || gpu.adapter.description} ` +
        `(usable paths: ${usable.join(', ')}; no f16 path has been measured faster than f32 on any adapter yet: ` +
        'shader-f16 and packed-f16 do f32 arithmetic and add a rounding pass per operand, and subgroup matrices ' +
        'have only run on lavapipe, which emulates them)'
      : asked === 'f16'
        ? `--precision f16, ${gpu.f16Kernels} kernels`
        : `--precision ${asked}`;
  if (precision === 'f32') {
    if (o.lossScale !== undefined)
      throw new HlmError(`--loss-scale applies to --precision f16; this run trains in f32 (${reason})`);
    return { precision, reason };
  }
  const lossScaling: LossScaling =
    o.lossScale !== undefined
      ? { scale: o.lossScale, growth: 0 }
      : { scale: DEFAULT_LOSS_SCALE, growth: o.lossScaleGrowth ?? DEFAULT_LOSS_SCALE_GROWTH };
  checkLossScaling(lossScaling);
  return { precision, lossScaling, reason };
}

/** resolvePrecision, logged. */
export function choosePrecision(gpu: Gpu, o: PrecisionOptions): ResolvedPrecision {
  const r = resolvePrecision(gpu, o);
  const scaling = r.lossScaling
    ? r.lossScaling.growth
      ? `, dynamic loss scale from ${r.lossScaling.scale} (doubling after ${r.lossScaling.growth} steps)`
      : `, loss scale fixed at ${r.lossScaling.scale}`
    : '';
  log.info(`precision ${r.precision}${scaling} (${r.reason})`);
  return r;
}

/** The trainer's options of a resolved precision. */
export function precisionOf(r: ResolvedPrecision): { precision: Precision; lossScaling?: LossScaling } {
  return { precision: r.precision, lossScaling: r.lossScaling };
}

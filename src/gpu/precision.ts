// The precision paths of an adapter: which of hlm's ways of computing it can run, and which hlm has kernels for.
//   f32              float32 storage and arithmetic: every adapter.
//   packed-f16       f16 values two to a u32 (core WGSL pack2x16float/unpack2x16float), f32 arithmetic: every adapter.
//   shader-f16       WGSL's f16 type (`enable f16`): adapters with the shader-f16 feature. The same f16 tensors as
//                    packed-f16, read as vec4<f16> instead of unpacked from u32 words; f32 arithmetic
//                    (Gpu.f16Kernels picks it wherever the device has the feature).
//   subgroup-matrix  f16 products on subgroup matrices (Chromium's experimental subgroup matrices: tensor cores;
//                    they hold f16 through `enable f16`, so shader-f16 too), f32 sums: adapters reporting a
//                    configuration of f16 components with f32 results and a fixed subgroup size, when
//                    HLM_EXPERIMENTAL=subgroup-matrix lets hlm ask Dawn for experimental features. Only the products
//                    of two f16 operands change (src/wgsl/matmul_subgroup.wgsl); the other kernels read f16 as
//                    shader-f16 does.
// `hlm devices` lists them; --precision auto logs what it picks from them.
import { experimentalEnabled, type AdapterSummary } from './adapters.js';

export const PRECISION_PATHS = ['f32', 'packed-f16', 'shader-f16', 'subgroup-matrix'] as const;
export type PrecisionPathName = (typeof PRECISION_PATHS)[number];

/** The paths hlm has kernels for. */
export const IMPLEMENTED_PATHS: readonly PrecisionPathName[] = ['f32', 'packed-f16', 'shader-f16', 'subgroup-matrix'];

export interface PrecisionPath {
  path: PrecisionPathName;
  /** Whether the adapter (with the environment's settings) can run it. */
  supported: boolean;
  /** Whether hlm has kernels for it. */
  implemented: boolean;
  /** supported and implemented: hlm can train this way on this adapter. */
  usable: boolean;
  /** Why it is supported or not, in words. */
  reason: string;
}

/** A subgroup-matrix configuration as Dawn reports it (GPUSubgroupMatrixConfig). */
export interface MatrixConfig {
  componentType?: unknown;
  resultComponentType?: unknown;
  M?: unknown;
  N?: unknown;
  K?: unknown;
}

function describe(c: MatrixConfig): string {
  return `${c.M}x${c.N}x${c.K} ${c.componentType}->${c.resultComponentType}`;
}

/** The f16 configuration with f32 results that hlm's subgroup-matrix kernel uses (the first one reported). */
export function f16MatrixConfig(
  summary: Pick<AdapterSummary, 'subgroupMatrixConfigs'>,
): { M: number; N: number; K: number } | undefined {
  const c = (summary.subgroupMatrixConfigs as MatrixConfig[]).find(
    (c) => typeof c === 'object' && c !== null && c.componentType === 'f16' && c.resultComponentType === 'f32',
  );
  return c && { M: Number(c.M), N: Number(c.N), K: Number(c.K) };
}

/**
 * The paths of `PRECISION_PATHS` for an adapter, in that order. `experimental` (default: HLM_EXPERIMENTAL names
 * subgroup-matrix) says whether hlm may use experimental features at all.
 */
export function precisionPaths(
  summary: Pick<AdapterSummary, 'features' | 'subgroupMatrixConfigs' | 'subgroupMinSize' | 'subgroupMaxSize'>,
  o: { experimental?: boolean } = {},
): PrecisionPath[] {
  const experimental = o.experimental ?? experimentalEnabled();
  const f16 = summary.features.includes('shader-f16');
  const f16Matrices = (summary.subgroupMatrixConfigs as MatrixConfig[]).filter(
    (c) => typeof c === 'object' && c !== null && c.componentType === 'f16',
  );
  const fixed = summary.subgroupMinSize > 0 && summary.subgroupMinSize === summary.subgroupMaxSize;
  const matrixProblems = [
    f16Matrices.length ? '' : 'no subgroup-matrix configuration with f16 components',
    !f16Matrices.length || f16MatrixConfig(summary) ? '' : 'no f16 configuration with f32 results',
    fixed || !f16Matrices.length
      ? ''
      : `subgroup size not fixed (${summary.subgroupMinSize} to ${summary.subgroupMaxSize}): hlm's kernel ` +
        'needs a workgroup to be exactly one subgroup',
    f16 ? '' : 'no shader-f16 feature',
    experimental ? '' : 'experimental features are off: HLM_EXPERIMENTAL=subgroup-matrix turns them on',
  ].filter(Boolean);
  const support: Record<PrecisionPathName, [boolean, string]> = {
    f32: [true, 'core WebGPU'],
    'packed-f16': [true, 'core WGSL pack2x16float/unpack2x16float'],
    'shader-f16': [f16, f16 ? 'the adapter has the shader-f16 feature' : 'the adapter lacks the shader-f16 feature'],
    'subgroup-matrix': [
      matrixProblems.length === 0,
      matrixProblems.length ? matrixProblems.join('; ') : `f16 configurations ${f16Matrices.map(describe).join(', ')}`,
    ],
  };
  return PRECISION_PATHS.map((path) => {
    const [supported, reason] = support[path];
    const implemented = IMPLEMENTED_PATHS.includes(path);
    return { path, supported, implemented, usable: supported && implemented, reason };
  });
}

/** One line for a path: `shader-f16       adapter no   hlm no   the adapter lacks ...; hlm has no kernels ...`. */
export function precisionPathLine(p: PrecisionPath): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no ');
  const kernels = p.implemented ? '' : '; hlm has no kernels for it yet';
  return `${p.path.padEnd(16)} adapter ${yes(p.supported)}  hlm ${yes(p.implemented)}  ${p.reason}${kernels}`;
}

// The device's measured peaks, which `hlm bench` divides kernel throughputs by: an FMA-bound
// kernel (FLOP/s) and a copy kernel (bytes/s). Both are checked by tests to compute what
// their work counts claim.
import type { Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { elementGrid } from './types.js';

const CHAINS = 8; // vec4 chains per invocation in peak_fma.wgsl

export interface PeakFmaSpec {
  /** Invocations, each writing one float of out. */
  n: number;
  /** FMA iterations per chain (llvmpipe stops a loop after 65,535 iterations). */
  iters: number;
  m?: number;
  c?: number;
  /** f32 [n]: each invocation's sum of its chains. */
  out: GPUBuffer;
}

export const FMA_DEFAULTS = { m: 0.9999, c: 1e-4 };

export function peakFmaFlops(s: Pick<PeakFmaSpec, 'n' | 'iters'>): number {
  return s.n * s.iters * CHAINS * 4 * 2;
}

export async function peakFma(gpu: Gpu, s: PeakFmaSpec): Promise<Dispatch> {
  const label = `peak fma ${s.n}x${s.iters}`;
  if (!(Number.isInteger(s.n) && s.n > 0 && Number.isInteger(s.iters) && s.iters > 0 && s.iters < 65536))
    throw new HlmError(`${label}: n must be a positive integer and iters in 1..65535`);
  if (s.out.size < s.n * 4) throw new HlmError(`${label}: out holds fewer than ${s.n} floats`);
  const kernel = await gpu.kernel('peak_fma');
  return gpu.dispatch(label, kernel, {
    bind: { out: s.out },
    params: { n: s.n, iters: s.iters, m: s.m ?? FMA_DEFAULTS.m, c: s.c ?? FMA_DEFAULTS.c },
    groups: elementGrid(gpu, kernel, s.n),
  });
}

/** What peak_fma.wgsl writes for invocation i, in float64. */
export function peakFmaReference(i: number, iters: number, m = FMA_DEFAULTS.m, c = FMA_DEFAULTS.c): number {
  const s = Math.fround((i % 1024) / 1024);
  let sum = 0;
  for (let j = 0; j < CHAINS * 4; j++) {
    let x = s + 0.01 * j;
    for (let k = 0; k < iters; k++) x = x * m + c;
    sum += x;
  }
  return sum;
}

export interface PeakCopySpec {
  /** vec4s copied. */
  n4: number;
  src: GPUBuffer;
  dst: GPUBuffer;
  /** Most vec4s a dispatch binds (default: the adapter's storage binding limit); tests lower it. */
  maxChunk?: number;
}

export function peakCopyBytes(n4: number): number {
  return 2 * 16 * n4;
}

/**
 * The copy's dispatches: one per chunk that fits a storage binding (the bench's 256 MiB is past lavapipe's 128 MiB
 * limit), each binding its byte range of src and dst; chunks are multiples of 16 vec4s (256 bytes, WebGPU's binding
 * offset alignment).
 */
export async function peakCopy(gpu: Gpu, s: PeakCopySpec): Promise<Dispatch[]> {
  const label = `peak copy ${s.n4} vec4`;
  if (!(Number.isInteger(s.n4) && s.n4 > 0)) throw new HlmError(`${label}: n4 must be a positive integer`);
  if (s.src === s.dst) throw new HlmError(`${label}: src and dst must be different buffers`);
  if (s.src.size < s.n4 * 16 || s.dst.size < s.n4 * 16)
    throw new HlmError(`${label}: src and dst need ${s.n4 * 16} bytes`);
  const limit = s.maxChunk ?? Math.floor((gpu.limits.maxStorageBufferBindingSize ?? 134217728) / 16);
  const chunk = Math.max(16, Math.floor(limit / 16) * 16);
  const kernel = await gpu.kernel('peak_copy');
  const out: Dispatch[] = [];
  for (let first = 0; first < s.n4; first += chunk) {
    const n = Math.min(chunk, s.n4 - first);
    const range = (buffer: GPUBuffer) => ({ buffer, offset: 16 * first, size: 16 * n });
    out.push(
      gpu.dispatch(s.n4 > chunk ? `${label} from ${first}` : label, kernel, {
        bind: { src: range(s.src), dst: range(s.dst) },
        params: { n },
        groups: elementGrid(gpu, kernel, n),
      }),
    );
  }
  return out;
}

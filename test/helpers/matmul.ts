// One matmul on the GPU against float64 (src/reference/matmul.ts), for the matmul tests: fresh random operands at
// the given offsets and strides, C accumulated with beta, and the epilogue (a bias, a residual and GELU, each at an
// odd offset in its buffer). An operand may be packed f16 (f16A / f16B): its values are then the f16-rounded draws,
// which the reference multiplies too. Every element around an operand (its neighbours, batch gaps) is NaN, so a
// read outside it shows. With ldC, C's rows (and the residual's and GELU output's) are padded, and the padding of C
// must come back untouched.
import { expectClose, type makeRandom } from './check.js';
import type { Gpu } from '../../src/gpu/device.js';
import { matmul, registerPlan, type MatmulSpec } from '../../src/kernels/matmul.js';
import { matmul as matmulRef, matmulEpilogue } from '../../src/reference/matmul.js';
import { f16Bits, roundF16 } from '../../src/util/f16.js';

/** [transA, transB], all four. */
export const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

export interface MatmulCase {
  transA?: boolean;
  transB?: boolean;
  f16A?: boolean;
  f16B?: boolean;
  batch?: number;
  alpha?: number;
  beta?: number;
  /** Element offsets (in halves for an f16 operand). */
  offA?: number;
  offB?: number;
  offC?: number;
  /** Elements between stored rows of A and B (default: the row's length); the padding is NaN. */
  ldA?: number;
  ldB?: number;
  /** Elements between rows of C, the residual and the GELU output (default N). */
  ldC?: number;
  /** Batch strides of A and B (default packed; 0 broadcasts). */
  strideA?: number;
  strideB?: number;
  tile?: MatmulSpec['tile'];
  splitK?: number;
  kernel?: MatmulSpec['kernel'];
  bias?: boolean;
  residual?: boolean;
  gelu?: boolean;
  /** The register plan this product must get (checked before it runs). */
  plan?: ReturnType<typeof registerPlan>;
  /** A shader that must run it. */
  file?: 'matmul' | 'matmul_registers' | 'matmul_subgroup';
}

type Random = ReturnType<typeof makeRandom>;

/**
 * n elements (items `stride` apart, `size` each, in rows `ld` apart of which the first `len` count; stride 0: one
 * item) in a buffer from `offset` on, NaN elsewhere.
 */
function operand(
  gpu: Gpu,
  rand: Random,
  n: number,
  size: number,
  stride: number,
  offset: number,
  f16: boolean,
  rows: { len: number; ld: number },
) {
  const live = (i: number) => {
    const j = stride === 0 ? i : i % stride;
    return j < size && j % rows.ld < rows.len;
  };
  const values = Float32Array.from(rand.uniform(n), (v, i) => (!live(i) ? NaN : f16 ? roundF16(v) : v));
  if (!f16) {
    const data = new Float32Array(offset + n + 3).fill(NaN);
    data.set(values, offset);
    return { values, buffer: gpu.upload('operand', data) };
  }
  const words = new Uint32Array(Math.ceil((offset + n) / 2) + 2).fill(0x7e007e00); // NaN halves
  values.forEach((v, i) => {
    const h = offset + i;
    words[h >> 1] = (words[h >> 1] & ~(0xffff << (16 * (h & 1)))) | (f16Bits(v) << (16 * (h & 1)));
  });
  return { values, buffer: gpu.upload('operand f16', words) };
}

/** Runs the product and fails (NaN included) past `tol` relative error (1e-5: the f32 products' and sums'). */
export async function checkMatmul(gpu: Gpu, rand: Random, M: number, N: number, K: number, o: MatmulCase, tol = 1e-5) {
  const batch = o.batch ?? 1;
  const [offA, offB, offC] = [o.offA ?? 0, o.offB ?? 0, o.offC ?? 0];
  const rowsA = { len: o.transA ? M : K, ld: o.ldA ?? (o.transA ? M : K) };
  const rowsB = { len: o.transB ? K : N, ld: o.ldB ?? (o.transB ? K : N) };
  const itemA = (o.transA ? K : M) * rowsA.ld;
  const itemB = (o.transB ? N : K) * rowsB.ld;
  const strideA = o.strideA ?? itemA;
  const strideB = o.strideB ?? itemB;
  const a = operand(gpu, rand, (batch - 1) * strideA + itemA, itemA, strideA, offA, o.f16A ?? false, rowsA);
  const b = operand(gpu, rand, (batch - 1) * strideB + itemB, itemB, strideB, offB, o.f16B ?? false, rowsB);
  // The reference takes packed rows: the padding dropped (batch items then len·rows apart).
  const packed = (x: Float32Array, stride: number, item: number, r: { len: number; ld: number }) => {
    if (r.ld === r.len) return { values: x, stride };
    const items = stride === 0 ? 1 : batch;
    const out = new Float32Array(items * (item / r.ld) * r.len);
    for (let bi = 0; bi < items; bi++)
      for (let row = 0; row < item / r.ld; row++)
        for (let c = 0; c < r.len; c++) out[(bi * (item / r.ld) + row) * r.len + c] = x[bi * stride + row * r.ld + c];
    return { values: out, stride: stride === 0 ? 0 : (item / r.ld) * r.len };
  };
  const refA = packed(a.values, strideA, itemA, rowsA);
  const refB = packed(b.values, strideB, itemB, rowsB);
  // C, the residual and the GELU output as stored (rows ldC apart), and their live elements packed.
  const ldC = o.ldC ?? N;
  const sizeC = batch * M * ldC;
  const live = <T extends Float32Array>(x: T): Float32Array =>
    ldC === N ? x : Float32Array.from({ length: batch * M * N }, (_, i) => x[Math.floor(i / N) * ldC + (i % N)]);
  const c0 = rand.uniform(offC + sizeC);
  const bias = rand.uniform(N + 3);
  const res = rand.uniform(sizeC + 5);
  const C = gpu.upload('C', c0);
  const Bias = gpu.upload('bias', bias);
  const Res = gpu.upload('residual', res);
  const G = gpu.buffer('gelu', (sizeC + 7) * 4);
  const spec: MatmulSpec = {
    M,
    N,
    K,
    batch,
    transA: o.transA,
    transB: o.transB,
    alpha: o.alpha,
    beta: o.beta,
    a: { buffer: a.buffer, offset: offA, dtype: o.f16A ? 'f16' : 'f32' },
    b: { buffer: b.buffer, offset: offB, dtype: o.f16B ? 'f16' : 'f32' },
    c: { buffer: C, offset: offC },
    ldA: o.ldA,
    ldB: o.ldB,
    ldC: o.ldC,
    strideA: o.strideA,
    strideB: o.strideB,
    tile: o.tile,
    splitK: o.splitK,
    kernel: o.kernel,
    bias: o.bias ? { buffer: Bias, offset: 3 } : undefined,
    residual: o.residual ? { buffer: Res, offset: 5 } : undefined,
    gelu: o.gelu ? { buffer: G, offset: 7 } : undefined,
  };
  try {
    if (o.plan) expect(registerPlan(gpu, spec)).toEqual(o.plan);
    const d = await matmul(gpu, spec);
    if (o.file) expect(d.map((x) => x.kernel.iface.file)).toContain(`src/wgsl/${o.file}.wgsl`);
    await gpu.run(d);
    gpu.release(...d);
    const stored = await gpu.readF32(C, offC, sizeC);
    const got = live(stored);
    const gotGelu = o.gelu ? live(await gpu.readF32(G, 7, sizeC)) : undefined;
    let touched = 0;
    for (let i = 0; i < sizeC; i++) if (i % ldC >= N && !Object.is(stored[i], c0[offC + i])) touched++;
    if (touched) throw new Error(`matmul ${M}x${N}x${K}, ldC ${ldC}: ${touched} elements of C's row padding written`);
    const product = matmulRef(refA.values, refB.values, M, N, K, o.transA ?? false, o.transB ?? false, {
      batch,
      alpha: o.alpha,
      beta: o.beta,
      C: live(c0.subarray(offC, offC + sizeC)),
      strideA: refA.stride,
      strideB: refB.stride,
    });
    const want = matmulEpilogue(product, N, {
      bias: o.bias ? bias.subarray(3) : undefined,
      residual: o.residual ? live(res.subarray(5, 5 + sizeC)) : undefined,
      gelu: o.gelu,
    });
    const what = `matmul ${M}x${N}x${K} ${JSON.stringify({ ...o, plan: undefined })}`;
    expectClose(got, want.pre, tol, what);
    if (gotGelu) expectClose(gotGelu, want.gelu!, tol, `${what}: GELU`);
  } finally {
    gpu.free(a.buffer, b.buffer, C, Bias, Res, G);
  }
}

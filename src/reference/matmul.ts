// General matrix multiply, the shape every GEMM kernel is checked against:
//   C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b]
// row-major, op(X) = Xᵀ when the trans flag is set. A is M×K (K×M when transA), B is K×N
// (N×K when transB). Batch b of A starts at b·strideA (default M·K; 0 shares one matrix
// across the batch, as a weight is shared across attention heads), likewise B. The output
// and the C added to it are packed [batch, M, N].
import { gelu } from './gelu.js';
import { type Vec, expectDims, expectLength } from './shapes.js';

export interface MatmulOptions {
  batch?: number;
  alpha?: number;
  beta?: number;
  /** Added as beta·C; packed [batch, M, N]. Without it beta is ignored. */
  C?: Vec;
  strideA?: number;
  strideB?: number;
}

function layout(M: number, N: number, K: number, opts: MatmulOptions, A: Vec, B: Vec) {
  const batch = opts.batch ?? 1;
  const strideA = opts.strideA ?? M * K;
  const strideB = opts.strideB ?? K * N;
  expectDims({ M, N, K, batch, strideA, strideB });
  // Strided batches may be views into a longer buffer, so only a minimum length is required.
  const needA = batch > 0 ? (batch - 1) * strideA + M * K : 0;
  const needB = batch > 0 ? (batch - 1) * strideB + K * N : 0;
  if (A.length < needA) throw new RangeError(`matmul: A has ${A.length} elements, needs ${needA}`);
  if (B.length < needB) throw new RangeError(`matmul: B has ${B.length} elements, needs ${needB}`);
  if (opts.C !== undefined) expectLength('matmul C', opts.C, batch * M * N);
  return { batch, strideA, strideB, alpha: opts.alpha ?? 1, beta: opts.beta ?? 0 };
}

/** Offset of op(A)[m,k] inside one batch of A. */
const idxA = (m: number, k: number, M: number, K: number, transA: boolean) => (transA ? k * M + m : m * K + k);
/** Offset of op(B)[k,n] inside one batch of B. */
const idxB = (k: number, n: number, N: number, K: number, transB: boolean) => (transB ? n * K + k : k * N + n);

export function matmul(
  A: Vec,
  B: Vec,
  M: number,
  N: number,
  K: number,
  transA = false,
  transB = false,
  opts: MatmulOptions = {},
): Float64Array {
  const { batch, strideA, strideB, alpha, beta } = layout(M, N, K, opts, A, B);
  const out = new Float64Array(batch * M * N);
  for (let b = 0; b < batch; b++) {
    const oa = b * strideA;
    const ob = b * strideB;
    const oc = b * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A[oa + idxA(m, k, M, K, transA)] * B[ob + idxB(k, n, N, K, transB)];
        out[oc + m * N + n] = alpha * s + (opts.C !== undefined ? beta * opts.C[oc + m * N + n] : 0);
      }
    }
  }
  return out;
}

/**
 * Gradients of matmul for the upstream gradient dOut (packed [batch, M, N]). dA and dB have
 * A's and B's lengths and layouts; with a shared (stride 0) or overlapping operand the
 * batches' contributions add up. dC = beta·dOut is returned when opts.C was given.
 */
export function matmulBackward(
  dOut: Vec,
  ...args: Parameters<typeof matmul>
): { dA: Float64Array; dB: Float64Array; dC?: Float64Array } {
  const [A, B, M, N, K, transA = false, transB = false, opts = {}] = args;
  const { batch, strideA, strideB, alpha, beta } = layout(M, N, K, opts, A, B);
  expectLength('matmul dOut', dOut, batch * M * N);
  const dA = new Float64Array(A.length);
  const dB = new Float64Array(B.length);
  for (let b = 0; b < batch; b++) {
    const oa = b * strideA;
    const ob = b * strideB;
    const oc = b * M * N;
    // d op(A)[m,k] = alpha · Σ_n dOut[m,n] · op(B)[k,n]
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += dOut[oc + m * N + n] * B[ob + idxB(k, n, N, K, transB)];
        dA[oa + idxA(m, k, M, K, transA)] += alpha * s;
      }
    }
    // d op(B)[k,n] = alpha · Σ_m op(A)[m,k] · dOut[m,n]
    for (let k = 0; k < K; k++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let m = 0; m < M; m++) s += A[oa + idxA(m, k, M, K, transA)] * dOut[oc + m * N + n];
        dB[ob + idxB(k, n, N, K, transB)] += alpha * s;
      }
    }
  }
  if (opts.C === undefined) return { dA, dB };
  return { dA, dB, dC: Float64Array.from(dOut, (g) => beta * g) };
}

/**
 * The matmul epilogue (src/wgsl/lib/matmul_epilogue.wgsl) on a product's output `out` (packed [batch, M, N]):
 * pre = out + bias[n] + residual (laid out like out), and gelu(pre) when asked.
 */
export function matmulEpilogue(
  out: Vec,
  N: number,
  opts: { bias?: Vec; residual?: Vec; gelu?: boolean },
): { pre: Float64Array; gelu?: Float64Array } {
  expectDims({ N });
  if (opts.residual !== undefined) expectLength('matmul residual', opts.residual, out.length);
  const pre = Float64Array.from(
    out,
    (v, i) => v + (opts.bias ? opts.bias[i % N] : 0) + (opts.residual ? opts.residual[i] : 0),
  );
  return opts.gelu ? { pre, gelu: gelu(pre) } : { pre };
}

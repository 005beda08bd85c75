// Batched matrix product of two f16 operands on subgroup matrices (Chromium's experimental subgroup matrices: tensor
// cores on NVIDIA, VK_KHR_cooperative_matrix on lavapipe), f32 sums: C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b],
// written through lib/matmul_epilogue.wgsl. Row-major; A is M x K (K x M when TRANS_A), B is K x N (N x K when
// TRANS_B); A and B are halves (offsets, strides and ld in halves), C and the epilogue's tensors f32.
//
// A workgroup is one subgroup (the host sets SG to the adapter's subgroup size, which it checks is fixed): the
// offsets given to subgroupMatrixLoad and subgroupMatrixStore must be uniform across the workgroup, so they come from
// constants and loop counters only, and several subgroups could not each take their own tile. The workgroup's
// invocations stage a BM x BK tile of op(A) and a BK x BN tile of op(B) in workgroup memory, row-major, whatever
// the transposes, zero outside the matrices (so every shape works, not only multiples of the matrix size), and the
// subgroup multiplies them as TM x TN result matrices of SM x SN, SK values of k a multiply. The results go through
// workgroup memory to the epilogue, which each invocation applies to its share of the tile's elements.

enable f16;
enable chromium_experimental_subgroup_matrix;
//#include lib/matmul_epilogue.wgsl

const C_VEC4: bool = false; // (the epilogue's scalar stores)
const SM: u32 = 8u;  // the configuration's rows of a left and a result matrix
const SN: u32 = 8u;  // columns of a right and a result matrix
const SK: u32 = 8u;  // columns of a left, rows of a right matrix
const TM: u32 = 4u;  // result matrices along M
const TN: u32 = 4u;  // and along N
const KT: u32 = 4u;  // multiplies per staged tile
const SG: u32 = 8u;  // invocations a workgroup: the subgroup size
const TRANS_A: bool = false;
const TRANS_B: bool = false;

const BM: u32 = TM * SM;
const BN: u32 = TN * SN;
const BK: u32 = KT * SK;

struct Params {
  M: u32, N: u32, K: u32, ep: u32,
  offA: u32, offB: u32, offC: u32, ldA: u32,
  ldB: u32, strideA: u32, strideB: u32, strideC: u32,
  alpha: f32, beta: f32, offBias: u32, offR: u32,
  offG: u32, ldC: u32,
}

@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> As: array<f16, BM * BK>; // op(A)[m0 + i][k0 + k] at i·BK + k
var<workgroup> Bs: array<f16, BK * BN>; // op(B)[k0 + k][n0 + j] at k·BN + j
var<workgroup> Cs: array<f32, BM * BN>; // the tile's sums, row-major

// Stage op(A)'s tile, each invocation reading along A's contiguous dimension (m with TRANS_A, else k).
fn stageA(base: u32, m0: u32, k0: u32, tid: u32) {
  for (var e = tid; e < BM * BK; e += SG) {
    var i = e / BK;
    var k = e % BK;
    if (TRANS_A) {
      i = e % BM;
      k = e / BM;
    }
    var v = f16(0.0);
    if (m0 + i < p.M && k0 + k < p.K) {
      if (TRANS_A) { v = A[base + (k0 + k) * p.ldA + m0 + i]; } else { v = A[base + (m0 + i) * p.ldA + k0 + k]; }
    }
    As[i * BK + k] = v;
  }
}

// Stage op(B)'s tile, reading along B's contiguous dimension (k with TRANS_B, else n).
fn stageB(base: u32, n0: u32, k0: u32, tid: u32) {
  for (var e = tid; e < BK * BN; e += SG) {
    var k = e / BN;
    var j = e % BN;
    if (TRANS_B) {
      k = e % BK;
      j = e / BK;
    }
    var v = f16(0.0);
    if (n0 + j < p.N && k0 + k < p.K) {
      if (TRANS_B) { v = B[base + (n0 + j) * p.ldB + k0 + k]; } else { v = B[base + (k0 + k) * p.ldB + n0 + j]; }
    }
    Bs[k * BN + j] = v;
  }
}

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let baseA = p.offA + wg.z * p.strideA;
  let baseB = p.offB + wg.z * p.strideB;
  var acc = array<subgroup_matrix_result<f32, SN, SM>, TM * TN>();
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    stageA(baseA, m0, k0, tid);
    stageB(baseB, n0, k0, tid);
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      for (var j = 0u; j < TN; j++) {
        let r = subgroupMatrixLoad<subgroup_matrix_right<f16, SN, SK>, row_major>(&Bs, kk * SK * BN + j * SN, BN);
        for (var i = 0u; i < TM; i++) {
          let l = subgroupMatrixLoad<subgroup_matrix_left<f16, SK, SM>, row_major>(&As, i * SM * BK + kk * SK, BK);
          acc[i * TN + j] = subgroupMatrixMultiplyAccumulate(l, r, acc[i * TN + j]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var t = 0u; t < TM * TN; t++) {
    subgroupMatrixStore<row_major>(&Cs, (t / TN) * SM * BN + (t % TN) * SN, acc[t], BN);
  }
  workgroupBarrier();
  let baseC = p.offC + wg.z * p.strideC;
  for (var e = tid; e < BM * BN; e += SG) {
    let m = m0 + e / BN;
    let n = n0 + e % BN;
    if (m < p.M && n < p.N) { finish(baseC + m * p.ldC + n, n, Cs[e]); }
  }
}

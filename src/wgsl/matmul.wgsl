// Batched, strided matrix product: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b].
// Row-major; A is M x K (K x M when TRANS_A), B is K x N (N x K when TRANS_B).
//
// Each workgroup computes a BM x BN tile of C; each invocation a TM x TN register block.
// Per BK-slice of K, the workgroup stages A and B tiles in workgroup memory, stored
// k-major (As[k][m], Bs[k][n]) whatever the transposes, so the inner loop is the same
// for all four combinations. Global loads are vec4 along the contiguous dimension when
// the host found that dimension, the offsets and the batch strides divisible by 4
// (VEC_A / VEC_B); otherwise scalar. Out-of-range elements load as zero.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const TRANS_A: bool = false;
const TRANS_B: bool = false;

const WG_X: u32 = BN / TN;
const WG_Y: u32 = BM / TM;
const THREADS: u32 = WG_X * WG_Y;

// The K loop runs over [kBegin, kEnd): the host splits long K into several dispatches on
// llvmpipe, which silently stops any invocation after 65,535 loop iterations.
struct Params {
  M: u32, N: u32, K: u32, kBegin: u32,
  offA: u32, offB: u32, offC: u32, _pad1: u32,
  strideA: u32, strideB: u32, strideC: u32, _pad2: u32,
  alpha: f32, beta: f32, kEnd: u32, _pad3: u32,
}

//#if VEC_A
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> A: array<f32>;
//#endif
//#if VEC_B
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read> B: array<f32>;
//#endif
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// vec4 elements so the inner loop reads 4 m's / 4 n's at once and does vec4 FMAs.
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

fn setA(i: u32, v: f32) { As[i / 4u][i % 4u] = v; }
fn setB(i: u32, v: f32) { Bs[i / 4u][i % 4u] = v; }

// Stage A[m0.., k0..] into As[k][m].
fn loadA(base: u32, m0: u32, k0: u32, tid: u32) {
//#if VEC_A
  if (TRANS_A) { // A is K x M: vec4 runs along m
    for (var i = tid; i < BK * BM / 4u; i += THREADS) {
      let mm = (i % (BM / 4u)) * 4u;
      let kk = i / (BM / 4u);
      let m = m0 + mm; let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (m < p.M && k < p.kEnd) { v = A[(base + k * p.M + m) / 4u]; }
      As[(kk * BM + mm) / 4u] = v;
    }
  } else { // A is M x K: vec4 runs along k
    for (var i = tid; i < BK * BM / 4u; i += THREADS) {
      let kk = (i % (BK / 4u)) * 4u;
      let mm = i / (BK / 4u);
      let m = m0 + mm; let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (m < p.M && k < p.kEnd) { v = A[(base + m * p.K + k) / 4u]; }
      setA(kk * BM + mm, v.x); setA((kk + 1u) * BM + mm, v.y); setA((kk + 2u) * BM + mm, v.z); setA((kk + 3u) * BM + mm, v.w);
    }
  }
//#else
  for (var i = tid; i < BK * BM; i += THREADS) {
    var mm: u32; var kk: u32;
    if (TRANS_A) { mm = i % BM; kk = i / BM; } else { kk = i % BK; mm = i / BK; }
    let m = m0 + mm; let k = k0 + kk;
    var v = 0.0;
    if (m < p.M && k < p.kEnd) {
      if (TRANS_A) { v = A[base + k * p.M + m]; } else { v = A[base + m * p.K + k]; }
    }
    setA(kk * BM + mm, v);
  }
//#endif
}

// Stage B[k0.., n0..] into Bs[k][n].
fn loadB(base: u32, n0: u32, k0: u32, tid: u32) {
//#if VEC_B
  if (TRANS_B) { // B is N x K: vec4 runs along k
    for (var i = tid; i < BK * BN / 4u; i += THREADS) {
      let kk = (i % (BK / 4u)) * 4u;
      let nn = i / (BK / 4u);
      let n = n0 + nn; let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (n < p.N && k < p.kEnd) { v = B[(base + n * p.K + k) / 4u]; }
      setB(kk * BN + nn, v.x); setB((kk + 1u) * BN + nn, v.y); setB((kk + 2u) * BN + nn, v.z); setB((kk + 3u) * BN + nn, v.w);
    }
  } else { // B is K x N: vec4 runs along n
    for (var i = tid; i < BK * BN / 4u; i += THREADS) {
      let nn = (i % (BN / 4u)) * 4u;
      let kk = i / (BN / 4u);
      let n = n0 + nn; let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (n < p.N && k < p.kEnd) { v = B[(base + k * p.N + n) / 4u]; }
      Bs[(kk * BN + nn) / 4u] = v;
    }
  }
//#else
  for (var i = tid; i < BK * BN; i += THREADS) {
    var nn: u32; var kk: u32;
    if (TRANS_B) { kk = i % BK; nn = i / BK; } else { nn = i % BN; kk = i / BN; }
    let n = n0 + nn; let k = k0 + kk;
    var v = 0.0;
    if (n < p.N && k < p.kEnd) {
      if (TRANS_B) { v = B[base + n * p.K + k]; } else { v = B[base + k * p.N + n]; }
    }
    setB(kk * BN + nn, v);
  }
//#endif
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * WG_X + lid.x;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let batch = wg.z;
  let baseA = p.offA + batch * p.strideA;
  let baseB = p.offB + batch * p.strideB;
  let tm = lid.y * TM;
  let tn = lid.x * TN;

  // acc[i][j4] holds C[tm + i, tn + 4·j4 .. +4].
  var acc: array<vec4<f32>, TM * TN / 4u>;
  var a: array<vec4<f32>, TM / 4u>;
  var b: array<vec4<f32>, TN / 4u>;
  for (var k0 = p.kBegin; k0 < p.kEnd; k0 += BK) {
    loadA(baseA, m0, k0, tid);
    loadB(baseB, n0, k0, tid);
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < TM / 4u; i++) { a[i] = As[(kk * BM + tm) / 4u + i]; }
      for (var j = 0u; j < TN / 4u; j++) { b[j] = Bs[(kk * BN + tn) / 4u + j]; }
      for (var i = 0u; i < TM; i++) {
        let ai = vec4<f32>(a[i / 4u][i % 4u]);
        for (var j = 0u; j < TN / 4u; j++) { acc[i * (TN / 4u) + j] = fma(ai, b[j], acc[i * (TN / 4u) + j]); }
      }
    }
    workgroupBarrier();
  }

  let baseC = p.offC + batch * p.strideC;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + tm + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < TN; j++) {
      let n = n0 + tn + j;
      if (n >= p.N) { break; }
      let idx = baseC + m * p.N + n;
      var c = p.alpha * acc[i * (TN / 4u) + j / 4u][j % 4u];
      // beta == 0 must not read C: it may hold garbage (NaN * 0 is NaN).
      if (p.beta != 0.0) { c = fma(p.beta, C[idx], c); }
      C[idx] = c;
    }
  }
}

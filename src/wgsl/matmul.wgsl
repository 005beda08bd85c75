// Batched, strided matrix product: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b], written
// through lib/matmul_epilogue.wgsl (bias, residual, GELU). Row-major; A is M x K (K x M when
// TRANS_A), B is K x N (N x K when TRANS_B).
//
// The tile product is lib/tile_product.wgsl's: A and B tiles are staged k-major (As[k][m],
// Bs[k][n]) whatever the transposes, so the inner loop is the same for all four combinations.
// Global loads are vec4 along the contiguous dimension when the host found that dimension, the
// offsets and the batch strides divisible by 4 (VEC_A / VEC_B); otherwise scalar. Where the
// contiguous dimension is K (A as stored, or TRANS_B's B), a thread loads a 4x4 block (4 rows, a
// vec4 along k each) and transposes it in registers, so that the staged tile is written in vec4s
// too. Out-of-range elements load as zero. A stored row of A (of B) is ldA (ldB) elements long: the
// row's length, or more where the host padded the rows; the padding is never read.
//
// F16_A / F16_B: the operand is packed f16 (two halves a u32 word, element 2i in the low half; its
// offset and stride in halves), unpacked to f32 as it is loaded: a vec4 of halves is a vec2<u32>
// (VEC_A / VEC_B, on the same conditions, which make it 8-byte aligned), else each half is read alone.
// The product and its sums stay f32. NATIVE_F16 (the shader-f16 path, Gpu.f16Kernels): the same halves read
// through WGSL's f16 type (a vec4<f16>, or one f16, a load) and converted to f32.
//#if NATIVE_F16
enable f16;
//#endif
//#include lib/matmul_epilogue.wgsl

const C_VEC4: bool = false; // (the epilogue's scalar stores)
//#include lib/tile_product.wgsl

const TRANS_A: bool = false;
const TRANS_B: bool = false;
const F16_A: bool = false;
const F16_B: bool = false;
const NATIVE_F16: bool = false;

// The K loop runs over [kBegin, kEnd): the host splits long K into several dispatches on
// llvmpipe, which silently stops any invocation after 65,535 loop iterations.
// Split-K: with parts > 1, workgroup z = batch·parts + part, and each part covers kPart of
// K, writing its partial product strideP elements after the previous part's (the host then
// sums the parts: matmul_splitk_sum.wgsl). parts = 1 is the plain product.
struct Params {
  M: u32, N: u32, K: u32, kBegin: u32,
  offA: u32, offB: u32, offC: u32, parts: u32,
  strideA: u32, strideB: u32, strideC: u32, strideP: u32,
  alpha: f32, beta: f32, kEnd: u32, kPart: u32,
  ep: u32, offBias: u32, offR: u32, offG: u32,
  ldA: u32, ldB: u32, ldC: u32,
}

//#if F16_A
//#if NATIVE_F16
//#if VEC_A
@group(0) @binding(0) var<storage, read> A: array<vec4<f16>>;
//#else
@group(0) @binding(0) var<storage, read> A: array<f16>;
//#endif
//#else
//#if VEC_A
@group(0) @binding(0) var<storage, read> A: array<vec2<u32>>;
//#else
@group(0) @binding(0) var<storage, read> A: array<u32>;
//#endif
//#endif
//#else
//#if VEC_A
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> A: array<f32>;
//#endif
//#endif
//#if F16_B
//#if NATIVE_F16
//#if VEC_B
@group(0) @binding(1) var<storage, read> B: array<vec4<f16>>;
//#else
@group(0) @binding(1) var<storage, read> B: array<f16>;
//#endif
//#else
//#if VEC_B
@group(0) @binding(1) var<storage, read> B: array<vec2<u32>>;
//#else
@group(0) @binding(1) var<storage, read> B: array<u32>;
//#endif
//#endif
//#else
//#if VEC_B
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read> B: array<f32>;
//#endif
//#endif
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// Element i of A (of B) as f32, or with VEC_A (VEC_B) its vec4 i, whatever the storage.
//#if VEC_A
fn loadA4(i: u32) -> vec4<f32> {
//#if F16_A
//#if NATIVE_F16
  return vec4<f32>(A[i]);
//#else
  let w = A[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
//#endif
//#else
  return A[i];
//#endif
}
//#else
fn loadA1(i: u32) -> f32 {
//#if F16_A
//#if NATIVE_F16
  return f32(A[i]);
//#else
  return unpack2x16float(A[i / 2u])[i % 2u];
//#endif
//#else
  return A[i];
//#endif
}
//#endif
//#if VEC_B
fn loadB4(i: u32) -> vec4<f32> {
//#if F16_B
//#if NATIVE_F16
  return vec4<f32>(B[i]);
//#else
  let w = B[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
//#endif
//#else
  return B[i];
//#endif
}
//#else
fn loadB1(i: u32) -> f32 {
//#if F16_B
//#if NATIVE_F16
  return f32(B[i]);
//#else
  return unpack2x16float(B[i / 2u])[i % 2u];
//#endif
//#else
  return B[i];
//#endif
}
//#endif

//#if VEC_A
// Rows r0..r0+3 (each below `rows`) of a matrix with `len` elements a row, the vec4 at column
// c (below kEnd), transposed: t[kk] = column c + kk over the 4 rows. Zero where out of range.
fn block4A(base: u32, r0: u32, rows: u32, len: u32, c: u32, kEnd: u32) -> mat4x4<f32> {
  var v = mat4x4<f32>();
  for (var r = 0u; r < 4u; r++) {
    if (r0 + r < rows && c < kEnd) { v[r] = loadA4((base + (r0 + r) * len + c) / 4u); }
  }
  return transpose(v);
}
//#endif

// Stage A[m0.., k0..] into As[k][m].
fn loadA(base: u32, m0: u32, k0: u32, kEnd: u32, tid: u32) {
//#if VEC_A
  if (TRANS_A) { // A is K x M: vec4 runs along m
    for (var i = tid; i < BK * BM / 4u; i += THREADS) {
      let mm = (i % (BM / 4u)) * 4u;
      let kk = i / (BM / 4u);
      let m = m0 + mm; let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (m < p.M && k < kEnd) { v = loadA4((base + k * p.ldA + m) / 4u); }
      As[(kk * BM + mm) / 4u] = v;
    }
  } else { // A is M x K: vec4 runs along k, 4x4 blocks transposed in registers
    for (var i = tid; i < BK * BM / 16u; i += THREADS) {
      let kk = (i % (BK / 4u)) * 4u;
      let mm = (i / (BK / 4u)) * 4u;
      let t = block4A(base, m0 + mm, p.M, p.ldA, k0 + kk, kEnd);
      for (var j = 0u; j < 4u; j++) { As[((kk + j) * BM + mm) / 4u] = t[j]; }
    }
  }
//#else
  for (var i = tid; i < BK * BM; i += THREADS) {
    var mm = u32(); var kk = u32();
    if (TRANS_A) { mm = i % BM; kk = i / BM; } else { kk = i % BK; mm = i / BK; }
    let m = m0 + mm; let k = k0 + kk;
    var v = 0.0;
    if (m < p.M && k < kEnd) {
      if (TRANS_A) { v = loadA1(base + k * p.ldA + m); } else { v = loadA1(base + m * p.ldA + k); }
    }
    setA(kk * BM + mm, v);
  }
//#endif
}

//#if VEC_B
// As block4A, for B.
fn block4B(base: u32, r0: u32, rows: u32, len: u32, c: u32, kEnd: u32) -> mat4x4<f32> {
  var v = mat4x4<f32>();
  for (var r = 0u; r < 4u; r++) {
    if (r0 + r < rows && c < kEnd) { v[r] = loadB4((base + (r0 + r) * len + c) / 4u); }
  }
  return transpose(v);
}
//#endif

// Stage B[k0.., n0..] into Bs[k][n].
fn loadB(base: u32, n0: u32, k0: u32, kEnd: u32, tid: u32) {
//#if VEC_B
  if (TRANS_B) { // B is N x K: vec4 runs along k, 4x4 blocks transposed in registers
    for (var i = tid; i < BK * BN / 16u; i += THREADS) {
      let kk = (i % (BK / 4u)) * 4u;
      let nn = (i / (BK / 4u)) * 4u;
      let t = block4B(base, n0 + nn, p.N, p.ldB, k0 + kk, kEnd);
      for (var j = 0u; j < 4u; j++) { Bs[((kk + j) * BN + nn) / 4u] = t[j]; }
    }
  } else { // B is K x N: vec4 runs along n
    for (var i = tid; i < BK * BN / 4u; i += THREADS) {
      let nn = (i % (BN / 4u)) * 4u;
      let kk = i / (BN / 4u);
      let n = n0 + nn; let k = k0 + kk;
      var v = vec4<f32>(0.0);
      if (n < p.N && k < kEnd) { v = loadB4((base + k * p.ldB + n) / 4u); }
      Bs[(kk * BN + nn) / 4u] = v;
    }
  }
//#else
  for (var i = tid; i < BK * BN; i += THREADS) {
    var nn = u32(); var kk = u32();
    if (TRANS_B) { kk = i % BK; nn = i / BK; } else { nn = i % BN; kk = i / BN; }
    let n = n0 + nn; let k = k0 + kk;
    var v = 0.0;
    if (n < p.N && k < kEnd) {
      if (TRANS_B) { v = loadB1(base + n * p.ldB + k); } else { v = loadB1(base + k * p.ldB + n); }
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
  let batch = wg.z / p.parts;
  let part = wg.z % p.parts;
  let kLo = p.kBegin + part * p.kPart;
  let kHi = min(p.kEnd, kLo + p.kPart);
  let baseA = p.offA + batch * p.strideA;
  let baseB = p.offB + batch * p.strideB;
  let ta = lid.y;          // vec4 index of the thread's first rows in As[k]
  let tb = lid.x;          // and of its first columns in Bs[k]

  var c00 = mat4x4<f32>(); // rows block 0, columns block 0
  var c01 = mat4x4<f32>(); // rows block 0, columns block 1 (TN == 8)
  var c10 = mat4x4<f32>(); // rows block 1 (TM == 8), columns block 0
  var c11 = mat4x4<f32>();
  for (var k0 = kLo; k0 < kHi; k0 += BK) {
    loadA(baseA, m0, k0, kHi, tid);
    loadB(baseB, n0, k0, kHi, tid);
    workgroupBarrier();
    sliceProduct(ta, tb, &c00, &c01, &c10, &c11);
    workgroupBarrier();
  }

  let baseC = p.offC + batch * p.strideC + part * p.strideP;
  // Element (i, j) of the block is row m0 + (i / 4)·WG_Y·4 + ta·4 + i % 4, likewise for columns. One loop
  // over the elements, so that the epilogue is compiled once, not once per element.
  let acc = array<mat4x4<f32>, 4>(c00, c01, c10, c11);
  for (var e = 0u; e < TM * TN; e++) {
    let i = e / TN;
    let j = e % TN;
    let m = m0 + (i / 4u) * WG_Y * 4u + ta * 4u + i % 4u;
    let n = n0 + (j / 4u) * WG_X * 4u + tb * 4u + j % 4u;
    if (m < p.M && n < p.N) { finish(baseC + m * p.ldC + n, n, acc[(i / 4u) * 2u + j / 4u][i % 4u][j % 4u]); }
  }
}

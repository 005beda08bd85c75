// Batched matrix product for software adapters (llvmpipe): C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], written
// through lib/matmul_epilogue.wgsl. Row-major; A is M x K (K x M when TRANS_A), B is K x N (N x K when TRANS_B).
//
// llvmpipe runs a workgroup on one CPU thread, 8 invocations at a time in SIMD lanes, and a storage-buffer load
// there is a loop over the lanes (each lane's address checked and loaded alone), so the loads, not the FMAs,
// bound a matmul. This kernel therefore has no workgroup memory and no barriers: each invocation keeps an RM x RN
// block of C (RM, RN: 4, 8 or 16) in 4x4 sub-blocks of registers and reads, per 4 values of k, its 4 x RM slice
// of A and 4 x RN slice of B as vec4s along each operand's contiguous dimension, then does the 4·RM·RN FMAs with
// each accumulator's 4 k-steps back to back, a row at a time (rowStep). llvmpipe never fuses them (a multiply and an
// add each), and the accumulators of a 16x16 block spill to the stack: that loop, not the loads, is most of the time
// now (sixth session, the JIT code under perf). With TEX_A / TEX_B the operand is read from an rgba32float texture
// holding its rows (the host copies it there before the dispatch), bound as a read-only storage texture: its load
// gathers the lanes' vec4s without the per-lane loop, and on llvmpipe costs about half a sampled texture's texel
// fetch (13 against 27 ns a SIMD group's vec4 in bench/load_probe.mjs), which has per-lane mip-level arithmetic.
// Every vec4 dimension must be a multiple of 4 (the host checks); rows past the matrix are read clamped and never
// stored. A stored row may be longer than the matrix's (the host's ld, a multiple of 4): a vec4 along M or N may
// then reach into the padding, which lands in rows or columns that are never stored, and a vec4 along K past kLen
// is masked to zero in the tail step, so the padding never counts.
//
// F16_A / F16_B: the operand is packed f16 in storage (two halves a u32 word, element 2i in the low half), each
// vec4 of halves unpacked to f32 as it is read: one vec2<u32> when the operand's offset is a multiple of 4 halves,
// else (F16_UNALIGNED_A / _B) four halves read alone, the offset then counted in halves. The sums stay f32.
// NATIVE_F16 (the shader-f16 path, Gpu.f16Kernels): the same halves read through WGSL's f16 type, a vec4<f16> (or
// four f16s) a load, converted to f32.
//
// The dispatch covers k in [0, kLen): the host points A and B at the first k of its K span (llvmpipe silently
// stops an invocation after 65,535 loop iterations, so long K runs as several dispatches that accumulate).

//#if NATIVE_F16
enable f16;
//#endif
//#include lib/matmul_epilogue.wgsl

const WX: u32 = 16u;
const WY: u32 = 4u;
const RM: u32 = 16u;
const RN: u32 = 16u;
const TRANS_A: bool = false;
const TRANS_B: bool = false;
const TEX_A: bool = false;
const TEX_B: bool = false;
const F16_A: bool = false;
const F16_B: bool = false;
const F16_UNALIGNED_A: bool = false;
const F16_UNALIGNED_B: bool = false;
const NATIVE_F16: bool = false;
// kLen % 4 != 0: a last, masked k-step (k-major rows past kLen and vec4 components past kLen read as zero).
const K_TAIL: bool = false;
// N, ldC, offC and strideC multiples of 4: C is written a vec4 at a time (lib/matmul_epilogue.wgsl's finish4).
const C_VEC4: bool = false;

// Operands as stored: rows of lenA (lenB) vec4s from vec4 offset offA (offB); batch item b's rows start
// b·rowsA (b·rowsB) rows further (0: broadcast). A texture holds the rows from its first texel on.
struct Params {
  M: u32, N: u32, kLen: u32, ep: u32,
  offA: u32, lenA: u32, rowsA: u32, offB: u32,
  lenB: u32, rowsB: u32, offC: u32, strideC: u32,
  alpha: f32, beta: f32, offBias: u32, offR: u32,
  offG: u32, ldC: u32,
}

//#if TEX_A
@group(0) @binding(0) var A: texture_storage_2d<rgba32float, read>;
//#else
//#if F16_A
//#if F16_UNALIGNED_A
//#if NATIVE_F16
@group(0) @binding(0) var<storage, read> A: array<f16>;
//#else
@group(0) @binding(0) var<storage, read> A: array<u32>;
//#endif
//#else
//#if NATIVE_F16
@group(0) @binding(0) var<storage, read> A: array<vec4<f16>>;
//#else
@group(0) @binding(0) var<storage, read> A: array<vec2<u32>>;
//#endif
//#endif
//#else
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
//#endif
//#endif
//#if TEX_B
@group(0) @binding(1) var B: texture_storage_2d<rgba32float, read>;
//#else
//#if F16_B
//#if F16_UNALIGNED_B
//#if NATIVE_F16
@group(0) @binding(1) var<storage, read> B: array<f16>;
//#else
@group(0) @binding(1) var<storage, read> B: array<u32>;
//#endif
//#else
//#if NATIVE_F16
@group(0) @binding(1) var<storage, read> B: array<vec4<f16>>;
//#else
@group(0) @binding(1) var<storage, read> B: array<vec2<u32>>;
//#endif
//#endif
//#else
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
//#endif
//#endif
//#if C_VEC4
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;
//#else
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
//#endif
@group(0) @binding(3) var<uniform> p: Params;

// The invocation's batch item's first stored row of A and of B.
var<private> rowA0: u32;
var<private> rowB0: u32;

// Accumulators: c<i><j> holds rows 4i..4i+3 x columns 4j..4j+3 of the invocation's block, c[r] a row. Named
// variables, not an indexed array, so that they stay in registers.
var<private> c00: mat4x4<f32>;
var<private> c01: mat4x4<f32>;
var<private> c02: mat4x4<f32>;
var<private> c03: mat4x4<f32>;
var<private> c10: mat4x4<f32>;
var<private> c11: mat4x4<f32>;
var<private> c12: mat4x4<f32>;
var<private> c13: mat4x4<f32>;
var<private> c20: mat4x4<f32>;
var<private> c21: mat4x4<f32>;
var<private> c22: mat4x4<f32>;
var<private> c23: mat4x4<f32>;
var<private> c30: mat4x4<f32>;
var<private> c31: mat4x4<f32>;
var<private> c32: mat4x4<f32>;
var<private> c33: mat4x4<f32>;

//#if F16_UNALIGNED_A
// Halves h..h+3 of A, each read alone.
fn halvesA(h: u32) -> vec4<f32> {
//#if NATIVE_F16
  return vec4<f32>(f32(A[h]), f32(A[h + 1u]), f32(A[h + 2u]), f32(A[h + 3u]));
//#else
  return vec4<f32>(unpack2x16float(A[h / 2u])[h % 2u], unpack2x16float(A[(h + 1u) / 2u])[(h + 1u) % 2u],
                   unpack2x16float(A[(h + 2u) / 2u])[h % 2u], unpack2x16float(A[(h + 3u) / 2u])[(h + 1u) % 2u]);
//#endif
}
//#endif
//#if F16_UNALIGNED_B
fn halvesB(h: u32) -> vec4<f32> {
//#if NATIVE_F16
  return vec4<f32>(f32(B[h]), f32(B[h + 1u]), f32(B[h + 2u]), f32(B[h + 3u]));
//#else
  return vec4<f32>(unpack2x16float(B[h / 2u])[h % 2u], unpack2x16float(B[(h + 1u) / 2u])[(h + 1u) % 2u],
                   unpack2x16float(B[(h + 2u) / 2u])[h % 2u], unpack2x16float(B[(h + 3u) / 2u])[(h + 1u) % 2u]);
//#endif
}
//#endif

// Stored row `row`, vec4 column q.
fn fetchA(row: u32, q: u32) -> vec4<f32> {
//#if TEX_A
  return textureLoad(A, vec2<u32>(q, row));
//#else
//#if F16_A
//#if F16_UNALIGNED_A
  return halvesA(p.offA + 4u * (row * p.lenA + q));
//#else
//#if NATIVE_F16
  return vec4<f32>(A[p.offA + row * p.lenA + q]);
//#else
  let w = A[p.offA + row * p.lenA + q];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
//#endif
//#endif
//#else
  return A[p.offA + row * p.lenA + q];
//#endif
//#endif
}

fn fetchB(row: u32, q: u32) -> vec4<f32> {
//#if TEX_B
  return textureLoad(B, vec2<u32>(q, row));
//#else
//#if F16_B
//#if F16_UNALIGNED_B
  return halvesB(p.offB + 4u * (row * p.lenB + q));
//#else
//#if NATIVE_F16
  return vec4<f32>(B[p.offB + row * p.lenB + q]);
//#else
  let w = B[p.offB + row * p.lenB + q];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
//#endif
//#endif
//#else
  return B[p.offB + row * p.lenB + q];
//#endif
//#endif
}

// A vec4 along K starting at k, its components past kLen zero in the masked tail step.
fn kMask(v: vec4<f32>, k: u32, tail: bool) -> vec4<f32> {
  if (!tail) { return v; }
  return select(v, vec4<f32>(0.0), vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) >= vec4<u32>(p.kLen));
}

// The last vec4 column of a k-major operand whose rows hold `len` elements: rows may be padded to a multiple of 4.
fn lastQ(len: u32) -> u32 { return (len + 3u) / 4u - 1u; }

// Row k + kk of a k-major operand (TRANS_A's A, plain B); in the masked tail step, zero past kLen.
fn kRowA(k: u32, kk: u32, q: u32, tail: bool) -> vec4<f32> {
  if (tail) {
    let v = fetchA(rowA0 + min(k + kk, p.kLen - 1u), q);
    return select(v, vec4<f32>(0.0), k + kk >= p.kLen);
  }
  return fetchA(rowA0 + k + kk, q);
}

fn kRowB(k: u32, kk: u32, q: u32, tail: bool) -> vec4<f32> {
  if (tail) {
    let v = fetchB(rowB0 + min(k + kk, p.kLen - 1u), q);
    return select(v, vec4<f32>(0.0), k + kk >= p.kLen);
  }
  return fetchB(rowB0 + k + kk, q);
}

// Rows m..m+3 of op(A) at k..k+3: a[r] = row m + r over the 4 k's.
fn blockA(m: u32, k: u32, tail: bool) -> mat4x4<f32> {
  if (TRANS_A) {
    let q = min(m / 4u, lastQ(p.M));
    return transpose(mat4x4<f32>(kRowA(k, 0u, q, tail), kRowA(k, 1u, q, tail), kRowA(k, 2u, q, tail),
                                 kRowA(k, 3u, q, tail)));
  }
  let q = k / 4u;
  let last = p.M - 1u;
  return mat4x4<f32>(kMask(fetchA(rowA0 + min(m, last), q), k, tail),
                     kMask(fetchA(rowA0 + min(m + 1u, last), q), k, tail),
                     kMask(fetchA(rowA0 + min(m + 2u, last), q), k, tail),
                     kMask(fetchA(rowA0 + min(m + 3u, last), q), k, tail));
}

// Columns n..n+3 of op(B) at k..k+3: b[kk] = row k + kk over the 4 columns.
fn blockB(n: u32, k: u32, tail: bool) -> mat4x4<f32> {
  if (TRANS_B) {
    let q = k / 4u;
    let last = p.N - 1u;
    return transpose(mat4x4<f32>(kMask(fetchB(rowB0 + min(n, last), q), k, tail),
                                 kMask(fetchB(rowB0 + min(n + 1u, last), q), k, tail),
                                 kMask(fetchB(rowB0 + min(n + 2u, last), q), k, tail),
                                 kMask(fetchB(rowB0 + min(n + 3u, last), q), k, tail)));
  }
  let q = min(n / 4u, lastQ(p.N));
  return mat4x4<f32>(kRowB(k, 0u, q, tail), kRowB(k, 1u, q, tail), kRowB(k, 2u, q, tail), kRowB(k, 3u, q, tail));
}

// c + a·b for 4x4 blocks, each accumulator's 4 k-steps back to back: one row of c.
fn mmaRow(a: vec4<f32>, b: mat4x4<f32>, c: vec4<f32>) -> vec4<f32> {
  return fma(vec4<f32>(a.w), b[3], fma(vec4<f32>(a.z), b[2], fma(vec4<f32>(a.y), b[1], fma(vec4<f32>(a.x), b[0], c))));
}

// Row r of one 4-row block of the invocation's C (its 4-column blocks c0..c3) += a (the row's 4 values of k)·b0..b3.
fn rowStep(c0: ptr<private, mat4x4<f32>>, c1: ptr<private, mat4x4<f32>>, c2: ptr<private, mat4x4<f32>>,
           c3: ptr<private, mat4x4<f32>>, r: u32, a: vec4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>,
           b3: mat4x4<f32>) {
  (*c0)[r] = mmaRow(a, b0, (*c0)[r]);
  if (RN >= 8u) { (*c1)[r] = mmaRow(a, b1, (*c1)[r]); }
  if (RN == 16u) {
    (*c2)[r] = mmaRow(a, b2, (*c2)[r]);
    (*c3)[r] = mmaRow(a, b3, (*c3)[r]);
  }
}

// Four values of k for the whole block, a row at a time across all RN columns: the row's 4 values of A stay in
// registers while every column uses them. Block by block (each 4x4 block's rows, then the next block) the same
// products ran 10-20% slower on llvmpipe, against a reference kernel in the same process (bench/matmul_probe.mjs).
fn kStep(m: u32, n: u32, k: u32, tail: bool) {
  let a0 = blockA(m, k, tail);
  var a1 = mat4x4<f32>();
  var a2 = mat4x4<f32>();
  var a3 = mat4x4<f32>();
  if (RM >= 8u) { a1 = blockA(m + 4u, k, tail); }
  if (RM == 16u) {
    a2 = blockA(m + 8u, k, tail);
    a3 = blockA(m + 12u, k, tail);
  }
  let b0 = blockB(n, k, tail);
  var b1 = mat4x4<f32>();
  var b2 = mat4x4<f32>();
  var b3 = mat4x4<f32>();
  if (RN >= 8u) { b1 = blockB(n + 4u, k, tail); }
  if (RN == 16u) {
    b2 = blockB(n + 8u, k, tail);
    b3 = blockB(n + 12u, k, tail);
  }
  rowStep(&c00, &c01, &c02, &c03, 0u, a0[0], b0, b1, b2, b3);
  rowStep(&c00, &c01, &c02, &c03, 1u, a0[1], b0, b1, b2, b3);
  rowStep(&c00, &c01, &c02, &c03, 2u, a0[2], b0, b1, b2, b3);
  rowStep(&c00, &c01, &c02, &c03, 3u, a0[3], b0, b1, b2, b3);
  if (RM >= 8u) {
    rowStep(&c10, &c11, &c12, &c13, 0u, a1[0], b0, b1, b2, b3);
    rowStep(&c10, &c11, &c12, &c13, 1u, a1[1], b0, b1, b2, b3);
    rowStep(&c10, &c11, &c12, &c13, 2u, a1[2], b0, b1, b2, b3);
    rowStep(&c10, &c11, &c12, &c13, 3u, a1[3], b0, b1, b2, b3);
  }
  if (RM == 16u) {
    rowStep(&c20, &c21, &c22, &c23, 0u, a2[0], b0, b1, b2, b3);
    rowStep(&c20, &c21, &c22, &c23, 1u, a2[1], b0, b1, b2, b3);
    rowStep(&c20, &c21, &c22, &c23, 2u, a2[2], b0, b1, b2, b3);
    rowStep(&c20, &c21, &c22, &c23, 3u, a2[3], b0, b1, b2, b3);
    rowStep(&c30, &c31, &c32, &c33, 0u, a3[0], b0, b1, b2, b3);
    rowStep(&c30, &c31, &c32, &c33, 1u, a3[1], b0, b1, b2, b3);
    rowStep(&c30, &c31, &c32, &c33, 2u, a3[2], b0, b1, b2, b3);
    rowStep(&c30, &c31, &c32, &c33, 3u, a3[3], b0, b1, b2, b3);
  }
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = (wg.y * WY + lid.y) * RM;
  let n = (wg.x * WX + lid.x) * RN;
  rowA0 = wg.z * p.rowsA;
  rowB0 = wg.z * p.rowsB;
  let kFull = p.kLen & ~3u;
  var k = 0u;
  for (; k < kFull; k += 4u) { kStep(m, n, k, false); }
  if (K_TAIL && k < p.kLen) { kStep(m, n, k, true); }

  // One loop over the block's elements (RM·RN iterations, too many for the compiler to unroll): the
  // epilogue is inlined once, not once per element.
  let acc = array<mat4x4<f32>, 16>(c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33);
  let base = p.offC + wg.z * p.strideC;
//#if C_VEC4
  for (var e = 0u; e < RM * RN / 4u; e++) {
    let i = e / (RN / 4u);
    let j = 4u * (e % (RN / 4u));
    if (m + i < p.M && n + j < p.N) {
      finish4((base + (m + i) * p.ldC + n + j) / 4u, n + j, acc[(i / 4u) * 4u + j / 4u][i % 4u]);
    }
  }
//#else
  for (var e = 0u; e < RM * RN; e++) {
    let i = e / RN;
    let j = e % RN;
    if (m + i < p.M && n + j < p.N) {
      finish(base + (m + i) * p.ldC + n + j, n + j, acc[(i / 4u) * 4u + j / 4u][i % 4u][j % 4u]);
    }
  }
//#endif
}

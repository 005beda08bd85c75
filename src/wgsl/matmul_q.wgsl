// C[M, N] = A[M, K] · Wᵀ, A f32 row-major, W [N, K] stored quantized by rows (lib/quant.wgsl): a linear layer's
// output channels are W's rows, its input dimension K. Weight-only quantization: the weights are read packed and
// dequantized as they are staged into workgroup memory; activations and accumulators stay f32.
//
// The tile product is lib/tile_product.wgsl's, with W staged as B: per BK-slice of K, A and W are staged
// k-major (As[k][m], Bs[k][n]). BK is a multiple of 8, so a slice holds whole words of every format.
// A's loads are vec4 along K when the host found K and offA divisible by 4 (VEC_A); out-of-range elements load
// as zero, and W's padding codes are zero, so the rows' padding adds nothing.
//#include lib/tile_product.wgsl

struct Params {
  M: u32, N: u32, K: u32, offA: u32,
  offC: u32, offQ: u32, offS: u32, rowWords: u32,
}

//#if VEC_A
@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> A: array<f32>;
//#endif
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

//#include lib/quant.wgsl

// Stage A[m0.., k0..] into As[k][m].
fn loadA(m0: u32, k0: u32, tid: u32) {
//#if VEC_A
  for (var i = tid; i < BK * BM / 4u; i += THREADS) {
    let kk = (i % (BK / 4u)) * 4u;
    let mm = i / (BK / 4u);
    let m = m0 + mm; let k = k0 + kk;
    var v = vec4<f32>(0.0);
    if (m < p.M && k < p.K) { v = A[(p.offA + m * p.K + k) / 4u]; }
    setA4(kk, mm, v);
  }
//#else
  for (var i = tid; i < BK * BM; i += THREADS) {
    let kk = i % BK;
    let mm = i / BK;
    let m = m0 + mm; let k = k0 + kk;
    var v = 0.0;
    if (m < p.M && k < p.K) { v = A[p.offA + m * p.K + k]; }
    setA(kk * BM + mm, v);
  }
//#endif
}

// Stage W[n0.., k0..] into Bs[k][n], one packed word (PER_WORD consecutive k) per iteration. Neighbouring
// invocations read neighbouring words of a row.
fn loadW(n0: u32, k0: u32, tid: u32) {
  let perRow = BK / PER_WORD;
  for (var i = tid; i < BN * perRow; i += THREADS) {
    let kw = i % perRow;
    let nn = i / perRow;
    let n = n0 + nn;
    let word = k0 / PER_WORD + kw;
    var w = 0u;
    var s = 0.0;
    if (n < p.N && word < p.rowWords) {
      w = W[p.offQ + n * p.rowWords + word];
      s = quantScale(n, word);
    }
    for (var j = 0u; j < PER_WORD; j++) { setB((kw * PER_WORD + j) * BN + nn, quantCode(w, j) * s); }
  }
}

// Rows m..m+3 x columns n..n+3 of C from a 4x4 accumulator block, bounds-checked.
fn store(m: u32, n: u32, c: mat4x4<f32>) {
  for (var i = 0u; i < 4u; i++) {
    if (m + i >= p.M) { return; }
    for (var j = 0u; j < 4u; j++) {
      if (n + j >= p.N) { break; }
      C[p.offC + (m + i) * p.N + n + j] = c[i][j];
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * WG_X + lid.x;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let ta = lid.y;
  let tb = lid.x;
  var c00 = mat4x4<f32>();
  var c01 = mat4x4<f32>();
  var c10 = mat4x4<f32>();
  var c11 = mat4x4<f32>();
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    loadA(m0, k0, tid);
    loadW(n0, k0, tid);
    workgroupBarrier();
    sliceProduct(ta, tb, &c00, &c01, &c10, &c11);
    workgroupBarrier();
  }
  let m = m0 + ta * 4u;
  let n = n0 + tb * 4u;
  store(m, n, c00);
  if (TN == 8u) { store(m, n + WG_X * 4u, c01); }
  if (TM == 8u) {
    store(m + WG_Y * 4u, n, c10);
    if (TN == 8u) { store(m + WG_Y * 4u, n + WG_X * 4u, c11); }
  }
}

// The fused forward of the softmax cross-entropy head over one chunk of rows:
//   x[r, c] = alpha · h[r]·E[c]   (c < V: the vocabulary, or the CWT head's K target embeddings)
// without keeping the rows×V logits unless STORE asks for them (the training backward reads them; rows ldLogits
// apart, the padding past V never written).
// Workgroup (split, row tile) covers BM rows and `tiles` BN-wide column tiles, its split of the
// vocabulary. Each invocation folds its TM×TN logits of every tile into an online softmax state
// per row (lib/softmax_state.wgsl: running max, Σ exp(x − max), the target's logit and with
// ARGMAX the argmax), and at the end writes one partial per row:
//   stats[(split·WG_X + column group)·rows + r]
// which crossentropy_rows.wgsl merges in that order. The order is fixed, so results repeat bit
// for bit.
//
// The tile product is lib/tile_product.wgsl's for A·Bᵀ (A = h, B = E, both contiguous along d):
// BK-slices staged in workgroup memory k-major, each invocation a TM×TN block of 4×4
// accumulator matrices, vec4 global loads when VEC (d and both offsets multiples of 4). With REGS
// (software adapters; TM = TN = 8) each invocation reads its block's rows of h and E itself.
// With PACKED (inference on quantized weights, never with VEC) E is a packed table W read through
// lib/quant.wgsl (F16, INT8 or Q4) and dequantized as it is loaded.
// With H_HALF (E_HALF) h (E) is an f16 tensor, two halves a u32 word (element 2i in the low half of word
// i, offset in halves, so rows need not start on a word): the mixed-precision copies (--precision f16).
// They are unpacked to f32 as they are read; the products, softmax and stored logits stay f32. Never with VEC.
// NATIVE_F16 (the shader-f16 path, Gpu.f16Kernels): those halves are read through WGSL's f16 type instead.
//#if NATIVE_F16
enable f16;
//#endif
//#include lib/softmax_state.wgsl
//#include lib/tile_product.wgsl

const VEC: bool = false;
const STORE: bool = false;
const ARGMAX: bool = false;
const REGS: bool = false;
const PACKED: bool = false;
const H_HALF: bool = false;
const E_HALF: bool = false;
const NATIVE_F16: bool = false;

struct Params {
  rows: u32, V: u32, d: u32, tiles: u32,
  offH: u32, offE: u32, offLogits: u32, offTargets: u32,
  offStats: u32, alpha: f32, offQ: u32, offS: u32,
  rowWords: u32, ldLogits: u32,
}

//#if VEC
@group(0) @binding(0) var<storage, read> H: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> E: array<vec4<f32>>;
//#else
//#if H_HALF
//#if NATIVE_F16
@group(0) @binding(0) var<storage, read> H: array<f16>;
fn hAt(r: u32, k: u32) -> f32 { return f32(H[p.offH + r * p.d + k]); }
// The n ≤ 4 halves of row r of h from k on (zeros after them; those past the buffer are never read).
fn hHalves(r: u32, k: u32, n: u32) -> vec4<f32> {
  let i = p.offH + r * p.d + k;
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < n; j++) { v[j] = f32(H[i + j]); }
  return v;
}
//#else
@group(0) @binding(0) var<storage, read> H: array<u32>;
fn hAt(r: u32, k: u32) -> f32 { let i = p.offH + r * p.d + k; return unpack2x16float(H[i / 2u])[i % 2u]; }
// The n ≤ 4 halves of row r of h from k on (zeros after them): two or three words instead of four.
fn hHalves(r: u32, k: u32, n: u32) -> vec4<f32> {
  let i = p.offH + r * p.d + k;
  return halves4(i % 2u, H[i / 2u], H[i / 2u + 1u], H[i / 2u + 2u], n);
}
//#endif
//#else
@group(0) @binding(0) var<storage, read> H: array<f32>;
fn hAt(r: u32, k: u32) -> f32 { return H[p.offH + r * p.d + k]; }
//#endif
//#if PACKED
@group(0) @binding(1) var<storage, read> W: array<u32>;
//#include lib/quant.wgsl
fn eAt(c: u32, k: u32) -> f32 { return dequant(c, k); }
//#else
//#if E_HALF
//#if NATIVE_F16
@group(0) @binding(1) var<storage, read> E: array<f16>;
fn eAt(c: u32, k: u32) -> f32 { return f32(E[p.offE + c * p.d + k]); }
fn eHalves(c: u32, k: u32, n: u32) -> vec4<f32> {
  let i = p.offE + c * p.d + k;
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < n; j++) { v[j] = f32(E[i + j]); }
  return v;
}
//#else
@group(0) @binding(1) var<storage, read> E: array<u32>;
fn eAt(c: u32, k: u32) -> f32 { let i = p.offE + c * p.d + k; return unpack2x16float(E[i / 2u])[i % 2u]; }
fn eHalves(c: u32, k: u32, n: u32) -> vec4<f32> {
  let i = p.offE + c * p.d + k;
  return halves4(i % 2u, E[i / 2u], E[i / 2u + 1u], E[i / 2u + 2u], n);
}
//#endif
//#else
@group(0) @binding(1) var<storage, read> E: array<f32>;
fn eAt(c: u32, k: u32) -> f32 { return E[p.offE + c * p.d + k]; }
//#endif
//#endif
//#endif
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;
//#if STORE
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;
//#endif

// Stage rows m0.. of h and n0.. of E, k0..k0+BK, into As[k][m] and Bs[k][n]; zero past the rows, V or d.
fn load(m0: u32, n0: u32, k0: u32, tid: u32) {
//#if VEC
  for (var i = tid; i < BK * BM / 4u; i += THREADS) {
    let kk = (i % (BK / 4u)) * 4u; let mm = i / (BK / 4u);
    var v = vec4<f32>(0.0);
    if (m0 + mm < p.rows && k0 + kk < p.d) { v = h4(m0 + mm, k0 + kk); }
    setA4(kk, mm, v);
  }
  for (var i = tid; i < BK * BN / 4u; i += THREADS) {
    let kk = (i % (BK / 4u)) * 4u; let nn = i / (BK / 4u);
    var v = vec4<f32>(0.0);
    if (n0 + nn < p.V && k0 + kk < p.d) { v = e4(n0 + nn, k0 + kk); }
    setB4(kk, nn, v);
  }
//#else
  for (var i = tid; i < BK * BM; i += THREADS) {
    let kk = i % BK; let mm = i / BK;
    var v = 0.0;
    if (m0 + mm < p.rows && k0 + kk < p.d) { v = hAt(m0 + mm, k0 + kk); }
    setA(kk * BM + mm, v);
  }
  for (var i = tid; i < BK * BN; i += THREADS) {
    let kk = i % BK; let nn = i / BK;
    var v = 0.0;
    if (n0 + nn < p.V && k0 + kk < p.d) { v = eAt(n0 + nn, k0 + kk); }
    setB(kk * BN + nn, v);
  }
//#endif
}

// 4 elements of row r of h (or of E) from k < d on (zeros past d): one vec4 load, the words holding 4 halves,
// or 4 guarded scalar loads.
fn h4(r: u32, k: u32) -> vec4<f32> {
//#if VEC
  return H[(p.offH + r * p.d + k) / 4u];
//#else
//#if H_HALF
  return hHalves(r, k, min(p.d - k, 4u));
//#else
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) { if (k + j < p.d) { v[j] = hAt(r, k + j); } }
  return v;
//#endif
//#endif
}
fn e4(c: u32, k: u32) -> vec4<f32> {
//#if VEC
  return E[(p.offE + c * p.d + k) / 4u];
//#else
//#if E_HALF
  return eHalves(c, k, min(p.d - k, 4u));
//#else
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) { if (k + j < p.d) { v[j] = eAt(c, k + j); } }
  return v;
//#endif
//#endif
}
// Halves 0..3 of words w0 w1 w2, from the high half of w0 on when odd; those from n on are 0 (the words past a
// buffer's end read as whatever robust access gives, and are dropped here).
fn halves4(odd: u32, w0: u32, w1: u32, w2: u32, n: u32) -> vec4<f32> {
  let a = unpack2x16float(w0);
  let b = unpack2x16float(w1);
  var v = vec4<f32>(a, b);
  if (odd == 1u) { v = vec4<f32>(a.y, b, unpack2x16float(w2).x); }
  return select(vec4<f32>(0.0), v, vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
}
// a·b0 .. a·b3.
fn dots(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

// Fold the logits x of row r, columns col, into the row's state (columns ≥ V do not count).
fn absorb(st: ptr<function, Softmax>, x: vec4<f32>, r: u32, col: vec4<u32>) {
  if (r >= p.rows) { return; }
  let valid = col < vec4<u32>(p.V);
  let v = select(vec4<f32>(SOFTMAX_EMPTY.m), x, valid);
//#if STORE
  let base = p.offLogits + r * p.ldLogits;
  for (var j = 0u; j < 4u; j++) { if (valid[j]) { logits[base + col[j]] = x[j]; } }
//#endif
  let tgt = targets[p.offTargets + r];
  if (tgt >= 0) {
    for (var j = 0u; j < 4u; j++) { if (col[j] == u32(tgt) && valid[j]) { (*st).t = x[j]; } }
  }
  var m = max((*st).m, max(max(v.x, v.y), max(v.z, v.w)));
  if (ARGMAX) {
    var best = ArgMax((*st).m, (*st).i);
    for (var j = 0u; j < 4u; j++) {
      let c = ArgMax(x[j], col[j]);
      if (valid[j] && better(best, c)) { best = c; }
    }
    m = best.v;
    (*st).i = best.i;
  }
  let e = select(vec4<f32>(0.0), exp(v - m), valid);
  (*st).s = (*st).s * exp((*st).m - m) + ((e.x + e.y) + (e.z + e.w));
  (*st).m = m;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * WG_X + lid.x;
  let split = wg.x;
  let m0 = wg.y * BM;
  let ta = lid.y;
  let tb = lid.x;
  let ra = m0 + ta * 4u;          // the invocation's first row of block 0
  let rb = ra + WG_Y * 4u;        // and of block 1 (TM == 8)

  var st = array<Softmax, 8>();
  for (var i = 0u; i < 8u; i++) { st[i] = SOFTMAX_EMPTY; }

  let first = split * p.tiles;
  let last = min(first + p.tiles, (p.V + BN - 1u) / BN);
  for (var tile = first; tile < last; tile++) {
    let n0 = tile * BN;
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    if (REGS) {
      // Rows ra..ra+3, rb..rb+3 and columns n0 + tb·4.., + WG_X·4.. as the tiled path, indices clamped
      // into range (values past the end are computed and never absorbed).
      let lr = p.rows - 1u;
      let lc = p.V - 1u;
      let na = n0 + tb * 4u;
      let nb = na + WG_X * 4u;
      for (var k = 0u; k < p.d; k += 4u) {
        let b0 = e4(min(na, lc), k); let b1 = e4(min(na + 1u, lc), k);
        let b2 = e4(min(na + 2u, lc), k); let b3 = e4(min(na + 3u, lc), k);
        let b4 = e4(min(nb, lc), k); let b5 = e4(min(nb + 1u, lc), k);
        let b6 = e4(min(nb + 2u, lc), k); let b7 = e4(min(nb + 3u, lc), k);
        var a = h4(min(ra, lr), k);
        c00[0] += dots(a, b0, b1, b2, b3); c01[0] += dots(a, b4, b5, b6, b7);
        a = h4(min(ra + 1u, lr), k);
        c00[1] += dots(a, b0, b1, b2, b3); c01[1] += dots(a, b4, b5, b6, b7);
        a = h4(min(ra + 2u, lr), k);
        c00[2] += dots(a, b0, b1, b2, b3); c01[2] += dots(a, b4, b5, b6, b7);
        a = h4(min(ra + 3u, lr), k);
        c00[3] += dots(a, b0, b1, b2, b3); c01[3] += dots(a, b4, b5, b6, b7);
        a = h4(min(rb, lr), k);
        c10[0] += dots(a, b0, b1, b2, b3); c11[0] += dots(a, b4, b5, b6, b7);
        a = h4(min(rb + 1u, lr), k);
        c10[1] += dots(a, b0, b1, b2, b3); c11[1] += dots(a, b4, b5, b6, b7);
        a = h4(min(rb + 2u, lr), k);
        c10[2] += dots(a, b0, b1, b2, b3); c11[2] += dots(a, b4, b5, b6, b7);
        a = h4(min(rb + 3u, lr), k);
        c10[3] += dots(a, b0, b1, b2, b3); c11[3] += dots(a, b4, b5, b6, b7);
      }
    }
    for (var k0 = 0u; k0 < select(p.d, 0u, REGS); k0 += BK) {
      load(m0, n0, k0, tid);
      workgroupBarrier();
      sliceProduct(ta, tb, &c00, &c01, &c10, &c11);
      workgroupBarrier();
    }
    let na = vec4<u32>(n0 + tb * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let nb = na + vec4<u32>(WG_X * 4u);
    for (var i = 0u; i < 4u; i++) {
      absorb(&st[i], p.alpha * c00[i], ra + i, na);
      if (TN == 8u) { absorb(&st[i], p.alpha * c01[i], ra + i, nb); }
      if (TM == 8u) {
        absorb(&st[4u + i], p.alpha * c10[i], rb + i, na);
        if (TN == 8u) { absorb(&st[4u + i], p.alpha * c11[i], rb + i, nb); }
      }
    }
  }

  let base = p.offStats + (split * WG_X + tb) * p.rows;
  for (var i = 0u; i < TM; i++) {
    let r = select(ra, rb, i >= 4u) + i % 4u;
    if (r < p.rows) { stats[base + r] = packSoftmax(st[i]); }
  }
}

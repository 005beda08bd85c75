// The fused forward of the softmax cross-entropy head over one chunk of rows:
//   x[r, c] = alpha · h[r]·E[c]   (c < V: the vocabulary, or the CWT head's K target embeddings)
// without keeping the rows×V logits unless STORE asks for them (the training backward reads them).
// Workgroup (split, row tile) covers BM rows and `tiles` BN-wide column tiles, its split of the
// vocabulary. Each invocation folds its TM×TN logits of every tile into an online softmax state
// per row (lib/softmax_state.wgsl: running max, Σ exp(x − max), the target's logit and with
// ARGMAX the argmax), and at the end writes one partial per row:
//   stats[(split·WG_X + column group)·rows + r]
// which crossentropy_rows.wgsl merges in that order. The order is fixed, so results repeat bit
// for bit.
//
// The tile product is matmul.wgsl's scheme for A·Bᵀ (A = h, B = E, both contiguous along d):
// BK-slices staged in workgroup memory k-major, each invocation a TM×TN block of 4×4
// accumulator matrices, vec4 global loads when VEC (d and both offsets multiples of 4).
//#include lib/softmax_state.wgsl

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 8u;
const VEC: bool = false;
const STORE: bool = false;
const ARGMAX: bool = false;

const WG_X: u32 = BN / TN;
const WG_Y: u32 = BM / TM;
const THREADS: u32 = WG_X * WG_Y;

struct Params {
  rows: u32, V: u32, d: u32, tiles: u32,
  offH: u32, offE: u32, offLogits: u32, offTargets: u32,
  offStats: u32, alpha: f32,
}

//#if VEC
@group(0) @binding(0) var<storage, read> H: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> E: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> E: array<f32>;
//#endif
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;
//#if STORE
@group(0) @binding(5) var<storage, read_write> logits: array<f32>;
//#endif

var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

fn setA(i: u32, v: f32) { As[i / 4u][i % 4u] = v; }
fn setB(i: u32, v: f32) { Bs[i / 4u][i % 4u] = v; }

// Stage rows m0.. of h and n0.. of E, k0..k0+BK, into As[k][m] and Bs[k][n].
fn load(m0: u32, n0: u32, k0: u32, tid: u32) {
//#if VEC
  for (var i = tid; i < BK * BM / 4u; i += THREADS) {
    let kk = (i % (BK / 4u)) * 4u;
    let mm = i / (BK / 4u);
    let m = m0 + mm; let k = k0 + kk;
    var v = vec4<f32>(0.0);
    if (m < p.rows && k < p.d) { v = H[(p.offH + m * p.d + k) / 4u]; }
    setA(kk * BM + mm, v.x); setA((kk + 1u) * BM + mm, v.y);
    setA((kk + 2u) * BM + mm, v.z); setA((kk + 3u) * BM + mm, v.w);
  }
  for (var i = tid; i < BK * BN / 4u; i += THREADS) {
    let kk = (i % (BK / 4u)) * 4u;
    let nn = i / (BK / 4u);
    let n = n0 + nn; let k = k0 + kk;
    var v = vec4<f32>(0.0);
    if (n < p.V && k < p.d) { v = E[(p.offE + n * p.d + k) / 4u]; }
    setB(kk * BN + nn, v.x); setB((kk + 1u) * BN + nn, v.y);
    setB((kk + 2u) * BN + nn, v.z); setB((kk + 3u) * BN + nn, v.w);
  }
//#else
  for (var i = tid; i < BK * BM; i += THREADS) {
    let kk = i % BK; let mm = i / BK;
    let m = m0 + mm; let k = k0 + kk;
    var v = 0.0;
    if (m < p.rows && k < p.d) { v = H[p.offH + m * p.d + k]; }
    setA(kk * BM + mm, v);
  }
  for (var i = tid; i < BK * BN; i += THREADS) {
    let kk = i % BK; let nn = i / BK;
    let n = n0 + nn; let k = k0 + kk;
    var v = 0.0;
    if (n < p.V && k < p.d) { v = E[p.offE + n * p.d + k]; }
    setB(kk * BN + nn, v);
  }
//#endif
}

fn rank1(a: vec4<f32>, b: vec4<f32>, c: ptr<function, mat4x4<f32>>) {
  (*c)[0] = fma(vec4<f32>(a.x), b, (*c)[0]);
  (*c)[1] = fma(vec4<f32>(a.y), b, (*c)[1]);
  (*c)[2] = fma(vec4<f32>(a.z), b, (*c)[2]);
  (*c)[3] = fma(vec4<f32>(a.w), b, (*c)[3]);
}

// Fold the logits x of row r, columns col, into the row's state (columns ≥ V do not count).
fn absorb(st: ptr<function, Softmax>, x: vec4<f32>, r: u32, col: vec4<u32>) {
  if (r >= p.rows) { return; }
  let valid = col < vec4<u32>(p.V);
  let v = select(vec4<f32>(SOFTMAX_EMPTY.m), x, valid);
//#if STORE
  let base = p.offLogits + r * p.V;
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

  var st: array<Softmax, 8>;
  for (var i = 0u; i < 8u; i++) { st[i] = SOFTMAX_EMPTY; }

  let first = split * p.tiles;
  let last = min(first + p.tiles, (p.V + BN - 1u) / BN);
  for (var tile = first; tile < last; tile++) {
    let n0 = tile * BN;
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    for (var k0 = 0u; k0 < p.d; k0 += BK) {
      load(m0, n0, k0, tid);
      workgroupBarrier();
      for (var kk = 0u; kk < BK; kk++) {
        let a0 = As[kk * (BM / 4u) + ta];
        let b0 = Bs[kk * (BN / 4u) + tb];
        rank1(a0, b0, &c00);
        if (TN == 8u) { rank1(a0, Bs[kk * (BN / 4u) + WG_X + tb], &c01); }
        if (TM == 8u) {
          let a1 = As[kk * (BM / 4u) + WG_Y + ta];
          rank1(a1, b0, &c10);
          if (TN == 8u) { rank1(a1, Bs[kk * (BN / 4u) + WG_X + tb], &c11); }
        }
      }
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

// Fused multi-head attention forward (FlashAttention-2's online softmax) on GPT-2's packed c_attn
// rows qkv [B, T, 3d], writing out [B, T, d] with the heads side by side: no permutes, and no T×T
// scores in memory. An invocation owns QR queries of one head (lib/attention.wgsl): it keeps their
// scaled q and output rows in registers and walks the keys they see in blocks of BC, taking the
// block's scores, then rescaling each running sum and output once per block to the new maximum.
// Each key read serves QR queries. lse [B, H, T] keeps each query's log-sum-exp for the backward;
// a query that sees no key outputs 0 (and its lse is 0).
// Every invocation of a workgroup walks the keys up to the last one any of its queries sees (the
// others get weight 0), so all take the same path through the loops. STAGE (hardware GPUs) copies
// each block of keys and values into workgroup memory first (lib/attention_keys.wgsl).
//#include lib/attention.wgsl
//#include lib/attention_keys.wgsl

const LOWEST: f32 = -3.4028234e38; // the lowest finite f32: the running maximum before any key

struct Params { B: u32, T: u32, H: u32, d: u32, scale: f32, offQkv: u32, offOut: u32, offLen: u32 }

//#if VEC4
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
//#endif
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
//#if LENGTHS
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
//#endif

fn storeOut(a: u32, c: u32, x: vec4<f32>) {
//#if VEC4
  out[a / 4u + c] = x;
//#else
  for (var k = 0u; k < 4u; k++) {
    if (4u * c + k < HD) { out[a + 4u * c + k] = x[k]; }
  }
//#endif
}

fn block(blk: Block, t: u32) {
  let b = blk.b;
  let h = blk.h;
  let keys = keysSeen(b, lastRow(blk)); // the most any query here sees
  var n = array<u32, QR>(); // keys each query sees
  var q = array<array<vec4<f32>, HD4>, QR>();
  var o = array<array<vec4<f32>, HD4>, QR>();
  var m = array<f32, QR>();
  var l = array<f32, QR>();
  for (var r = 0u; r < QR; r++) {
    let i = rowOf(blk, r, t);
    n[r] = keysSeen(b, i);
    let qa = p.offQkv + packedAt(0u, 3u, b, min(i, p.T - 1u), h);
    for (var c = 0u; c < HD4; c++) { q[r][c] = qkv4(qa, c) * p.scale; }
    m[r] = LOWEST;
  }
  for (var j0 = 0u; j0 < keys; j0 += BC) {
    stageKeys(b, h, j0, t);
    let nb = min(BC, keys - j0);
    var s = array<array<f32, BC>, QR>();
    var mb = array<f32, QR>();
    for (var r = 0u; r < QR; r++) { mb[r] = LOWEST; }
    for (var jj = 0u; jj < nb; jj++) {
      let a = keyAt(b, h, j0, jj);
      var dot = array<vec4<f32>, QR>();
      for (var c = 0u; c < HD4; c++) {
        let k4 = key4(a, c);
        for (var r = 0u; r < QR; r++) { dot[r] = fma(q[r][c], k4, dot[r]); }
      }
      for (var r = 0u; r < QR; r++) {
        let x = sum4(dot[r]);
        s[r][jj] = x;
        mb[r] = select(mb[r], max(mb[r], x), j0 + jj < n[r]);
      }
    }
    for (var r = 0u; r < QR; r++) {
      let mn = max(m[r], mb[r]);
      let corr = exp(m[r] - mn);
      l[r] *= corr;
      for (var c = 0u; c < HD4; c++) { o[r][c] *= corr; }
      m[r] = mn;
    }
    for (var jj = 0u; jj < nb; jj++) {
      var e = array<f32, QR>();
      for (var r = 0u; r < QR; r++) {
        e[r] = select(0.0, exp(s[r][jj] - m[r]), j0 + jj < n[r]);
        l[r] += e[r];
      }
      let a = keyAt(b, h, j0, jj);
      for (var c = 0u; c < HD4; c++) {
        let v4 = value4(a, c);
        for (var r = 0u; r < QR; r++) { o[r][c] = fma(vec4<f32>(e[r]), v4, o[r][c]); }
      }
    }
  }
  for (var r = 0u; r < QR; r++) {
    let i = rowOf(blk, r, t);
    if (i < p.T) {
      let inv = select(0.0, 1.0 / l[r], l[r] > 0.0);
      let oa = p.offOut + packedAt(0u, 1u, b, i, h);
      for (var c = 0u; c < HD4; c++) { storeOut(oa, c, o[r][c] * inv); }
      lse[statAt(b, h, i)] = select(0.0, m[r] + log(l[r]), l[r] > 0.0);
    }
  }
}

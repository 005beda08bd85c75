// Fused attention backward, second pass (FlashAttention-2): the gradients of k and v, after
// attention_dq wrote D = rowsum(dO ∘ O) per query. An invocation owns QR keys of one head (lib/
// attention.wgsl) with their k and v in registers, and walks the queries that may see the block's
// keys (from the block's first key on when CAUSAL; none when the whole block is padding):
// p = exp(scale·q·k − lse), dv += p·dO, ds = p·(dO·v − D), dk += scale·ds·q. They go into the k and
// v thirds of dqkv [B, T, 3d] (overwritten; 0 for padding keys). Each query read serves QR keys.
// Queries are walked BC at a time; STAGE (hardware GPUs) copies each block's q, dO, lse and D into
// workgroup memory first.
//#include lib/attention.wgsl
//#include lib/attention_grads.wgsl

struct Params { B: u32, T: u32, H: u32, d: u32, scale: f32, offQkv: u32, offDout: u32, offDqkv: u32, offLen: u32 }

@group(0) @binding(4) var<storage, read> dsum: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
//#if LENGTHS
@group(0) @binding(7) var<storage, read> lengths: array<u32>;
//#endif

// Query i0 + ii of the block: where its q and dO start (queryAt), their channels 4c .. 4c + 3
// (q4, g4), its lse and D.
//#if STAGE
var<workgroup> tileQ: array<vec4<f32>, BC * HD4>;
var<workgroup> tileG: array<vec4<f32>, BC * HD4>;
var<workgroup> tileL: array<f32, BC>;
var<workgroup> tileD: array<f32, BC>;

// Every invocation of the workgroup calls this with the same i0 (it waits at barriers).
fn stageQueries(b: u32, h: u32, i0: u32, t: u32) {
  workgroupBarrier(); // the previous block has been read
  for (var e = t; e < BC * HD4; e += WG) {
    let i = min(i0 + e / HD4, p.T - 1u);
    tileQ[e] = qkv4(p.offQkv + packedAt(0u, 3u, b, i, h), e % HD4);
    tileG[e] = dout4(p.offDout + packedAt(0u, 1u, b, i, h), e % HD4);
  }
  for (var e = t; e < BC; e += WG) {
    let s = statAt(b, h, min(i0 + e, p.T - 1u));
    tileL[e] = lse[s];
    tileD[e] = dsum[s];
  }
  workgroupBarrier();
}
fn queryAt(b: u32, h: u32, i0: u32, ii: u32) -> vec2<u32> { return vec2<u32>(ii * HD4); }
fn q4(a: u32, c: u32) -> vec4<f32> { return tileQ[a + c]; }
fn g4(a: u32, c: u32) -> vec4<f32> { return tileG[a + c]; }
fn lseOf(b: u32, h: u32, i0: u32, ii: u32) -> f32 { return tileL[ii]; }
fn dOf(b: u32, h: u32, i0: u32, ii: u32) -> f32 { return tileD[ii]; }
//#else
fn stageQueries(b: u32, h: u32, i0: u32, t: u32) {}
fn queryAt(b: u32, h: u32, i0: u32, ii: u32) -> vec2<u32> {
  return vec2<u32>(p.offQkv + packedAt(0u, 3u, b, i0 + ii, h), p.offDout + packedAt(0u, 1u, b, i0 + ii, h));
}
fn q4(a: u32, c: u32) -> vec4<f32> { return qkv4(a, c); }
fn g4(a: u32, c: u32) -> vec4<f32> { return dout4(a, c); }
fn lseOf(b: u32, h: u32, i0: u32, ii: u32) -> f32 { return lse[statAt(b, h, i0 + ii)]; }
fn dOf(b: u32, h: u32, i0: u32, ii: u32) -> f32 { return dsum[statAt(b, h, i0 + ii)]; }
//#endif

fn block(blk: Block, t: u32) {
  let b = blk.b;
  let h = blk.h;
  let valid = validKeys(b);
  var k = array<array<vec4<f32>, HD4>, QR>();
  var v = array<array<vec4<f32>, HD4>, QR>();
  var dk = array<array<vec4<f32>, HD4>, QR>();
  var dv = array<array<vec4<f32>, HD4>, QR>();
  for (var r = 0u; r < QR; r++) {
    let ka = p.offQkv + packedAt(1u, 3u, b, min(rowOf(blk, r, t), p.T - 1u), h);
    for (var c = 0u; c < HD4; c++) {
      k[r][c] = qkv4(ka, c) * p.scale;
      v[r][c] = qkv4(ka + p.d, c);
    }
  }
  var first = 0u;
  if (CAUSAL) { first = blk.first; }
  var last = p.T;
  if (blk.first >= valid) { last = first; } // every key of the block is padding
  for (var i0 = first; i0 < last; i0 += BC) {
    stageQueries(b, h, i0, t);
    let nb = min(BC, last - i0);
    for (var ii = 0u; ii < nb; ii++) {
      let i = i0 + ii;
      let a = queryAt(b, h, i0, ii);
      var s = array<vec4<f32>, QR>();
      var dp = array<vec4<f32>, QR>();
      for (var c = 0u; c < HD4; c++) {
        let qc = q4(a.x, c);
        let gc = g4(a.y, c);
        for (var r = 0u; r < QR; r++) {
          s[r] = fma(qc, k[r][c], s[r]);
          dp[r] = fma(gc, v[r][c], dp[r]);
        }
      }
      let L = lseOf(b, h, i0, ii);
      let D = dOf(b, h, i0, ii);
      var e = array<f32, QR>();
      var ds = array<f32, QR>();
      for (var r = 0u; r < QR; r++) {
        let j = rowOf(blk, r, t);
        e[r] = select(0.0, exp(sum4(s[r]) - L), j < valid && (!CAUSAL || j <= i));
        ds[r] = e[r] * (sum4(dp[r]) - D);
      }
      for (var c = 0u; c < HD4; c++) {
        let qc = q4(a.x, c);
        let gc = g4(a.y, c);
        for (var r = 0u; r < QR; r++) {
          dv[r][c] = fma(vec4<f32>(e[r]), gc, dv[r][c]);
          dk[r][c] = fma(vec4<f32>(ds[r]), qc, dk[r][c]);
        }
      }
    }
  }
  for (var r = 0u; r < QR; r++) {
    let j = rowOf(blk, r, t);
    if (j < p.T) {
      let da = p.offDqkv + packedAt(1u, 3u, b, j, h);
      for (var c = 0u; c < HD4; c++) {
        storeDqkv(da, c, dk[r][c] * p.scale);
        storeDqkv(da + p.d, c, dv[r][c]);
      }
    }
  }
}

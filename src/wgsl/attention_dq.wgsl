// Fused attention backward, first pass (FlashAttention-2): the gradient of q, and D = rowsum(dO ∘ O)
// for attention_dkv. An invocation owns QR queries of one head, as in attention_forward: with each
// query's saved log-sum-exp it recomputes the weights p_j = exp(s_j − lse) of the keys it sees and
// ds_j = p_j·(dO·v_j − D); dq = scale·Σ_j ds_j·k_j goes into the q third of dqkv [B, T, 3d]
// (overwritten). Keys are walked as in the forward (STAGE: through workgroup memory). out is the
// forward's output and dout its gradient, both [B, T, d].
//#include lib/attention.wgsl
//#include lib/attention_keys.wgsl
//#include lib/attention_grads.wgsl

struct Params {
  B: u32, T: u32, H: u32, d: u32, scale: f32,
  offQkv: u32, offOut: u32, offDout: u32, offDqkv: u32, offLen: u32,
}

//#if VEC4
@group(0) @binding(1) var<storage, read> out: array<vec4<f32>>;
//#else
@group(0) @binding(1) var<storage, read> out: array<f32>;
//#endif
@group(0) @binding(4) var<storage, read_write> dsum: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
//#if LENGTHS
@group(0) @binding(7) var<storage, read> lengths: array<u32>;
//#endif

// Channels 4c .. 4c + 3 of out's head row at element offset a (0 past HD).
fn out4(a: u32, c: u32) -> vec4<f32> {
//#if VEC4
  return out[a / 4u + c];
//#else
  var x = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (4u * c + k < HD) { x[k] = out[a + 4u * c + k]; }
  }
  return x;
//#endif
}

fn block(blk: Block, t: u32) {
  let b = blk.b;
  let h = blk.h;
  let keys = keysSeen(b, lastRow(blk));
  var n = array<u32, QR>();
  var q = array<array<vec4<f32>, HD4>, QR>();
  var g = array<array<vec4<f32>, HD4>, QR>();
  var dq = array<array<vec4<f32>, HD4>, QR>();
  var L = array<f32, QR>();
  var D = array<f32, QR>();
  for (var r = 0u; r < QR; r++) {
    let i = min(rowOf(blk, r, t), p.T - 1u);
    n[r] = keysSeen(b, rowOf(blk, r, t));
    let qa = p.offQkv + packedAt(0u, 3u, b, i, h);
    let oa = packedAt(0u, 1u, b, i, h);
    var dsum4 = vec4<f32>(0.0);
    for (var c = 0u; c < HD4; c++) {
      q[r][c] = qkv4(qa, c) * p.scale;
      g[r][c] = dout4(p.offDout + oa, c);
      dsum4 = fma(g[r][c], out4(p.offOut + oa, c), dsum4);
    }
    D[r] = sum4(dsum4);
    L[r] = lse[statAt(b, h, i)];
  }
  for (var j0 = 0u; j0 < keys; j0 += BC) {
    stageKeys(b, h, j0, t);
    let nb = min(BC, keys - j0);
    for (var jj = 0u; jj < nb; jj++) {
      let a = keyAt(b, h, j0, jj);
      var s = array<vec4<f32>, QR>();
      var dp = array<vec4<f32>, QR>();
      for (var c = 0u; c < HD4; c++) {
        let k4 = key4(a, c);
        let v4 = value4(a, c);
        for (var r = 0u; r < QR; r++) {
          s[r] = fma(q[r][c], k4, s[r]);
          dp[r] = fma(g[r][c], v4, dp[r]);
        }
      }
      var ds = array<f32, QR>();
      for (var r = 0u; r < QR; r++) {
        ds[r] = select(0.0, exp(sum4(s[r]) - L[r]), j0 + jj < n[r]) * (sum4(dp[r]) - D[r]);
      }
      for (var c = 0u; c < HD4; c++) {
        let k4 = key4(a, c);
        for (var r = 0u; r < QR; r++) { dq[r][c] = fma(vec4<f32>(ds[r]), k4, dq[r][c]); }
      }
    }
  }
  for (var r = 0u; r < QR; r++) {
    let i = rowOf(blk, r, t);
    if (i < p.T) {
      dsum[statAt(b, h, i)] = D[r];
      let da = p.offDqkv + packedAt(0u, 3u, b, i, h);
      for (var c = 0u; c < HD4; c++) { storeDqkv(da, c, dq[r][c] * p.scale); }
    }
  }
}

// Attention's layout changes between token-major and head-major tensors.
//   token-major [B, T, S, H, hd]: GPT-2's packed qkv (S = 3: q, k, v) or a merged output (S = 1);
//   head-major  [S, B, H, T, hd]: each (s, b, h) a contiguous T x hd matrix for batched matmuls.
// TO_HEADS: token-major src -> head-major dst; otherwise head-major src -> token-major dst.
// One invocation per element, indexed along dst so that writes are contiguous.

//#include lib/elementwise.wgsl

const TO_HEADS: bool = true;

struct Params {
  B: u32, T: u32, H: u32, hd: u32,
  S: u32, n: u32, offSrc: u32, offDst: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  let c = i % p.hd;
  var r = i / p.hd;
  if (TO_HEADS) { // i over [S, B, H, T, hd]
    let t = r % p.T; r /= p.T;
    let h = r % p.H; r /= p.H;
    let b = r % p.B;
    let s = r / p.B;
    dst[p.offDst + i] = src[p.offSrc + (((b * p.T + t) * p.S + s) * p.H + h) * p.hd + c];
  } else { // i over [B, T, S, H, hd]
    let h = r % p.H; r /= p.H;
    let s = r % p.S; r /= p.S;
    let t = r % p.T;
    let b = r / p.T;
    dst[p.offDst + i] = src[p.offSrc + (((s * p.B + b) * p.H + h) * p.T + t) * p.hd + c];
  }
}

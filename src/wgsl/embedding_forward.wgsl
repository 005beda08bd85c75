// Token + position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :], one invocation
// per output element. tokens are u32 (i32 ids ≥ 0 have the same bits). wte and wpe are
// read-only bindings and may be (usually are) the same parameter buffer.
// With QUANT (inference) the token table is a packed table W stored quantized (lib/quant.wgsl: F16, INT8 or
// Q4) and dequantized as it is read; the position table stays f32 (it is read one row a token).

//#include lib/elementwise.wgsl

//#if QUANT
struct Params {
  n: u32, T: u32, d: u32, offTok: u32,
  offWpe: u32, offOut: u32, offQ: u32, offS: u32,
  rowWords: u32,
}

@group(0) @binding(1) var<storage, read> W: array<u32>;
//#include lib/quant.wgsl
fn wteAt(tok: u32, c: u32) -> f32 { return dequant(tok, c); }
//#else
struct Params {
  n: u32, T: u32, d: u32, offTok: u32,
  offWte: u32, offWpe: u32, offOut: u32,
}

@group(0) @binding(1) var<storage, read> wte: array<f32>;
fn wteAt(tok: u32, c: u32) -> f32 { return wte[p.offWte + tok * p.d + c]; }
//#endif
@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> wpe: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  let pos = i / p.d;
  let c = i % p.d;
  let t = pos % p.T;
  out[p.offOut + i] = wteAt(tokens[p.offTok + pos], c) + wpe[p.offWpe + t * p.d + c];
}

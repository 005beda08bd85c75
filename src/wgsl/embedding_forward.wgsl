// Token + position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :], one invocation
// per output element. tokens are u32 (i32 ids ≥ 0 have the same bits). wte and wpe are
// read-only bindings and may be (usually are) the same parameter buffer.
// With QUANT (inference) the token table is a packed table W stored quantized (lib/quant.wgsl: F16, INT8 or
// Q4) and dequantized as it is read; the position table stays f32 (it is read one row a token).
// VEC4 (f32 table, d and every offset a multiple of 4): an invocation writes 4 elements of a row, read and
// written as vec4s (llvmpipe turns each load into one per-lane loop instead of four).

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

@group(0) @binding(1) var<storage, read> wte: array<V>;
fn wteAt(tok: u32, c: u32) -> V { return wte[(p.offWte + tok * p.d + c) / UNIT]; }
//#endif

//#if VEC4
alias V = vec4<f32>;
const UNIT: u32 = 4u;
//#else
alias V = f32;
const UNIT: u32 = 1u;
//#endif

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> wpe: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;
@group(0) @binding(4) var<uniform> p: Params;

fn elements() -> u32 { return p.n / UNIT; }

// Unit i: elements [i·UNIT, (i+1)·UNIT) of the output, in one row (UNIT divides d).
fn element(i: u32) {
  let e = i * UNIT;
  let pos = e / p.d;
  let c = e % p.d;
  let t = pos % p.T;
  out[(p.offOut + e) / UNIT] = wteAt(tokens[p.offTok + pos], c) + wpe[(p.offWpe + t * p.d + c) / UNIT];
}

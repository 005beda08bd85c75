// Token + learned position embedding with the token table stored quantized (lib/quant.wgsl):
// out[b, t, :] = dequant(wte)[tokens[b, t], :] + wpe[t, :], one invocation per output element. The position
// table stays f32 (it is read one row a token).

//#include lib/elementwise.wgsl

const F16: bool = false;
const INT8: bool = true;
const Q4: bool = false;

struct Params {
  n: u32, T: u32, d: u32, offTok: u32,
  offWpe: u32, offOut: u32, offQ: u32, offS: u32,
  rowWords: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> W: array<u32>;
@group(0) @binding(2) var<storage, read> wpe: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

//#include lib/quant.wgsl

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  let pos = i / p.d;
  let c = i % p.d;
  let t = pos % p.T;
  out[p.offOut + i] = dequant(tokens[p.offTok + pos], c) + wpe[p.offWpe + t * p.d + c];
}

// Token + position embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :], one invocation
// per output element. tokens are u32 (i32 ids ≥ 0 have the same bits). wte and wpe are
// read-only bindings and may be (usually are) the same parameter buffer.

//#include lib/elementwise.wgsl

struct Params {
  n: u32, T: u32, d: u32, offTok: u32,
  offWte: u32, offWpe: u32, offOut: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<u32>;
@group(0) @binding(1) var<storage, read> wte: array<f32>;
@group(0) @binding(2) var<storage, read> wpe: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  let pos = i / p.d;
  let c = i % p.d;
  let t = pos % p.T;
  let tok = tokens[p.offTok + pos];
  out[p.offOut + i] = wte[p.offWte + tok * p.d + c] + wpe[p.offWpe + t * p.d + c];
}

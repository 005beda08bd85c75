// The second half of a split-K product: C[b] = alpha · Σ_p P[b, p] + beta · C[b] and the rest of
// lib/matmul_epilogue.wgsl, where the parts P [batch, parts, M·N] were written by matmul.wgsl (packed, whatever C's
// ldC). One invocation per element of C.

//#include lib/elementwise.wgsl
//#include lib/matmul_epilogue.wgsl

const C_VEC4: bool = false; // (the epilogue's scalar stores)

struct Params {
  MN: u32, parts: u32, total: u32, offC: u32,
  strideC: u32, alpha: f32, beta: f32, N: u32,
  ep: u32, offBias: u32, offR: u32, offG: u32,
  ldC: u32,
}

@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn elements() -> u32 { return p.total; }

fn element(i: u32) {
  let b = i / p.MN;
  let r = i % p.MN;
  var sum = 0.0;
  for (var k = 0u; k < p.parts; k++) { sum += P[(b * p.parts + k) * p.MN + r]; }
  finish(p.offC + b * p.strideC + (r / p.N) * p.ldC + r % p.N, r % p.N, sum);
}

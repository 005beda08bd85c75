// The second half of a split-K product: C[b] = alpha · Σ_p P[b, p] + beta · C[b], where the
// parts P [batch, parts, M·N] were written by matmul.wgsl. One invocation per element of C.

//#include lib/elementwise.wgsl

struct Params {
  MN: u32, parts: u32, total: u32, offC: u32,
  strideC: u32, alpha: f32, beta: f32,
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
  let idx = p.offC + b * p.strideC + r;
  var v = p.alpha * sum;
  // beta == 0 must not read C: it may hold garbage (NaN * 0 is NaN).
  if (p.beta != 0.0) { v = fma(p.beta, C[idx], v); }
  C[idx] = v;
}

// The second half of a split-K product: C[b] = alpha · Σ_p P[b, p] + beta · C[b], where the
// parts P [batch, parts, M·N] were written by matmul.wgsl. One invocation per element of C.

const WG: u32 = 256u;

struct Params {
  MN: u32, parts: u32, total: u32, offC: u32,
  strideC: u32, alpha: f32, beta: f32, _pad: u32,
}

@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.total) { return; }
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

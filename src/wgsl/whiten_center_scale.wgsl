// Centre and weight rows for the weighted covariance: out[i, c] = s_i · (x[i, c] − mu[c]),
// s_i = √w[i] when SCALE (w the row weights), else 1 (plain centring). One invocation per
// element, no reduction here: the covariance is then outᵀ·out with the deterministic matmul.

//#include lib/elementwise.wgsl

const SCALE: bool = true;

struct Params { n: u32, d: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mu: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn elements() -> u32 { return p.n * p.d; }

fn element(e: u32) {
  let i = e / p.d;
  let c = e % p.d;
  var s = 1.0;
  if (SCALE) { s = sqrt(max(w[i], 0.0)); }
  out[e] = s * (x[e] - mu[c]);
}

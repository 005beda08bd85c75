// GELU, tanh approximation (GPT-2's gelu_new, lib/gelu.wgsl), elementwise over n values:
//   forward   out = 0.5·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//   backward  dx  = gelu'(x)·dout  (overwrites dx)
// IN_PLACE: the backward reads dout from dx itself; the forward reads x from out itself.
// Bindings: out (0), params (1), then x (2) and dout (3) unless they are `out`.

//#include lib/elementwise.wgsl
//#include lib/gelu.wgsl

const BACKWARD: bool = false;
const IN_PLACE: bool = false;

struct Params { n: u32, offX: u32, offDout: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
//#if BACKWARD
@group(0) @binding(2) var<storage, read> x: array<f32>;
//#if IN_PLACE
//#else
@group(0) @binding(3) var<storage, read> dout: array<f32>;
//#endif
//#else
//#if IN_PLACE
//#else
@group(0) @binding(2) var<storage, read> x: array<f32>;
//#endif
//#endif

fn loadX(i: u32) -> f32 {
//#if BACKWARD
  return x[p.offX + i];
//#else
//#if IN_PLACE
  return out[p.offOut + i];
//#else
  return x[p.offX + i];
//#endif
//#endif
}

fn elements() -> u32 { return p.n; }

fn element(i: u32) {
  let v = loadX(i);
//#if BACKWARD
  // gelu'(x) = σ(z) + x·σ(z)(1 − σ(z))·dz/dx, z = 2u, with σ(1 − σ) = e/(1 + e)² and
  // dz/dx = 2√(2/π)(1 + 3·0.044715·x²).
  let q = geluParts(v);
  let dz = 2.0 * GELU_S * (1.0 + 3.0 * GELU_A * q.xc * q.xc);
  let g = q.sig + (v * (q.e * q.r * q.r)) * dz;
//#if IN_PLACE
  let d = out[p.offOut + i];
//#else
  let d = dout[p.offDout + i];
//#endif
  out[p.offOut + i] = g * d;
//#else
  out[p.offOut + i] = gelu(v);
//#endif
}

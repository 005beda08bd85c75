// GELU, tanh approximation (GPT-2's gelu_new, lib/gelu.wgsl), elementwise over n values:
//   forward   out = 0.5·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//   backward  dx  = gelu'(x)·dout  (overwrites dx)
// IN_PLACE: the backward reads dout from dx itself; the forward reads x from out itself.
// Bindings: out (0), params (1), then x (2) and dout (3) unless they are `out`.
// VEC4 (n and every offset a multiple of 4): an invocation takes 4 values, each read and written as one vec4
// (llvmpipe turns each load into one per-lane loop instead of four), the arithmetic the same per component.

//#include lib/elementwise.wgsl
//#include lib/gelu.wgsl

const BACKWARD: bool = false;
const IN_PLACE: bool = false;

//#if VEC4
alias V = vec4<f32>;
const UNIT: u32 = 4u;
//#else
alias V = f32;
const UNIT: u32 = 1u;
//#endif

struct Params { n: u32, offX: u32, offDout: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<V>;
@group(0) @binding(1) var<uniform> p: Params;
//#if BACKWARD
@group(0) @binding(2) var<storage, read> x: array<V>;
//#if IN_PLACE
//#else
@group(0) @binding(3) var<storage, read> dout: array<V>;
//#endif
//#else
//#if IN_PLACE
//#else
@group(0) @binding(2) var<storage, read> x: array<V>;
//#endif
//#endif

fn loadX(i: u32) -> V {
//#if BACKWARD
  return x[p.offX / UNIT + i];
//#else
//#if IN_PLACE
  return out[p.offOut / UNIT + i];
//#else
  return x[p.offX / UNIT + i];
//#endif
//#endif
}

fn elements() -> u32 { return p.n / UNIT; }

// gelu'(x)·d, where gelu'(x) = σ(z) + x·σ(z)(1 − σ(z))·dz/dx, z = 2u, with σ(1 − σ) = e/(1 + e)² and
// dz/dx = 2√(2/π)(1 + 3·0.044715·x²).
fn backward(v: f32, d: f32) -> f32 {
  let q = geluParts(v);
  let dz = 2.0 * GELU_S * (1.0 + 3.0 * GELU_A * q.xc * q.xc);
  let g = q.sig + (v * (q.e * q.r * q.r)) * dz;
  return g * d;
}

fn element(i: u32) {
  let v = loadX(i);
//#if BACKWARD
//#if IN_PLACE
  let d = out[p.offOut / UNIT + i];
//#else
  let d = dout[p.offDout / UNIT + i];
//#endif
//#if VEC4
  out[p.offOut / UNIT + i] = V(backward(v.x, d.x), backward(v.y, d.y), backward(v.z, d.z), backward(v.w, d.w));
//#else
  out[p.offOut / UNIT + i] = backward(v, d);
//#endif
//#else
//#if VEC4
  out[p.offOut / UNIT + i] = V(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
//#else
  out[p.offOut / UNIT + i] = gelu(v);
//#endif
//#endif
}

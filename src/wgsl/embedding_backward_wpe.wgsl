// Position-embedding gradient: dwpe[t, c] += Σ_b dout[b, t, c], one invocation per (t, c)
// adding the batch rows in order: no atomics, bit-for-bit repeatable.

//#include lib/elementwise.wgsl

struct Params { B: u32, T: u32, d: u32, offDout: u32, offDwpe: u32 }

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn elements() -> u32 { return p.T * p.d; }

fn element(i: u32) {
  let td = p.T * p.d;
  var acc = 0.0;
  for (var b = 0u; b < p.B; b++) { acc += dout[p.offDout + b * td + i]; }
  grad[p.offDwpe + i] += acc;
}

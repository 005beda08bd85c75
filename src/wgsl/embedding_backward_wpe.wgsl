// Position-embedding gradient: dwpe[t, c] += Σ_b dout[b, t, c], one invocation per (t, c)
// adding the batch rows in order: no atomics, bit-for-bit repeatable.

const WG: u32 = 256u;

struct Params {
  B: u32, T: u32, d: u32, _pad0: u32,
  offDout: u32, offDwpe: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  let td = p.T * p.d;
  if (i >= td) { return; }
  var acc = 0.0;
  for (var b = 0u; b < p.B; b++) { acc += dout[p.offDout + b * td + i]; }
  grad[p.offDwpe + i] += acc;
}

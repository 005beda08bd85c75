// Euclidean norm of each row: out[i] = ‖x[i, :]‖ over the n×d rows, for the symmetry score Sym1's E‖x‖ (the
// weighted mean of the norms is then the deterministic matmul wᵀ·out). One invocation per row, summing its squares
// in column order, so the result is the same on every run.

const WG: u32 = 256u;

struct Params { n: u32, d: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.n) { return; }
  var s = 0.0;
  for (var c = 0u; c < p.d; c++) {
    let v = x[i * p.d + c];
    s += v * v;
  }
  out[i] = sqrt(s);
}

// Row-wise reduction: out[r] = OP over x[r, 0..cols) with OP sum or max, one workgroup a row.
// Each invocation folds a strided slice, then a tree in workgroup memory: the order of the
// additions is fixed, so results are bit-for-bit repeatable (no atomics). max propagates NaN.

const WG: u32 = 256u;
const MAX: bool = false;

struct Params { rows: u32, cols: u32, offX: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> part: array<f32, WG>;

// WGSL lets compilers assume floats are never NaN, so `x != x` may fold to false (SwiftShader
// does); test the bits instead.
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

fn combine(a: f32, b: f32) -> f32 {
  if (MAX) { return select(max(a, b), a + b, isNan(a) || isNan(b)); }
  return a + b;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base = p.offX + row * p.cols;
  var acc = select(0.0, x[base], MAX); // identity for sum; for max, any element of the row
  for (var c = t; c < p.cols; c += WG) { acc = combine(acc, x[base + c]); }
  part[t] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { part[t] = combine(part[t], part[t + s]); }
    workgroupBarrier();
  }
  if (t == 0u) { out[p.offOut + row] = part[0]; }
}

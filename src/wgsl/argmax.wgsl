// Row argmax: amax[r] = the first index of the largest value of row r of x [rows, n], one
// workgroup a row (greedy decoding reads back one number instead of a row of logits). NaN
// wins, so a broken model is not mistaken for a confident one. A strided fold, then a fixed
// tree in workgroup memory: the same answer every run.

const WG: u32 = 256u;

struct Params { rows: u32, n: u32, offX: u32, offOut: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> amax: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> vals: array<f32, WG>;
var<workgroup> idx: array<u32, WG>;

// WGSL lets compilers assume floats are never NaN, so `x != x` may fold away; test the bits.
fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

// Does (b, ib) beat (a, ia)? The larger value, the lower index on ties; NaN beats numbers.
fn better(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  if (isNan(b)) { return !isNan(a) || ib < ia; }
  if (isNan(a)) { return false; }
  return b > a || (b == a && ib < ia);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base = p.offX + row * p.n;
  var m = x[base];
  var im = 0u;
  for (var c = t; c < p.n; c += WG) {
    let v = x[base + c];
    if (better(m, im, v, c)) { m = v; im = c; }
  }
  vals[t] = m;
  idx[t] = im;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s && better(vals[t], idx[t], vals[t + s], idx[t + s])) {
      vals[t] = vals[t + s];
      idx[t] = idx[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) { amax[p.offOut + row] = idx[0]; }
}

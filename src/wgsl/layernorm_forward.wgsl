// LayerNorm forward over the last dimension (lib/layernorm.wgsl's row layout):
//   out = (x − mean)·rstd·weight + bias,  rstd = 1/√(var + eps),  var biased (÷ cols),
// and mean[row], rstd[row] saved for the backward. Two passes over the row (mean first, then
// squared deviations), each folded per invocation then summed by a fixed tree: the order of every
// addition is fixed, so results repeat bit for bit. weight and bias are read-only bindings and may
// be (usually are) the same buffer. STATS_SHARED: mean and rstd live in one buffer, bound once
// (writable aliasing is illegal).
//#include lib/layernorm.wgsl

const ROWS: u32 = 1u;
const TPR: u32 = 256u;
const VEC4: bool = false;
const STATS_SHARED: bool = false;

struct Params {
  rows: u32, cols: u32, eps: f32,
  offX: u32, offW: u32, offB: u32, offOut: u32,
  offMean: u32, offRstd: u32,
}

//#if VEC4
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
//#else
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
//#endif
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read_write> meanOut: array<f32>;
//#if STATS_SHARED
//#else
@group(0) @binding(6) var<storage, read_write> rstdOut: array<f32>;
//#endif

@compute @workgroup_size(TPR, ROWS)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let t = lid.x;
  let row = groupIndex(wg, nwg) * ROWS + lid.y;
  let r = min(row, p.rows - 1u); // no early return: the barriers must stay in uniform control flow
  let first = lid.y * TPR; // this row's tree in workgroup memory
  let n = f32(p.cols);
  var s = vec4<f32>(0.0);
  for (var u = t; u < units(); u += TPR) { s += xAt(p.offX, r, u); }
  let mean = sum4(treeReduce(s, 0u, t, first, 1u)) / n;
  var v = vec4<f32>(0.0);
  for (var u = t; u < units(); u += TPR) {
    let d = (xAt(p.offX, r, u) - mean) * LANES;
    v = fma(d, d, v);
  }
  let rstd = 1.0 / sqrt(sum4(treeReduce(v, 0u, t, first, 1u)) / n + p.eps);
  if (row >= p.rows) { return; } // after the last barrier
  for (var u = t; u < units(); u += TPR) {
    let y = (xAt(p.offX, r, u) - mean) * rstd * weightAt(p.offW, u);
//#if VEC4
    out[p.offOut / 4u + r * units() + u] = y + bias[p.offB / 4u + u];
//#else
    out[p.offOut + r * p.cols + u] = y.x + bias[p.offB + u];
//#endif
  }
  if (t == 0u) {
    meanOut[p.offMean + r] = mean;
//#if STATS_SHARED
    meanOut[p.offRstd + r] = rstd;
//#else
    rstdOut[p.offRstd + r] = rstd;
//#endif
  }
}

// LayerNorm forward over the last dimension, one workgroup a row:
//   out = (x − mean)·rstd·weight + bias,  rstd = 1/√(var + eps),  var biased (÷ cols),
// and mean[row], rstd[row] saved for the backward. Two passes over the row (mean first, then
// squared deviations), each folded per invocation then summed by a fixed tree in workgroup
// memory: the order of every addition is fixed, so results repeat bit for bit.
// weight and bias are read-only bindings and may be (usually are) the same buffer.
// STATS_SHARED: mean and rstd live in one buffer, bound once (writable aliasing is illegal).
// The two tree reductions are written out in main on purpose: with the tree in a helper
// function, Mesa 22.3's llvmpipe returned the sum only to the first SIMD lane group (the
// other invocations got 0), so keep barriers out of called functions.

const WG: u32 = 256u;
const STATS_SHARED: bool = false;

struct Params {
  rows: u32, cols: u32, eps: f32, _pad0: u32,
  offX: u32, offW: u32, offB: u32, offOut: u32,
  offMean: u32, offRstd: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read_write> meanOut: array<f32>;
//#if STATS_SHARED
//#else
@group(0) @binding(6) var<storage, read_write> rstdOut: array<f32>;
//#endif

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers stay uniform
  let base = p.offX + row * p.cols;
  let n = f32(p.cols);
  var s = 0.0;
  for (var c = t; c < p.cols; c += WG) { s += x[base + c]; }
  red[t] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  let mean = red[0] / n;
  workgroupBarrier(); // everyone has read red[0] before it is reused
  var v = 0.0;
  for (var c = t; c < p.cols; c += WG) { let d = x[base + c] - mean; v += d * d; }
  red[t] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  let rstd = 1.0 / sqrt(red[0] / n + p.eps);
  let o = p.offOut + row * p.cols;
  for (var c = t; c < p.cols; c += WG) {
    out[o + c] = (x[base + c] - mean) * rstd * weight[p.offW + c] + bias[p.offB + c];
  }
  if (t == 0u) {
    meanOut[p.offMean + row] = mean;
//#if STATS_SHARED
    meanOut[p.offRstd + row] = rstd;
//#else
    rstdOut[p.offRstd + row] = rstd;
//#endif
  }
}

// LayerNorm forward over the last dimension, one workgroup a row:
//   out = (x − mean)·rstd·weight + bias,  rstd = 1/√(var + eps),  var biased (÷ cols),
// and mean[row], rstd[row] saved for the backward. Two passes over the row (mean first, then
// squared deviations), each folded per invocation then summed by a fixed tree in workgroup
// memory: the order of every addition is fixed, so results repeat bit for bit.
// weight and bias are read-only bindings and may be (usually are) the same buffer.
// STATS_SHARED: mean and rstd live in one buffer, bound once (writable aliasing is illegal).
// WG is chosen by the host for the row's width.
//#include lib/rows.wgsl
//#include lib/reduce_f32.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;
const STATS_SHARED: bool = false;

struct Params {
  rows: u32, cols: u32, eps: f32,
  offX: u32, offW: u32, offB: u32, offOut: u32,
  offMean: u32, offRstd: u32,
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

fn rows() -> u32 { return p.rows; }

fn row(r: u32, t: u32) {
  let base = p.offX + r * p.cols;
  let n = f32(p.cols);
  var s = 0.0;
  for (var c = t; c < p.cols; c += WG) { s += x[base + c]; }
  let mean = workgroupReduce(s, OP_SUM, t) / n;
  var v = 0.0;
  for (var c = t; c < p.cols; c += WG) { let d = x[base + c] - mean; v += d * d; }
  let rstd = 1.0 / sqrt(workgroupReduce(v, OP_SUM, t) / n + p.eps);
  let o = p.offOut + r * p.cols;
  for (var c = t; c < p.cols; c += WG) {
    out[o + c] = (x[base + c] - mean) * rstd * weight[p.offW + c] + bias[p.offB + c];
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

// LayerNorm backward, the input gradient, one workgroup a row. With x̂ = (x − mean)·rstd and
// g = dout·weight:  dx += rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)). It accumulates, since the
// residual stream's gradient is summed into dx. Both row means are reduced together by a
// fixed tree (bit-for-bit repeatable). mean and rstd are read-only and may share a buffer.

const WG: u32 = 256u;

struct Params {
  rows: u32, cols: u32, _pad0: u32, _pad1: u32,
  offDout: u32, offX: u32, offW: u32, offDx: u32,
  offMean: u32, offRstd: u32, _pad2: u32, _pad3: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> meanIn: array<f32>;
@group(0) @binding(4) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

var<workgroup> red: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers stay uniform
  let mean = meanIn[p.offMean + row];
  let rstd = rstdIn[p.offRstd + row];
  let bx = p.offX + row * p.cols;
  let bd = p.offDout + row * p.cols;
  var acc = vec2<f32>(0.0);
  for (var c = t; c < p.cols; c += WG) {
    let xhat = (x[bx + c] - mean) * rstd;
    let g = dout[bd + c] * weight[p.offW + c];
    acc += vec2<f32>(g, g * xhat);
  }
  red[t] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { red[t] += red[t + s]; }
    workgroupBarrier();
  }
  let m = red[0] / f32(p.cols); // (mean_c(g), mean_c(g·x̂))
  let o = p.offDx + row * p.cols;
  for (var c = t; c < p.cols; c += WG) {
    let xhat = (x[bx + c] - mean) * rstd;
    let g = dout[bd + c] * weight[p.offW + c];
    dx[o + c] += rstd * (g - m.x - xhat * m.y);
  }
}

// LayerNorm backward, the input gradient, one workgroup a row. With x̂ = (x − mean)·rstd and
// g = dout·weight:  dx += rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)). It accumulates, since the
// residual stream's gradient is summed into dx. Both row means are reduced together by a
// fixed tree (bit-for-bit repeatable). mean and rstd are read-only and may share a buffer.
// WG is chosen by the host for the row's width.
//#include lib/rows.wgsl
//#include lib/reduce.wgsl

const WG: u32 = 256u;
const RED_WIDTH: u32 = WG;
const RED_GROUPS: u32 = 1u;

alias Red = vec2<f32>;
fn combine(a: Red, b: Red, op: u32) -> Red { return a + b; }

struct Params {
  rows: u32, cols: u32,
  offDout: u32, offX: u32, offW: u32, offDx: u32,
  offMean: u32, offRstd: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> meanIn: array<f32>;
@group(0) @binding(4) var<storage, read> rstdIn: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

fn rows() -> u32 { return p.rows; }

fn row(r: u32, t: u32) {
  let mean = meanIn[p.offMean + r];
  let rstd = rstdIn[p.offRstd + r];
  let bx = p.offX + r * p.cols;
  let bd = p.offDout + r * p.cols;
  var acc = vec2<f32>(0.0);
  for (var c = t; c < p.cols; c += WG) {
    let xhat = (x[bx + c] - mean) * rstd;
    let g = dout[bd + c] * weight[p.offW + c];
    acc += vec2<f32>(g, g * xhat);
  }
  let m = workgroupReduce(acc, 0u, t) / f32(p.cols); // (mean_c(g), mean_c(g·x̂))
  let o = p.offDx + r * p.cols;
  for (var c = t; c < p.cols; c += WG) {
    let xhat = (x[bx + c] - mean) * rstd;
    let g = dout[bd + c] * weight[p.offW + c];
    dx[o + c] += rstd * (g - m.x - xhat * m.y);
  }
}

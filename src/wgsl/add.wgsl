// Broadcast add: out[r, c] = a[r, c] + alpha * b[r * sbr + c * sbc] over a rows x cols grid.
// (sbr, sbc) = (cols, 1) is elementwise, (0, 1) adds a row vector (a bias), (1, 0) a column
// vector, (0, 0) a scalar. IN_PLACE reads `a` from `out` itself (residual: x += y), since
// WebGPU forbids binding one buffer both read-only and writable in a dispatch.

//#include lib/elementwise.wgsl

struct Params {
  rows: u32, cols: u32, sbr: u32, sbc: u32,
  offOut: u32, offA: u32, offB: u32, alpha: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if IN_PLACE
//#else
@group(0) @binding(3) var<storage, read> a: array<f32>;
//#endif

fn elements() -> u32 { return p.rows * p.cols; }

fn element(i: u32) {
  let r = i / p.cols;
  let c = i % p.cols;
//#if IN_PLACE
  let x = out[p.offOut + i];
//#else
  let x = a[p.offA + i];
//#endif
  out[p.offOut + i] = x + p.alpha * b[p.offB + r * p.sbr + c * p.sbc];
}

// One AdamW step over a flat parameter buffer, unit by unit (lib/optimizer.wgsl), with
// torch.optim.AdamW's arithmetic (single-tensor path), in f32:
//   g ← g·gscale                 (global-norm clipping's scale, read from a GPU buffer)
//   p ← p·(1 − lr·wd)            (decoupled weight decay, where the decay mask says so)
//   m ← m + (1−β1)·(g − m);  v ← v·β2 + (1−β2)·g²
//   p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps)
// The per-step numbers (lr, bias corrections) sit in the uniform, rewritten before each
// submit. Mask, windows and chunks flagged all-zero: see lib/optimizer.wgsl.
//#include lib/optimizer.wgsl

struct Params {
  n: u32, offP: u32, offG: u32, offM: u32,
  offV: u32, offMask: u32, offScale: u32, maskBase: u32,
  oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, eps: f32,
  stepSize: f32, bc2Sqrt: f32, decayFactor: f32, offFlags: u32,
}

@group(0) @binding(2) var<storage, read_write> mom1: array<V>;
@group(0) @binding(3) var<storage, read_write> mom2: array<V>;
@group(0) @binding(4) var<uniform> p: Params;

fn element(i: u32, g: V, decay: bool) {
  var w = params[p.offP / UNIT + i];
  w = w * select(1.0, p.decayFactor, decay);
  let m = mom1[p.offM / UNIT + i];
  let m1 = m + p.oneMinusBeta1 * (g - m);
  let v1 = mom2[p.offV / UNIT + i] * p.beta2 + p.oneMinusBeta2 * (g * g);
  let denom = sqrt(v1) / p.bc2Sqrt + p.eps;
  mom1[p.offM / UNIT + i] = m1;
  mom2[p.offV / UNIT + i] = v1;
  params[p.offP / UNIT + i] = w - p.stepSize * (m1 / denom);
}

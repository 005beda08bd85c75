// One plain SGD step (no momentum) over a flat parameter buffer, unit by unit (lib/optimizer.wgsl),
// with torch.optim.SGD's arithmetic in f32:  g ← g·gscale;  d = g + wd·p (where the decay
// mask says so);  p ← p + (−lr)·d. With wd 0 and no scale this is exactly p − lr·g, the
// single-step contract of `hlm pretrain --optimizer sgd`. Mask and windows: see lib/optimizer.wgsl.
//#include lib/optimizer.wgsl

struct Params {
  n: u32, offP: u32, offG: u32, offMask: u32,
  offScale: u32, maskBase: u32, negLr: f32, wd: f32,
  offFlags: u32,
}

@group(0) @binding(2) var<uniform> p: Params;

fn element(i: u32, g: V, decay: bool) {
  let w = params[p.offP / UNIT + i];
  var d = g;
  if (decay && p.wd != 0.0) { d = g + p.wd * w; }
  params[p.offP / UNIT + i] = w + p.negLr * d;
}

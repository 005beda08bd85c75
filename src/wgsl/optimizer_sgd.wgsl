// One plain SGD step (no momentum) over a flat parameter buffer, one invocation an element,
// with torch.optim.SGD's arithmetic in f32:  g ← g·gscale;  d = g + wd·p (where the decay
// mask says so);  p ← p + (−lr)·d. With wd 0 and no scale this is exactly p − lr·g, the
// single-step contract of `hlm pretrain --optimizer sgd`. Mask format and windows: see optimizer_adamw.

const WG: u32 = 256u;
const B_MASK: u32 = 3u;
const B_SCALE: u32 = 4u;

struct Params {
  n: u32, offP: u32, offG: u32, offMask: u32,
  offScale: u32, maskBase: u32, negLr: f32, wd: f32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
//#if MASK
@group(0) @binding(B_MASK) var<storage, read> mask: array<u32>;
//#endif
//#if SCALE
@group(0) @binding(B_SCALE) var<storage, read> gscale: array<f32>;
//#endif

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.n) { return; }
  var g = grads[p.offG + i];
//#if SCALE
  g = g * gscale[p.offScale];
//#endif
  var w = params[p.offP + i];
//#if MASK
  let block = (p.maskBase + i) / 64u;
  let decay = (mask[p.offMask + block / 32u] & (1u << (block % 32u))) != 0u;
//#else
  let decay = true;
//#endif
  var d = g;
  if (decay && p.wd != 0.0) { d = g + p.wd * w; }
  params[p.offP + i] = w + p.negLr * d;
}
